-- PostgreSQL twin of migrations/sqlite/0008_imagenet_records.sql (top-5,
-- skipped images, multiply-adds; comments there). Never edit this file
-- once released.

ALTER TABLE train_epochs ADD COLUMN train_top5 DOUBLE PRECISION;
ALTER TABLE train_epochs ADD COLUMN test_top5 DOUBLE PRECISION;
ALTER TABLE train_epochs ADD COLUMN skipped_images BIGINT;

ALTER TABLE runs ADD COLUMN madds BIGINT;
