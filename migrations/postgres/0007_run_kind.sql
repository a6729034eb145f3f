-- PostgreSQL twin of migrations/sqlite/0007_run_kind.sql (the kind of a
-- run; comments there). Never edit this file once released.

ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'search';

UPDATE runs SET kind = 'train' WHERE method = 'train';
