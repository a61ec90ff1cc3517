-- Webhook endpoints (Standard Webhooks) an owner registers, and the log of every delivery attempt to them. The secret
-- is kept in the clear because every delivery is signed with it; the api never logs it nor returns it after the
-- answer that created or rotated it. During a rotation the previous secret still signs until it expires (a day).
CREATE TABLE `webhook_endpoints` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`user_id` bigint unsigned NOT NULL,
	`url` varchar(2048) NOT NULL,
	`description` varchar(200),
	`event_types` json,
	`secret` varchar(100) NOT NULL,
	`previous_secret` varchar(100),
	`previous_secret_expires_at` datetime(3),
	`failure_streak` int unsigned NOT NULL DEFAULT 0,
	`last_success_at` datetime(3),
	`last_failure_at` datetime(3),
	`disabled_at` datetime(3),
	`disabled_reason` varchar(255),
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`updated_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
	CONSTRAINT `webhook_endpoints_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `webhook_deliveries` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`endpoint_id` bigint unsigned NOT NULL,
	`event_id` varchar(128) NOT NULL,
	`event_type` varchar(64) NOT NULL,
	`attempt` smallint unsigned NOT NULL,
	`status` enum('succeeded','failed') NOT NULL,
	`http_status` smallint unsigned,
	`error` varchar(255),
	`response_excerpt` varchar(255),
	`duration_ms` int unsigned NOT NULL,
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `webhook_deliveries_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
ALTER TABLE `webhook_endpoints` ADD CONSTRAINT `webhook_endpoints_user_id_users_id_fk` FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE `webhook_deliveries` ADD CONSTRAINT `webhook_deliveries_endpoint_id_webhook_endpoints_id_fk` FOREIGN KEY (`endpoint_id`) REFERENCES `webhook_endpoints`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX `webhook_endpoints_user_idx` ON `webhook_endpoints` (`user_id`,`id`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_endpoint_idx` ON `webhook_deliveries` (`endpoint_id`,`id`);
