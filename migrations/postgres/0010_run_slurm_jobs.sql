-- PostgreSQL twin of migrations/sqlite/0010_run_slurm_jobs.sql (the Slurm
-- job of a `train --slurm` run; comments there): here the column's NOT
-- NULL is dropped in place. Never edit this file once released.

ALTER TABLE slurm_jobs ALTER COLUMN sweep DROP NOT NULL;
ALTER TABLE slurm_jobs ADD COLUMN run_id BIGINT REFERENCES runs (id) ON DELETE CASCADE;
ALTER TABLE slurm_jobs ADD CONSTRAINT slurm_jobs_sweep_or_run
    CHECK ((sweep IS NULL) <> (run_id IS NULL));
CREATE INDEX slurm_jobs_run ON slurm_jobs (run_id);
