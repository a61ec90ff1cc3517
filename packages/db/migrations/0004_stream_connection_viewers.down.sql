-- Hand-written inverse of 0004_stream_connection_viewers.sql.
ALTER TABLE `streams` DROP COLUMN `peak_viewer_count`;--> statement-breakpoint
ALTER TABLE `streams` DROP COLUMN `viewer_count`;--> statement-breakpoint
ALTER TABLE `streams` DROP COLUMN `connection_at`;--> statement-breakpoint
ALTER TABLE `streams` DROP COLUMN `connection`;
