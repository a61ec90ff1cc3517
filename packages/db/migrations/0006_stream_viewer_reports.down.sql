-- Hand-written inverse of 0006_stream_viewer_reports.sql.
DROP TABLE `stream_viewer_reports`;
