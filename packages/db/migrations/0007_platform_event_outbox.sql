-- The transactional outbox of platform events: a row per announced change, written in the transaction that makes the
-- change, deleted once every sink (webhook fan-out, live updates) has taken the event. A row left behind (the process
-- died between COMMIT and the announcement, or a sink failed) is re-emitted by the api's relay under the same id.
-- The event's data is state, rebuilt from the stream row when it is emitted; what the row keeps is what state cannot
-- say: the type, the participant, the reason, when. event_id is compared byte for byte (random base64url ids).
CREATE TABLE `platform_event_outbox` (
	`event_id` varchar(160) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`type` varchar(64) NOT NULL,
	`stream_id` bigint unsigned NOT NULL,
	`participant_user_id` bigint unsigned,
	`reason` varchar(64),
	`occurred_at` datetime(3) NOT NULL,
	`attempts` int unsigned NOT NULL DEFAULT 0,
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `platform_event_outbox_event_id_pk` PRIMARY KEY(`event_id`)
);
--> statement-breakpoint
CREATE INDEX `platform_event_outbox_created_idx` ON `platform_event_outbox` (`created_at`);
