-- ddsas run history, schema v1 (DESIGN.md §3, §5, §6).
--
-- Conventions every later migration keeps:
--   * times are unix seconds as REAL (`created_at`, `heartbeat_at`, ...);
--   * per-epoch tables are keyed by (run_id, epoch, ...) and hold names, not
--     indices (cell `normal`/`reduce`/`cell`, op `sep_conv_3x3`, ...), so that
--     `ddsas sql` reads well without a lookup table;
--   * "cumulative" tables (sampling_counts, ratio_hist) store the running
--     total as of the end of each epoch, so the last epoch is the whole run;
--   * a redo of epoch e deletes every per-epoch row with epoch >= e first,
--     so a crash between two epochs never leaves duplicates.
-- Never edit this file once released: sqlx checks its checksum.

-- One row per resolved search config. `fingerprint` is the identity of a run
-- across sweeps (hash of `config_json`, the canonical JSON).
CREATE TABLE runs (
    id              INTEGER PRIMARY KEY,
    fingerprint     TEXT    NOT NULL UNIQUE,
    method          TEXT    NOT NULL,
    space           TEXT    NOT NULL,
    dataset         TEXT    NOT NULL,
    seed            INTEGER NOT NULL,
    config_json     TEXT    NOT NULL CHECK (json_valid(config_json)),
    status          TEXT    NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'done', 'failed', 'interrupted')),
    device          TEXT,              -- 'cpu', 'cuda:0', ... of the last claim
    owner           TEXT,              -- orchestrator/worker id of the last claim
    pid             INTEGER,           -- worker process of the last claim
    attempts        INTEGER NOT NULL DEFAULT 0,
    epochs_total    INTEGER NOT NULL,
    epochs_done     INTEGER NOT NULL DEFAULT 0,
    created_at      REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    started_at      REAL,              -- first claim
    finished_at     REAL,              -- done / failed / interrupted
    heartbeat_at    REAL,              -- last sign of life of the owner
    wall_s          REAL,              -- search wall seconds of the finished run
    final_genotype  TEXT,
    final_valid_acc REAL,
    best_valid_acc  REAL,              -- max over the recorded epochs
    error           TEXT,              -- last failure, cleared by the next claim
    checkpoint_path TEXT
);
CREATE INDEX runs_status ON runs (status);
CREATE INDEX runs_method_space_dataset ON runs (method, space, dataset);

-- Everything scalar an epoch measures (metrics::EpochRecord).
CREATE TABLE epochs (
    run_id          INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    epoch           INTEGER NOT NULL,  -- from 0
    train_acc       REAL    NOT NULL,
    train_loss      REAL    NOT NULL,
    valid_acc       REAL    NOT NULL,
    valid_loss      REAL    NOT NULL,
    lr              REAL    NOT NULL,
    tau             REAL,              -- GDAS only
    genotype        TEXT    NOT NULL,
    skip_normal     INTEGER NOT NULL,
    skip_reduce     INTEGER,           -- DARTS space only
    cosine_distance REAL,              -- NULL for the first epoch
    wall_s          REAL    NOT NULL,
    images_per_s    REAL    NOT NULL,
    peak_mem_bytes  INTEGER,
    recorded_at     REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    PRIMARY KEY (run_id, epoch)
) WITHOUT ROWID;

-- Fig. 9: how many sampled subspaces contained (cell, edge, op), cumulative
-- as of the end of `epoch`.
CREATE TABLE sampling_counts (
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    epoch      INTEGER NOT NULL,
    cell       TEXT    NOT NULL,       -- 'normal', 'reduce' or 'cell' (NB201)
    edge       INTEGER NOT NULL,       -- edge index in SearchSpace order
    edge_label TEXT    NOT NULL,       -- '(from,to)' nodes of that edge
    op         TEXT    NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (run_id, epoch, cell, edge, op)
) WITHOUT ROWID;

