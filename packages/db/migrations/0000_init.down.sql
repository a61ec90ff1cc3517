-- Hand-written inverse of 0000_init.sql: drop in reverse dependency order.
DROP TABLE IF EXISTS `stream_events`;
--> statement-breakpoint
DROP TABLE IF EXISTS `stream_participants`;
--> statement-breakpoint
DROP TABLE IF EXISTS `streams`;
--> statement-breakpoint
DROP TABLE IF EXISTS `users`;
