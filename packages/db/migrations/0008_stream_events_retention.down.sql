-- Hand-written inverse of 0008_stream_events_retention.sql.
DROP INDEX `stream_events_type_recorded_idx` ON `stream_events`;
