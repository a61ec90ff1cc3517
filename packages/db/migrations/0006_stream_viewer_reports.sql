-- Each ingest node's latest viewer count of each stream it serves (`stream.viewers` events). A stream's viewer_count is
-- the sum of the reports received within the api's VIEWER_REPORT_TTL_MS, so a node that goes away stops counting.
-- reported_at is the node's clock (orders one node's reports), received_at the database's (freshness).
CREATE TABLE `stream_viewer_reports` (
	`stream_id` bigint unsigned NOT NULL,
	`node_id` varchar(128) NOT NULL,
	`viewers` int unsigned NOT NULL,
	`reported_at` datetime(3) NOT NULL,
	`received_at` datetime(3) NOT NULL,
	CONSTRAINT `stream_viewer_reports_stream_id_node_id_pk` PRIMARY KEY(`stream_id`,`node_id`),
	CONSTRAINT `stream_viewer_reports_stream_id_streams_id_fk` FOREIGN KEY (`stream_id`) REFERENCES `streams`(`id`) ON DELETE cascade ON UPDATE no action
);
