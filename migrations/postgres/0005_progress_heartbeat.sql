-- PostgreSQL twin of migrations/sqlite/0005_progress_heartbeat.sql (progress
-- in the heartbeat, issue 14; comments there). Never edit this file once
-- released.

ALTER TABLE runs ADD COLUMN steps_done BIGINT;
