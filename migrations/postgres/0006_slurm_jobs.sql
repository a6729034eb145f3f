-- Slurm jobs of a sweep (issue 13): `ddsas sweep submit --slurm` records
-- each job array it submits, so that `sweep status` can ask squeue about
-- exactly these jobs (in one call) and `sweep cancel` can scancel them.
-- The same table as migrations/sqlite/0006_slurm_jobs.sql. Never edit this
-- file once released.

CREATE TABLE slurm_jobs (
    job_id       TEXT             PRIMARY KEY,   -- sbatch's id of the job array ("4242")
    sweep        TEXT             NOT NULL REFERENCES sweeps (name) ON DELETE CASCADE,
    tasks        BIGINT           NOT NULL,      -- array tasks (pull workers) asked for
    script_path  TEXT             NOT NULL,      -- the batch script, kept for the user
    submitted_at DOUBLE PRECISION NOT NULL DEFAULT date_part('epoch', clock_timestamp())
);
CREATE INDEX slurm_jobs_sweep ON slurm_jobs (sweep);
