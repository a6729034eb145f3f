-- PostgreSQL twin of migrations/sqlite/0003_train_runs.sql (train runs,
-- issue 12; comments there). Never edit this file once released.

ALTER TABLE runs ADD COLUMN params BIGINT;
ALTER TABLE runs ADD COLUMN final_test_acc DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN best_test_acc DOUBLE PRECISION;

CREATE TABLE train_epochs (
    run_id          BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    epoch           BIGINT NOT NULL,
    train_acc       DOUBLE PRECISION NOT NULL,
    train_loss      DOUBLE PRECISION NOT NULL,
    test_acc        DOUBLE PRECISION NOT NULL,
    test_loss       DOUBLE PRECISION NOT NULL,
    lr              DOUBLE PRECISION NOT NULL,
    drop_path_prob  DOUBLE PRECISION NOT NULL,
    wall_s          DOUBLE PRECISION NOT NULL,
    images_per_s    DOUBLE PRECISION NOT NULL,
    peak_mem_bytes  BIGINT NOT NULL,
    PRIMARY KEY (run_id, epoch)
);

CREATE TABLE evaluations (
    search_run_id   BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    train_run_id    BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
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
    CASE WHEN r.method = 'ddsas' THEN (j.c ->> 'L')::bigint END                 AS L,
    CASE WHEN r.method = 'ddsas' THEN (j.c ->> 'M')::bigint END                 AS M,
    CASE WHEN r.method = 'ddsas' THEN
        CASE j.c ->> 'approximation' WHEN 'true' THEN 1::bigint WHEN 'false' THEN 0::bigint END
    END                                                                         AS approximation,
    (j.c ->> 'epochs')::bigint                                                  AS epochs,
    (j.c ->> 'batch_size')::bigint                                              AS batch_size,
    (j.c ->> 'layers')::bigint                                                  AS layers,
    (j.c ->> 'init_channels')::bigint                                           AS init_channels,
    CASE WHEN r.method = 'ddsas' THEN (j.c ->> 'ucb_c')::double precision END   AS ucb_c,
    r.epochs_done,
    r.final_valid_acc AS valid_acc,
    r.best_valid_acc,
    r.final_genotype AS genotype,
    (SELECT e.skip_normal FROM epochs e
      WHERE e.run_id = r.id ORDER BY e.epoch DESC LIMIT 1)                      AS skip_normal,
    r.wall_s,
    r.device,
    r.error,
    r.params,
    r.final_test_acc AS test_acc,
    r.best_test_acc,
    (SELECT string_agg(e.search_run_id::text, ',' ORDER BY e.search_run_id)
       FROM evaluations e WHERE e.train_run_id = r.id)                          AS parent,
    (SELECT string_agg(s.sweep, ',' ORDER BY s.sweep COLLATE "C")
       FROM sweep_runs s WHERE s.run_id = r.id)                                 AS sweep
FROM runs r
CROSS JOIN LATERAL (SELECT r.config_json::jsonb) AS j (c);
