-- PostgreSQL twin of migrations/sqlite/0009_train_ranks.sql (a train
-- run's world size and backend; comments there). Never edit this file
-- once released.

ALTER TABLE runs ADD COLUMN world_size BIGINT;
ALTER TABLE runs ADD COLUMN dist_backend TEXT;
