-- Hand-written inverse of 0001_binary_stream_keys.sql: back to the table's default collation. Refused (duplicate
-- entry) if two keys or playback ids now differ only by case, which the case-insensitive unique index cannot hold.
ALTER TABLE `streams` MODIFY COLUMN `playback_id` varchar(64) NOT NULL;--> statement-breakpoint
ALTER TABLE `streams` MODIFY COLUMN `stream_key` varchar(64) NOT NULL;
