-- PostgreSQL twin of migrations/sqlite/0002_definitions.sql (runs.definitions,
-- issue 10; comments there). Never edit this file once released.

ALTER TABLE runs ADD COLUMN definitions BIGINT NOT NULL DEFAULT 1;

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
    (SELECT string_agg(s.sweep, ',' ORDER BY s.sweep COLLATE "C")
       FROM sweep_runs s WHERE s.run_id = r.id)                                 AS sweep
FROM runs r
CROSS JOIN LATERAL (SELECT r.config_json::jsonb) AS j (c);
