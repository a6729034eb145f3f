-- Slurm jobs of a sweep (issue 13): `ddsas sweep submit --slurm` records
-- each job array it submits, so that `sweep status` can ask squeue about
-- exactly these jobs (in one call) and `sweep cancel` can scancel them.
-- The runs themselves know nothing of Slurm: the pull workers claim them
-- like any orchestrator. Never edit this file once released.

CREATE TABLE slurm_jobs (
    job_id       TEXT    PRIMARY KEY,   -- sbatch's id of the job array ("4242")
    sweep        TEXT    NOT NULL REFERENCES sweeps (name) ON DELETE CASCADE,
    tasks        INTEGER NOT NULL,      -- array tasks (pull workers) asked for
    script_path  TEXT    NOT NULL,      -- the batch script, kept for the user
    submitted_at REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)
);
CREATE INDEX slurm_jobs_sweep ON slurm_jobs (sweep);
