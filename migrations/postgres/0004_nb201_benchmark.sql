-- PostgreSQL twin of migrations/sqlite/0004_nb201_benchmark.sql (NB201
-- benchmark accuracy, issue 12; comments there). The UPDATEs find no rows
-- on a new PostgreSQL database but are kept, as there.
-- Never edit this file once released.

UPDATE nb201_accuracy SET accuracy = accuracy * 100.0
 WHERE dataset IN (SELECT dataset FROM nb201_accuracy GROUP BY dataset HAVING max(accuracy) <= 1.0);

ALTER TABLE epochs ADD COLUMN nb201_cifar10 DOUBLE PRECISION;
ALTER TABLE epochs ADD COLUMN nb201_cifar100 DOUBLE PRECISION;
ALTER TABLE epochs ADD COLUMN nb201_imagenet16 DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN nb201_cifar10 DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN nb201_cifar100 DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN nb201_imagenet16 DOUBLE PRECISION;

UPDATE epochs SET
    nb201_cifar10    = (SELECT a.accuracy FROM nb201_accuracy a WHERE a.arch = epochs.genotype AND a.dataset = 'cifar10'),
    nb201_cifar100   = (SELECT a.accuracy FROM nb201_accuracy a WHERE a.arch = epochs.genotype AND a.dataset = 'cifar100'),
    nb201_imagenet16 = (SELECT a.accuracy FROM nb201_accuracy a WHERE a.arch = epochs.genotype AND a.dataset = 'ImageNet16-120')
 WHERE run_id IN (SELECT id FROM runs WHERE space = 'nb201');
UPDATE runs SET
    nb201_cifar10    = (SELECT a.accuracy FROM nb201_accuracy a WHERE a.arch = runs.final_genotype AND a.dataset = 'cifar10'),
    nb201_cifar100   = (SELECT a.accuracy FROM nb201_accuracy a WHERE a.arch = runs.final_genotype AND a.dataset = 'cifar100'),
    nb201_imagenet16 = (SELECT a.accuracy FROM nb201_accuracy a WHERE a.arch = runs.final_genotype AND a.dataset = 'ImageNet16-120')
 WHERE space = 'nb201';

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
    r.nb201_cifar10,
    r.nb201_cifar100,
    r.nb201_imagenet16,
    (SELECT string_agg(e.search_run_id::text, ',' ORDER BY e.search_run_id)
       FROM evaluations e WHERE e.train_run_id = r.id)                          AS parent,
    (SELECT string_agg(s.sweep, ',' ORDER BY s.sweep COLLATE "C")
       FROM sweep_runs s WHERE s.run_id = r.id)                                 AS sweep
FROM runs r
CROSS JOIN LATERAL (SELECT r.config_json::jsonb) AS j (c);
