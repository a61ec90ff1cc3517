-- Stream keys and playback ids are compared byte for byte: under the database's utf8mb4_unicode_ci an upper-cased
-- key found its stream at ingest (and the key recheck, comparing exactly, then revoked it).
ALTER TABLE `streams` MODIFY COLUMN `stream_key` varchar(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;--> statement-breakpoint
ALTER TABLE `streams` MODIFY COLUMN `playback_id` varchar(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
