-- Train runs (issue 12): a searched cell trained from scratch by the DARTS
-- protocol. They live in `runs` like searches (method 'train', so claims,
-- heartbeats, retries and the orchestrator work for them unchanged), with
-- their own per-epoch table and a link to the search(es) whose cell they
-- train. Never edit this file once released.

ALTER TABLE runs ADD COLUMN params INTEGER;        -- train runs: parameters without the auxiliary head
ALTER TABLE runs ADD COLUMN final_test_acc REAL;   -- train runs: test accuracy after the last epoch
ALTER TABLE runs ADD COLUMN best_test_acc REAL;    -- train runs: best test accuracy over the epochs

-- Everything a training epoch measures (nas::train::TrainEpoch).
CREATE TABLE train_epochs (
    run_id          INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    epoch           INTEGER NOT NULL,  -- from 0
    train_acc       REAL    NOT NULL,
    train_loss      REAL    NOT NULL,
    test_acc        REAL    NOT NULL,
    test_loss       REAL    NOT NULL,
    lr              REAL    NOT NULL,
    drop_path_prob  REAL    NOT NULL,
    wall_s          REAL    NOT NULL,
    images_per_s    REAL    NOT NULL,
    peak_mem_bytes  INTEGER NOT NULL,
    PRIMARY KEY (run_id, epoch)
);

-- Which search run's cell a train run trains; a cell two searches found
-- is trained once per train config and linked to both.
CREATE TABLE evaluations (
    search_run_id   INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    train_run_id    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    PRIMARY KEY (search_run_id, train_run_id)
);
CREATE INDEX evaluations_train ON evaluations (train_run_id);

DROP VIEW run_summary;
CREATE VIEW run_summary AS
SELECT
    r.id,
    r.fingerprint,
    r.status,
    r.method,
    r.space,
    r.dataset,
    r.seed,
    r.definitions,
    CASE WHEN r.method = 'ddsas' THEN json_extract(r.config_json, '$.L') END             AS L,
    CASE WHEN r.method = 'ddsas' THEN json_extract(r.config_json, '$.M') END             AS M,
    CASE WHEN r.method = 'ddsas' THEN json_extract(r.config_json, '$.approximation') END AS approximation,
    json_extract(r.config_json, '$.epochs')                                              AS epochs,
    json_extract(r.config_json, '$.batch_size')                                          AS batch_size,
    json_extract(r.config_json, '$.layers')                                              AS layers,
    json_extract(r.config_json, '$.init_channels')                                       AS init_channels,
    CASE WHEN r.method = 'ddsas' THEN json_extract(r.config_json, '$.ucb_c') END         AS ucb_c,
    r.epochs_done,
    r.final_valid_acc AS valid_acc,
    r.best_valid_acc,
    r.final_genotype AS genotype,
    (SELECT e.skip_normal FROM epochs e
      WHERE e.run_id = r.id ORDER BY e.epoch DESC LIMIT 1)                               AS skip_normal,
    r.wall_s,
    r.device,
    r.error,
    r.params,
    r.final_test_acc AS test_acc,
    r.best_test_acc,
    (SELECT group_concat(search_run_id, ',') FROM
      (SELECT e.search_run_id FROM evaluations e WHERE e.train_run_id = r.id ORDER BY e.search_run_id)) AS parent,
    -- A sorted subquery rather than group_concat(... ORDER BY ...), which
    -- needs SQLite 3.44: older sqlite3 shells must still open the file.
    (SELECT group_concat(sweep, ',') FROM
      (SELECT s.sweep FROM sweep_runs s WHERE s.run_id = r.id ORDER BY s.sweep))       AS sweep
FROM runs r;
