-- Hand-written inverse of 0007_platform_event_outbox.sql. Events still owed are lost with it.
DROP TABLE `platform_event_outbox`;
