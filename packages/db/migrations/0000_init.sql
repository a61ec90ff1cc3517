CREATE TABLE `users` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`email` varchar(254) NOT NULL,
	`password_hash` varchar(255),
	`display_name` varchar(100) NOT NULL,
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`updated_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `users_id` PRIMARY KEY(`id`),
	CONSTRAINT `users_email_uq` UNIQUE(`email`)
);
--> statement-breakpoint
CREATE TABLE `streams` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`ref_no` varchar(32) NOT NULL,
	`title` varchar(200) NOT NULL,
	`stream_key` varchar(64) NOT NULL,
	`playback_id` varchar(64) NOT NULL,
	`user_id` bigint unsigned NOT NULL,
	`status` enum('pending','live','ended') NOT NULL DEFAULT 'pending',
	`ingest_node_id` varchar(128),
	`playback_base_url` varchar(512),
	`ended_reason` varchar(64),
	`started_at` datetime(3),
	`ended_at` datetime(3),
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`updated_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `streams_id` PRIMARY KEY(`id`),
	CONSTRAINT `streams_ref_no_uq` UNIQUE(`ref_no`),
	CONSTRAINT `streams_stream_key_uq` UNIQUE(`stream_key`),
	CONSTRAINT `streams_playback_id_uq` UNIQUE(`playback_id`)
);
--> statement-breakpoint
CREATE TABLE `stream_participants` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`stream_id` bigint unsigned NOT NULL,
	`user_id` bigint unsigned NOT NULL,
	`role` enum('host','viewer') NOT NULL DEFAULT 'viewer',
	`joined_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`left_at` datetime(3),
	CONSTRAINT `stream_participants_id` PRIMARY KEY(`id`),
	CONSTRAINT `stream_participants_stream_user_uq` UNIQUE(`stream_id`,`user_id`)
);
--> statement-breakpoint
CREATE TABLE `stream_events` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`event_id` varchar(128) NOT NULL,
	`type` varchar(64) NOT NULL,
	`stream_id` bigint unsigned,
	`node_id` varchar(128) NOT NULL,
	`session_id` varchar(128),
	`outcome` varchar(64) NOT NULL,
	`occurred_at` datetime(3) NOT NULL,
	`recorded_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `stream_events_id` PRIMARY KEY(`id`),
	CONSTRAINT `stream_events_event_id_uq` UNIQUE(`event_id`)
);
--> statement-breakpoint
ALTER TABLE `streams` ADD CONSTRAINT `streams_user_id_users_id_fk` FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE `stream_participants` ADD CONSTRAINT `stream_participants_stream_id_streams_id_fk` FOREIGN KEY (`stream_id`) REFERENCES `streams`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE `stream_participants` ADD CONSTRAINT `stream_participants_user_id_users_id_fk` FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX `streams_user_id_idx` ON `streams` (`user_id`,`id`);--> statement-breakpoint
CREATE INDEX `streams_status_idx` ON `streams` (`status`,`id`);--> statement-breakpoint
CREATE INDEX `streams_node_status_idx` ON `streams` (`ingest_node_id`,`status`);--> statement-breakpoint
CREATE INDEX `stream_participants_user_idx` ON `stream_participants` (`user_id`);--> statement-breakpoint
CREATE INDEX `stream_events_stream_idx` ON `stream_events` (`stream_id`,`occurred_at`);