-- Definitions version of each run (issue 10). DDSAS's L counts `none` from
-- version 2 on and GDAS adds its unpicked ops' hard weights; the same config
-- then measures something else, so the version enters the fingerprint and
-- is kept here: every run registered before this migration has version 1.
-- `ddsas runs list` marks runs whose version is older than the one this
-- ddsas runs their method under. Never edit this file once released.

ALTER TABLE runs ADD COLUMN definitions INTEGER NOT NULL DEFAULT 1;

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
    -- A sorted subquery rather than group_concat(... ORDER BY ...), which
    -- needs SQLite 3.44: older sqlite3 shells must still open the file.
    (SELECT group_concat(sweep, ',') FROM
      (SELECT s.sweep FROM sweep_runs s WHERE s.run_id = r.id ORDER BY s.sweep))       AS sweep
FROM runs r;
