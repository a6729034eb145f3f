-- How a train run was last run: its world size (ranks of a data-parallel
-- run, 1 for one process) and the backend of its collectives (`gloo`,
-- `nccl`; NULL for one process), written by the claim of the process that
-- records the run (rank 0), so a run resumed with another `--nproc` shows
-- the last. NULL for searches and for train runs claimed before this
-- migration. `run_summary` is left as it is: `runs list --format csv`
-- prints every one of its columns. Never edit this file once released.

ALTER TABLE runs ADD COLUMN world_size INTEGER;
ALTER TABLE runs ADD COLUMN dist_backend TEXT;