-- Fig. 12 a/c: one row per sampled subspace and cell type.
CREATE TABLE subspaces (
    run_id       INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    iteration    INTEGER NOT NULL,     -- subspace number within the run, from 0
    epoch        INTEGER NOT NULL,     -- epoch during which it was sampled
    cell         TEXT    NOT NULL,
    size         INTEGER NOT NULL,     -- counted ops (L)
    combinations INTEGER NOT NULL,     -- sum over edges of y_c^2
    PRIMARY KEY (run_id, iteration, cell)
) WITHOUT ROWID;
CREATE INDEX subspaces_epoch ON subspaces (run_id, epoch);

-- Fig. 12 b: histogram of r = p[k1]/p[k2], cumulative as of the end of `epoch`.
CREATE TABLE ratio_hist (
    run_id    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    epoch     INTEGER NOT NULL,
    cell      TEXT    NOT NULL,
    bin       TEXT    NOT NULL,        -- label from metrics::RATIO_BINS
    bin_index INTEGER NOT NULL,        -- 0..4, for ordering
    count     INTEGER NOT NULL,
    PRIMARY KEY (run_id, epoch, cell, bin_index)
) WITHOUT ROWID;

-- Fig. 10: per-step measurements (only when the run logs steps).
CREATE TABLE steps (
    run_id          INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step            INTEGER NOT NULL,  -- global step, from 0
    epoch           INTEGER NOT NULL,
    cosine_distance REAL,              -- NULL for the first step
    minibatch_acc   REAL    NOT NULL,
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
CREATE INDEX steps_epoch ON steps (run_id, epoch);

-- Sweeps (DESIGN.md §5): a named group of runs, expanded from a YAML file.
CREATE TABLE sweeps (
    name        TEXT    PRIMARY KEY,
    description TEXT,
    file        TEXT,                  -- path the sweep was read from
    spec_yaml   TEXT,                  -- the file's text at expansion time
    created_at  REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    cancelled   INTEGER NOT NULL DEFAULT 0 CHECK (cancelled IN (0, 1))
);

-- A run may belong to several sweeps (a `done` fingerprint is shared).
CREATE TABLE sweep_runs (
    sweep    TEXT    NOT NULL REFERENCES sweeps (name) ON DELETE CASCADE,
    run_id   INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    position INTEGER,                  -- index in the sweep's deterministic expansion
    PRIMARY KEY (sweep, run_id)
) WITHOUT ROWID;
CREATE INDEX sweep_runs_run ON sweep_runs (run_id);

-- Imported NAS-Bench-201 accuracies, keyed by arch string
-- ('|op~0|+|op~0|op~1|+|op~0|op~1|op~2|') and benchmark dataset name.
CREATE TABLE nb201_accuracy (
    arch     TEXT NOT NULL,
    dataset  TEXT NOT NULL,
    accuracy REAL NOT NULL,            -- percent or fraction as in the source; see source
    source   TEXT,                     -- file it was imported from
    PRIMARY KEY (arch, dataset)
) WITHOUT ROWID;

-- One row per run for `ddsas runs --where ...` and `ddsas sql`. The column
-- names are part of the user interface (`--where "L = 28 and M >= 10"`).
-- DDSAS-only knobs are NULL for the baselines: their resolved configs pin
-- them to the defaults, which would otherwise match `L = 28` misleadingly.
CREATE VIEW run_summary AS
SELECT
    r.id,
    r.fingerprint,
    r.status,
    r.method,
    r.space,
    r.dataset,
    r.seed,
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
    -- A sorted subquery rather than group_concat(... ORDER BY ...), which
    -- needs SQLite 3.44: older sqlite3 shells must still open the file.
    (SELECT group_concat(sweep, ',') FROM
      (SELECT s.sweep FROM sweep_runs s WHERE s.run_id = r.id ORDER BY s.sweep))       AS sweep
FROM runs r;
