-- NAS-Bench-201 benchmark accuracy stored with each NB201 search (issue
-- 12): the test accuracy, in percent, of the architecture derived at every
-- epoch and of the final one, on the benchmark's three datasets, looked up
-- in `nb201_accuracy` when the epoch or run is recorded and again whenever
-- a table is imported. NULL: no table of that dataset imported yet, or the
-- architecture is not in it. Never edit this file once released.

-- The imported table holds percent from now on (the importer scales a file
-- of fractions), so that a lookup is one indexed read; earlier imports of
-- fractions are scaled here, judged per dataset as the report did.
UPDATE nb201_accuracy SET accuracy = accuracy * 100.0
 WHERE dataset IN (SELECT dataset FROM nb201_accuracy GROUP BY dataset HAVING max(accuracy) <= 1.0);

ALTER TABLE epochs ADD COLUMN nb201_cifar10 REAL;
ALTER TABLE epochs ADD COLUMN nb201_cifar100 REAL;
ALTER TABLE epochs ADD COLUMN nb201_imagenet16 REAL;
ALTER TABLE runs ADD COLUMN nb201_cifar10 REAL;
ALTER TABLE runs ADD COLUMN nb201_cifar100 REAL;
ALTER TABLE runs ADD COLUMN nb201_imagenet16 REAL;

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
    r.nb201_cifar10,
    r.nb201_cifar100,
    r.nb201_imagenet16,
    (SELECT group_concat(search_run_id, ',') FROM
      (SELECT e.search_run_id FROM evaluations e WHERE e.train_run_id = r.id ORDER BY e.search_run_id)) AS parent,
    -- A sorted subquery rather than group_concat(... ORDER BY ...), which
    -- needs SQLite 3.44: older sqlite3 shells must still open the file.
    (SELECT group_concat(sweep, ',') FROM
      (SELECT s.sweep FROM sweep_runs s WHERE s.run_id = r.id ORDER BY s.sweep))       AS sweep
FROM runs r;
