-- A live stream's publisher connection (`connected`, or `reconnecting` while the node waits out the reconnect window,
-- NULL when not live) and when it last changed, so that reports arriving out of order cannot undo a newer one; and
-- its audience: the viewers of every node now, and the most seen at once.
ALTER TABLE `streams` ADD `connection` enum('connected','reconnecting');--> statement-breakpoint
ALTER TABLE `streams` ADD `connection_at` datetime(3);--> statement-breakpoint
ALTER TABLE `streams` ADD `viewer_count` int unsigned NOT NULL DEFAULT 0;--> statement-breakpoint
ALTER TABLE `streams` ADD `peak_viewer_count` int unsigned NOT NULL DEFAULT 0;
