-- `updated_at` is kept by the database on every change of the row, whoever writes it: drizzle's `$onUpdate` only ran for
-- writes made through drizzle, so a stream's start and end (plain SQL) left it at the creation time.
ALTER TABLE `streams` MODIFY COLUMN `updated_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3);--> statement-breakpoint
ALTER TABLE `users` MODIFY COLUMN `updated_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3);
