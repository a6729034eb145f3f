-- Slurm jobs of a train run (issue 25): `ddsas train --slurm` records the
-- job it submits here too, beside the job arrays of sweeps, so that
-- `runs show` can name the job (and ask squeue about it) and `runs cancel`
-- can scancel it. A row belongs to a sweep or to a run, never both:
-- `sweep` becomes nullable and `run_id` is added. SQLite cannot drop a NOT
-- NULL, so the table is made again and its rows copied (nothing refers to
-- it). Never edit this file once released.

CREATE TABLE slurm_jobs_0010 (
    job_id       TEXT    PRIMARY KEY,   -- sbatch's id of the job (array)
    sweep        TEXT    REFERENCES sweeps (name) ON DELETE CASCADE,
    run_id       INTEGER REFERENCES runs (id) ON DELETE CASCADE,
    tasks        INTEGER NOT NULL,      -- array tasks (pull workers), or ranks of a train job
    script_path  TEXT    NOT NULL,      -- the batch script, kept for the user
    submitted_at REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    CHECK ((sweep IS NULL) <> (run_id IS NULL))
);
INSERT INTO slurm_jobs_0010 (job_id, sweep, run_id, tasks, script_path, submitted_at)
    SELECT job_id, sweep, NULL, tasks, script_path, submitted_at FROM slurm_jobs;
DROP TABLE slurm_jobs;
ALTER TABLE slurm_jobs_0010 RENAME TO slurm_jobs;
CREATE INDEX slurm_jobs_sweep ON slurm_jobs (sweep);
CREATE INDEX slurm_jobs_run ON slurm_jobs (run_id);
