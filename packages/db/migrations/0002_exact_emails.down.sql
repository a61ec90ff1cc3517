-- Hand-written inverse of 0002_exact_emails.sql: back to the table's default (case- and accent-insensitive) collation.
-- Refused (duplicate entry) once two accounts differ only by case or accents (`jose@` and `josé@`), which the old
-- unique index cannot hold: remove or rename one first. The backfill's lower-casing is not undone (nothing needs it).
ALTER TABLE `users` MODIFY COLUMN `email` varchar(254) NOT NULL;
