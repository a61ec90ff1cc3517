-- Hand-written inverse of 0005_webhooks.sql: the delivery log first (it refers to the endpoints).
DROP TABLE `webhook_deliveries`;--> statement-breakpoint
DROP TABLE `webhook_endpoints`;
