-- Hand-written inverse of 0003_updated_at_on_update.sql: `updated_at` no longer moves by itself.
ALTER TABLE `streams` MODIFY COLUMN `updated_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3);--> statement-breakpoint
ALTER TABLE `users` MODIFY COLUMN `updated_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3);
