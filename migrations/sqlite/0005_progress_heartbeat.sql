-- A heartbeat that carries progress (issue 14): how many batches (weight
-- steps and evaluation batches) the current worker of a run has done, as of
-- its last heartbeat. A run whose heartbeat keeps coming while this stops
-- moving is hung (a deadlock, a stuck GPU kernel, a hung file system), and
-- its orchestrator kills and retries it. Never edit this file once released.

ALTER TABLE runs ADD COLUMN steps_done INTEGER;
