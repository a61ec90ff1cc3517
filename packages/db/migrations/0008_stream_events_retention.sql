-- The api's reaper deletes viewer-report rows of the event ledger once they are older than VIEWER_LEDGER_RETENTION_MS
-- (a live stream leaves one every few seconds per node); this index finds them without scanning the ledger.
CREATE INDEX `stream_events_type_recorded_idx` ON `stream_events` (`type`,`recorded_at`);
