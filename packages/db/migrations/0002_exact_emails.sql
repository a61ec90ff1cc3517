-- Emails are stored normalized (the api applies NFKC, lower case and trim before every write and lookup) and compared
-- byte for byte: under utf8mb4_unicode_ci `josé@` found `jose@`'s account and `strasse@` found `straße@`'s.
-- Backfill first: rows written before were lower-cased by the api already; LOWER(TRIM()) catches any written by hand.
-- It cannot collide: the case- and accent-insensitive unique index already kept such spellings apart. NFKC has no SQL
-- form; a legacy row with compatibility characters (full-width letters, ligatures) is matched once its owner registers
-- or an operator rewrites it.
UPDATE `users` SET `email` = LOWER(TRIM(`email`)) WHERE BINARY `email` <> LOWER(TRIM(`email`));--> statement-breakpoint
ALTER TABLE `users` MODIFY COLUMN `email` varchar(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
