//! End-to-end tests of `ddsas report` and `ddsas nb201 import`: a database
//! of real tiny searches (digits and the CIFAR fixture, one thread each),
//! tagged into sweeps the way `ddsas sweep run` records them; every figure
//! file checked as a PNG / SVG of the size its sidecar states, and the
//! numbers the figures and Table 5 show checked against SQL written here,
//! independently of the report code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

use super::util::{rt, scalar, BIN};

/// Tiny searches: a few seconds each on one core.
const TINY: &[&str] = &[
    "layers=1",
    "init_channels=4",
    "batch_size=16",
    "epochs=2",
    "steps_per_epoch=4",
];

/// Runs of the fixture database, by role.
struct Fixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
}

fn search(db: &Path, sets: &[&str]) {
    let mut cmd = Command::new(BIN);
    cmd.args(["search", "--quiet", "--threads", "1", "--db"])
        .arg(db);
    for s in TINY.iter().chain(sets) {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().expect("ddsas runs");
    assert!(
        out.status.success(),
        "search {sets:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cifar_dir() -> String {
    format!(
        "data_dir={}/tests/fixtures/cifar",
        env!("CARGO_MANIFEST_DIR")
    )
}

async fn pool(db: &Path) -> SqlitePool {
    SqlitePool::connect_with(SqliteConnectOptions::new().filename(db))
        .await
        .unwrap()
}

/// Runs `sql` (no result rows) on `db`.
fn exec(db: &Path, sql: &str) {
    rt().block_on(async {
        let p = pool(db).await;
        sqlx::raw_sql(sql).execute(&p).await.unwrap();
        p.close().await;
    })
}

/// Rows of `sql` as `(run_id or key, f64...)` via a closure over sqlx rows.
fn query<T: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>>(
    db: &Path,
    sql: &str,
) -> Vec<T> {
    rt().block_on(async {
        let p = pool(db).await;
        let rows = sqlx::query_as::<_, T>(sql).fetch_all(&p).await.unwrap();
        p.close().await;
        rows
    })
}

/// The shared database: built once, read by every test (tests that write
/// work on a copy).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let start = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("results.db");
        // An L x M grid with two seeds in one cell, and that cell again
        // without the approximation (Fig. 7, 12, Table 5).
        search(&db, &["L=20", "M=1", "seed=1", "log_steps=true"]);
        search(&db, &["L=20", "M=1", "seed=2", "log_steps=true"]);
        search(&db, &["L=30", "M=1", "seed=1"]);
        search(&db, &["L=20", "M=2", "seed=1"]);
        search(&db, &["L=20", "M=1", "seed=1", "approximation=false"]);
        search(&db, &["L=20", "M=1", "seed=2", "approximation=false"]);
        // Baselines (Figs. 8, 10).
        search(&db, &["method=darts", "seed=1", "log_steps=true"]);
        search(&db, &["method=gdas", "seed=1", "log_steps=true"]);
        // NAS-Bench-201 on the CIFAR-10 fixture (benchmark accuracy).
        let data = cifar_dir();
        for sets in [
            vec!["space=nb201", "dataset=cifar10", "batch_size=8", "L=10", "M=1", "seed=1", data.as_str()],
            vec!["space=nb201", "dataset=cifar10", "batch_size=8", "L=10", "M=1", "seed=2", data.as_str()],
            vec!["space=nb201", "dataset=cifar10", "batch_size=8", "method=darts", "seed=1", data.as_str()],
        ] {
            search(&db, &sets);
        }
        exec(
            &db,
            "INSERT INTO sweeps (name, description) VALUES ('main', 'every run'), ('baselines', 'DARTS and GDAS only'), ('empty', 'no runs');
             INSERT INTO sweep_runs (sweep, run_id, position) SELECT 'main', id, id FROM runs;
             INSERT INTO sweep_runs (sweep, run_id, position) SELECT 'baselines', id, id FROM runs WHERE method <> 'ddsas' AND space = 'darts';",
        );
        eprintln!("fixture database: {:.1} s", start.elapsed().as_secs_f64());
        Fixture { _dir: dir, db }
    })
}

fn report(db: &Path, args: &[&str], out: &Path) -> Output {
    Command::new(BIN)
        .arg("report")
        .args(args)
        .arg("--db")
        .arg(db)
        .arg("--out")
        .arg(out)
        .output()
        .expect("ddsas runs")
}

fn ok(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The NB201 panel of a figure's sidecar.
fn nb201_panel(side: &Value) -> Value {
    side["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["space"] == "nb201")
        .unwrap()
        .clone()
}

/// Width and height from a PNG's signature and IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(
        &b[12..16],
        b"IHDR",
        "{}: first chunk is not IHDR",
        path.display()
    );
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

/// Checks the SVG is a complete document of the given size whose texts are
/// `<text>` elements with a font family.
fn check_svg(path: &Path, (w, h): (u32, u32)) {
    let s = std::fs::read_to_string(path).unwrap();
    let svg = s
        .find("<svg")
        .unwrap_or_else(|| panic!("{}: no <svg", path.display()));
    let head = &s[svg..svg + s[svg..].find('>').unwrap()];
    assert!(
        head.contains(&format!("width=\"{w}\"")) && head.contains(&format!("height=\"{h}\"")),
        "{head}"
    );
    assert!(
        s.trim_end().ends_with("</svg>"),
        "{} is truncated",
        path.display()
    );
    assert_eq!(s.matches("<text").count(), s.matches("</text>").count());
    assert!(
        s.matches("<text").count() > 10,
        "{}: too few texts",
        path.display()
    );
    assert!(s.contains("font-family=\"DejaVu Sans, sans-serif\""));
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn all_writes_every_figure_as_png_svg_and_index() {
    let f = fixture();
    let out = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let text = ok(&report(&f.db, &["all", "--sweep", "main"], out.path()));
    eprintln!("report all: {:.2} s\n{text}", start.elapsed().as_secs_f64());
    let stems = [
        "fig7_lm_grid",
        "fig8_skip",
        "fig9_sampling",
        "fig10_explore_step",
        "fig10_explore_epoch",
        "fig12_combinations",
    ];
    let index = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    for stem in stems {
        let side = json(&out.path().join(format!("{stem}.json")));
        let size = (
            side["width"].as_u64().unwrap() as u32,
            side["height"].as_u64().unwrap() as u32,
        );
        assert!(size.0 >= 1200 && size.1 >= 800, "{stem}: {size:?}");
        assert_eq!(
            png_size(&out.path().join(format!("{stem}.png"))),
            size,
            "{stem}"
        );
        check_svg(&out.path().join(format!("{stem}.svg")), size);
        assert!(
            index.contains(&format!("src=\"{stem}.png\"")),
            "index lacks {stem}"
        );
        assert!(
            text.contains(&format!("{stem}.png")),
            "summary lacks {stem}"
        );
    }
    for t in ["table5.md", "table5.csv", "table5.tex", "table5.json"] {
        assert!(out.path().join(t).is_file(), "{t}");
    }
    // The cells of each setting's best run, every picture shown and linked.
    let cells = json(&out.path().join("cells.json"));
    let pictures = cells["pictures"].as_array().unwrap();
    assert!(pictures.len() >= 2, "{cells}");
    for p in pictures {
        let stem = p["stem"].as_str().unwrap();
        assert!(
            index.contains(&format!("<a href=\"{stem}.svg\"><img src=\"{stem}.png\"")),
            "index lacks {stem}"
        );
    }
    // Captions say which runs, seeds and metric.
    assert!(index.contains("final valid accuracy"));
    assert!(index.contains("seeds"));
    assert!(index.contains("runs "));
    // Same file names the second time (deterministic).
    let again = tempfile::tempdir().unwrap();
    ok(&report(&f.db, &["all", "--sweep", "main"], again.path()));
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(out.path()), names(again.path()));
    assert_eq!(
        std::fs::read(out.path().join("fig9_sampling.json")).unwrap(),
        std::fs::read(again.path().join("fig9_sampling.json")).unwrap()
    );
}

#[derive(sqlx::FromRow)]
struct Agg {
    approximation: i64,
    n: i64,
    mean: f64,
    var: f64,
}

#[test]
fn table5_is_the_sql_mean_and_population_std() {
    let f = fixture();
    let out = tempfile::tempdir().unwrap();
    let printed = ok(&report(&f.db, &["table5", "--sweep", "main"], out.path()));
    // Runs that differ only in seed and approximation: DDSAS, L=20, M=1,
    // DARTS space, digits.
    let rows: Vec<Agg> = query(
        &f.db,
        "SELECT approximation, count(*) AS n, avg(e) AS mean, avg(e * e) - avg(e) * avg(e) AS var
         FROM (SELECT approximation, 100.0 * (1.0 - valid_acc) AS e FROM run_summary
               WHERE method = 'ddsas' AND space = 'darts' AND L = 20 AND M = 1 AND status = 'done')
         GROUP BY approximation ORDER BY approximation",
    );
    assert_eq!(rows.len(), 2);
    let side = json(&out.path().join("table5.json"));
    let cols = side["columns"].as_array().unwrap();
    assert_eq!(cols.len(), 1, "{side}");
    let md = std::fs::read_to_string(out.path().join("table5.md")).unwrap();
    for r in &rows {
        // Population variance from SQL; SQLite's bundled build has no sqrt().
        let std = r.var.max(0.0).sqrt();
        let v = &cols[0][if r.approximation == 0 {
            "without"
        } else {
            "with"
        }];
        assert_eq!(v["runs"].as_array().unwrap().len() as i64, r.n);
        assert!(
            close(v["mean"].as_f64().unwrap(), r.mean),
            "{v} vs {}",
            r.mean
        );
        assert!(
            (v["std"].as_f64().unwrap() - std).abs() < 1e-6,
            "{v} vs {std}"
        );
        let cell = format!("{:.2} ± {:.2} (n = {})", r.mean, std, r.n);
        assert!(
            md.contains(&cell) && printed.contains(&cell),
            "{cell} not in\n{md}"
        );
    }
    let csv = std::fs::read_to_string(out.path().join("table5.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3);
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("digits,darts,20,1,false,100 - final search valid accuracy (%); not the test error of a trained cell,2,"),
        "{csv}"
    );
    let tex = std::fs::read_to_string(out.path().join("table5.tex")).unwrap();
    assert!(
        tex.contains("\\begin{tabular}{lc}")
            && tex.contains("w/o approximation")
            && tex.contains("\\pm")
    );
    assert!(md.contains("a proxy") && md.contains("not the paper's test error"));
}

/// Train keys of [`train`]'s tiny trainings, and how reports name them.
const TRAIN_SETS: &[&str] = &[
    "epochs=1",
    "layers=3",
    "init_channels=4",
    "batch_size=16",
    "steps_per_epoch=3",
    "cutout=0",
];
const TRAINED: &str = "epochs=1 layers=3 init_channels=4 batch_size=16 cutout=0 steps_per_epoch=3";

/// Table 5's sidecar in `out` has the mean of each SQL row of `rows` in the
/// first column's `without`/`with` cell.
fn assert_table5_means(out: &Path, rows: &[Agg]) {
    let side = json(&out.join("table5.json"));
    for r in rows {
        let cell = if r.approximation == 0 {
            "without"
        } else {
            "with"
        };
        let v = &side["columns"][0][cell];
        assert!(
            close(v["mean"].as_f64().unwrap(), r.mean),
            "{v} vs {}",
            r.mean
        );
    }
}

/// Trains search `id`'s cell on `db` with [`TRAIN_SETS`], then `sets`.
fn train(db: &Path, id: i64, sets: &[&str]) {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "train",
        "--quiet",
        "--threads",
        "1",
        "--from-run",
        &id.to_string(),
        "--db",
    ])
    .arg(db);
    for s in TRAIN_SETS.iter().chain(sets) {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A copy of the fixture database in a new folder.
fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("copy.db");
    exec(&fixture().db, &format!("VACUUM INTO '{}'", db.display()));
    (dir, db)
}

/// Once every search of Table 5 has its cell trained (`train --from-run`),
/// the table shows the test error of the trained cells, label and numbers.
#[test]
fn table5_shows_test_error_once_every_search_is_trained() {
    let (dir, db) = fixture_copy();
    let searches: Vec<(i64,)> = query(
        &db,
        "SELECT id FROM run_summary WHERE method = 'ddsas' AND space = 'darts' AND L = 20 AND M = 1 ORDER BY id",
    );
    for (id,) in &searches {
        train(&db, *id, &[]);
    }
    let out = dir.path().join("out");
    ok(&report(&db, &["table5", "--sweep", "main"], &out));
    let md = std::fs::read_to_string(out.join("table5.md")).unwrap();
    assert!(
        md.contains(&format!(
            "test accuracy after training the searched cell from scratch under the most recent training config ({TRAINED}) (%)"
        )),
        "{md}"
    );
    assert!(!md.contains("proxy"), "{md}");
    let rows: Vec<Agg> = query(
        &db,
        "SELECT approximation, count(*) AS n, avg(e) AS mean, avg(e * e) - avg(e) * avg(e) AS var
         FROM (SELECT s.approximation, 100.0 * (1.0 - (SELECT avg(t.final_test_acc) FROM evaluations v
                 JOIN runs t ON t.id = v.train_run_id WHERE v.search_run_id = s.id)) AS e
               FROM run_summary s
               WHERE s.method = 'ddsas' AND s.space = 'darts' AND s.L = 20 AND s.M = 1)
         GROUP BY approximation ORDER BY approximation",
    );
    assert_table5_means(&out, &rows);
}

/// A search whose cell is trained under two configs: its test
/// accuracy is never their mean. The sweep's `evaluate:` config is used
/// when the sweep has one; without it, searches whose latest trainings
/// disagree give no test error (the proxy, saying why). `report results`
/// has a row per config and `runs show` a line per config.
#[test]
fn a_search_trained_under_two_configs_uses_one_config_and_shows_both() {
    let (dir, db) = fixture_copy();
    let searches: Vec<i64> = ids_of(
        &db,
        "SELECT id FROM run_summary WHERE method = 'ddsas' AND space = 'darts' AND L = 20 AND M = 1 ORDER BY id",
    );
    for &id in &searches {
        train(&db, id, &[]);
    }
    let twice = searches[0];
    train(&db, twice, &["lr=0.05"]);
    let other =
        "epochs=1 layers=3 init_channels=4 batch_size=16 lr=0.05 cutout=0 steps_per_epoch=3"
            .to_string();

    // Without `evaluate:`, the latest trainings disagree: no test error.
    let out = dir.path().join("latest");
    ok(&report(&db, &["table5", "--sweep", "main"], &out));
    let md = std::fs::read_to_string(out.join("table5.md")).unwrap();
    assert!(
        md.contains("a proxy: the searches' latest trainings are under 2 train configs")
            && md.contains(&format!("{other} for run {twice}"))
            && md.contains("`evaluate:`"),
        "{md}"
    );
    let refused = report(
        &db,
        &["fig7", "--sweep", "main", "--metric", "test_acc"],
        &out,
    );
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("no one train config"), "{said}");

    // The sweep's own config, as registered: the first one.
    let evaluate = TRAIN_SETS
        .iter()
        .map(|s| format!("  {}\n", s.replace('=', ": ")))
        .collect::<String>();
    exec(
        &db,
        &format!(
            "UPDATE sweeps SET spec_yaml = 'name: main\nevaluate:\n{evaluate}' WHERE name = 'main'"
        ),
    );
    let out = dir.path().join("evaluate");
    ok(&report(&db, &["table5", "--sweep", "main"], &out));
    let md = std::fs::read_to_string(out.join("table5.md")).unwrap();
    assert!(
        md.contains(&format!("under the sweep's `evaluate:` config ({TRAINED}); 1 training under other configs left out")),
        "{md}"
    );
    let rows: Vec<Agg> = query(
        &db,
        "SELECT approximation, count(*) AS n, avg(e) AS mean, avg(e * e) - avg(e) * avg(e) AS var
         FROM (SELECT s.approximation, 100.0 * (1.0 - (SELECT avg(t.final_test_acc) FROM evaluations v
                 JOIN runs t ON t.id = v.train_run_id
                 WHERE v.search_run_id = s.id AND json_extract(t.config_json, '$.lr') = 0.025)) AS e
               FROM run_summary s
               WHERE s.method = 'ddsas' AND s.space = 'darts' AND s.L = 20 AND s.M = 1)
         GROUP BY approximation ORDER BY approximation",
    );
    assert_table5_means(&out, &rows);

    // Every config in the results, the one used marked.
    let printed = ok(&report(&db, &["results", "--sweep", "main"], &out));
    let side = json(&out.join("results.json"));
    let ddsas: Vec<(String, bool, Vec<i64>)> = side["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "ddsas" && r["space"] == "darts" && r["training"].is_string())
        .map(|r| {
            (
                r["training"].as_str().unwrap().to_string(),
                r["used"].as_bool().unwrap(),
                as_ids(&r["evaluated"]),
            )
        })
        .collect();
    assert_eq!(
        ddsas,
        [
            (TRAINED.to_string(), true, searches.clone()),
            (other.clone(), false, vec![twice]),
        ],
        "{printed}"
    );

    // `runs show` of the search: a line per config.
    let show = Command::new(BIN)
        .args(["runs", "show", &twice.to_string(), "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let shown = ok(&show);
    let tests: Vec<(i64, f64, f64)> = query(
        &db,
        &format!(
            "SELECT t.id, t.final_test_acc, json_extract(t.config_json, '$.lr') FROM evaluations v
             JOIN runs t ON t.id = v.train_run_id WHERE v.search_run_id = {twice} ORDER BY t.id"
        ),
    );
    assert_eq!(tests.len(), 2);
    for (id, acc, lr) in tests {
        let config = if lr == 0.025 {
            TRAINED.to_string()
        } else {
            other.clone()
        };
        let line = format!("{:.2}% under {config}: run {id}", 100.0 * acc);
        assert!(shown.contains(&line), "{line} not in\n{shown}");
    }
}

/// Searches that differ in a key besides L, M and the seed (here the
/// epochs) are separate Fig. 7 panels, not seeds of one cell.
#[test]
fn fig7_draws_a_panel_per_setting_of_the_other_keys() {
    let (dir, db) = fixture_copy();
    search(&db, &["L=20", "M=1", "seed=1", "epochs=3"]);
    search(&db, &["L=30", "M=1", "seed=1", "epochs=3"]);
    exec(
        &db,
        "INSERT INTO sweep_runs (sweep, run_id, position)
         SELECT 'main', id, id FROM runs WHERE id NOT IN (SELECT run_id FROM sweep_runs WHERE sweep = 'main')",
    );
    let out = dir.path().join("out");
    ok(&report(
        &db,
        &["fig7", "--sweep", "main", "--metric", "valid_acc"],
        &out,
    ));
    let side = json(&out.join("fig7_lm_grid.json"));
    let panels = side["panels"].as_array().unwrap();
    assert_eq!(panels.len(), 2, "{side}");
    for (panel, epochs) in panels.iter().zip([2, 3]) {
        assert_eq!(
            panel["setting"],
            serde_json::json!({"epochs": epochs.to_string()})
        );
        for cell in panel["cells"].as_array().unwrap() {
            let expected = ids_of(
                &db,
                &format!(
                    "SELECT id FROM run_summary WHERE method = 'ddsas' AND space = 'darts' AND approximation = 1
                     AND epochs = {epochs} AND L = {} AND M = {} ORDER BY id",
                    cell["L"], cell["M"]
                ),
            );
            assert_eq!(as_ids(&cell["runs"]), expected, "{cell}");
        }
    }
    let png = out.join("fig7_lm_grid.png");
    let (w, h) = png_size(&png);
    check_svg(&out.join("fig7_lm_grid.svg"), (w, h));
}

#[derive(sqlx::FromRow)]
struct Total {
    run_id: i64,
    cell: String,
    total: i64,
}

#[derive(sqlx::FromRow)]
struct Bin {
    cell: String,
    bin_index: i64,
    count: i64,
}

#[test]
fn fig12_totals_and_share_are_the_sql_sums() {
    let f = fixture();
    let out = tempfile::tempdir().unwrap();
    ok(&report(&f.db, &["fig12", "--sweep", "main"], out.path()));
    let side = json(&out.path().join("fig12_combinations.json"));
    // The config with the most runs: L=20, M=1 with the approximation.
    let expected: Vec<(i64,)> = query(
        &f.db,
        "SELECT id FROM run_summary WHERE method = 'ddsas' AND space = 'darts' AND L = 20 AND M = 1 AND approximation = 1 ORDER BY id",
    );
    let runs: Vec<i64> = side["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run"].as_i64().unwrap())
        .collect();
    assert_eq!(runs, expected.iter().map(|r| r.0).collect::<Vec<_>>());
    let ids = runs
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let totals: Vec<Total> = query(
        &f.db,
        &format!("SELECT run_id, cell, sum(combinations) AS total FROM subspaces WHERE run_id IN ({ids}) GROUP BY run_id, cell"),
    );
    assert_eq!(totals.len(), 2 * runs.len());
    let mut per_cell: BTreeMap<String, i64> = BTreeMap::new();
    for t in &totals {
        let r = side["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["run"] == t.run_id)
            .unwrap();
        assert_eq!(
            r["totals"][&t.cell].as_i64().unwrap(),
            t.total,
            "run {} {}",
            t.run_id,
            t.cell
        );
        *per_cell.entry(t.cell.clone()).or_default() += t.total;
    }
    for (cell, total) in &per_cell {
        assert_eq!(side["totals"][cell].as_i64().unwrap(), *total);
    }
    let bins: Vec<Bin> = query(
        &f.db,
        &format!(
            "SELECT h.cell, h.bin_index, sum(h.count) AS count FROM ratio_hist h
             WHERE h.run_id IN ({ids}) AND h.epoch = (SELECT max(epoch) FROM ratio_hist x WHERE x.run_id = h.run_id)
             GROUP BY h.cell, h.bin_index ORDER BY h.cell, h.bin_index"
        ),
    );
    for cell in ["normal", "reduce"] {
        let counts: Vec<i64> = bins
            .iter()
            .filter(|b| b.cell == cell)
            .map(|b| b.count)
            .collect();
        assert_eq!(
            bins.iter()
                .filter(|b| b.cell == cell)
                .map(|b| b.bin_index)
                .collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        let h = &side["ratio_hist"][cell];
        let drawn: Vec<i64> = h["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(drawn, counts, "{cell}");
        let total: i64 = counts.iter().sum();
        assert_eq!(h["total"].as_i64().unwrap(), total);
        // Every combination has one ratio: the histogram counts them all.
        assert_eq!(total, per_cell[cell], "{cell}");
        assert!(close(
            h["share_0_9_1_1"].as_f64().unwrap(),
            counts[2] as f64 / total as f64
        ));
    }
}

#[derive(sqlx::FromRow)]
struct Count {
    cell: String,
    edge: i64,
    op: String,
    count: i64,
}

/// SQL that picks exactly the runs of a sidecar series: its method,
/// dataset and space, and every key of its `setting` object.
fn setting_where(method: &str, dataset: &str, space: &str, setting: &Value) -> String {
    let mut parts = vec![
        format!("method = '{method}'"),
        format!("dataset = '{dataset}'"),
        format!("space = '{space}'"),
        "status = 'done'".to_string(),
    ];
    for (key, value) in setting.as_object().unwrap() {
        let v = value.as_str().unwrap();
        let sql = match v {
            "true" => "1".to_string(),
            "false" => "0".to_string(),
            v if v.parse::<f64>().is_ok() => v.to_string(),
            v => format!("'{v}'"),
        };
        parts.push(format!(
            "id IN (SELECT id FROM runs WHERE json_extract(config_json, '$.{key}') = {sql})"
        ));
    }
    parts.join(" AND ")
}

/// Run ids of `sql` (a `SELECT id ...`).
fn ids_of(db: &Path, sql: &str) -> Vec<i64> {
    query::<(i64,)>(db, sql).into_iter().map(|r| r.0).collect()
}

fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

fn as_ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

#[test]
fn fig9_maps_are_each_settings_mean_of_sql_counts_at_the_last_epoch() {
    let f = fixture();
    let out = tempfile::tempdir().unwrap();
    ok(&report(&f.db, &["fig9", "--sweep", "main"], out.path()));
    let side = json(&out.path().join("fig9_sampling.json"));
    let panels = side["panels"].as_array().unwrap();
    // digits/darts: 4 settings (L, M and approximation vary) x 2 cell
    // types; cifar10/nb201: one setting, one cell type.
    assert_eq!(panels.len(), 4 * 2 + 1, "{side}");
    let mut seen = Vec::new();
    for p in panels {
        let (dataset, space, cell) = (
            p["dataset"].as_str().unwrap(),
            p["space"].as_str().unwrap(),
            p["cell"].as_str().unwrap(),
        );
        let runs = as_ids(&p["runs"]);
        let expected = ids_of(
            &f.db,
            &format!(
                "SELECT id FROM run_summary WHERE {} ORDER BY id",
                setting_where("ddsas", dataset, space, &p["setting"])
            ),
        );
        assert_eq!(runs, expected, "{dataset} {space} {}", p["setting"]);
        seen.extend(runs.iter().copied());
        let counts: Vec<Count> = query(
            &f.db,
            &format!(
                "SELECT c.cell, c.edge, c.op, sum(c.count) AS count FROM sampling_counts c
                 WHERE c.run_id IN ({}) AND c.cell = '{cell}'
                   AND c.epoch = (SELECT max(epoch) FROM sampling_counts x WHERE x.run_id = c.run_id)
                 GROUP BY c.cell, c.edge, c.op",
                id_list(&runs)
            ),
        );
        let ops: Vec<&str> = p["ops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            counts.len(),
            ops.len() * p["edges"].as_array().unwrap().len()
        );
        for c in &counts {
            let k = ops.iter().position(|o| *o == c.op).unwrap();
            let mean = c.count as f64 / runs.len() as f64;
            assert!(
                close(p["counts"][k][c.edge as usize].as_f64().unwrap(), mean),
                "{} {} {}",
                c.cell,
                c.edge,
                c.op
            );
        }
        let labels: Vec<(String,)> = query(
            &f.db,
            &format!(
                "SELECT DISTINCT edge_label FROM sampling_counts WHERE run_id = {} ORDER BY edge",
                runs[0]
            ),
        );
        assert_eq!(
            p["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
            labels.into_iter().map(|l| l.0).collect::<Vec<_>>()
        );
    }
    // Every done DDSAS run is in exactly one setting.
    seen.sort_unstable();
    seen.dedup();
    let all = ids_of(
        &f.db,
        "SELECT id FROM runs WHERE method = 'ddsas' ORDER BY id",
    );
    assert_eq!(seen, all);
}

#[test]
fn fig9_run_draws_one_runs_own_counts() {
    let f = fixture();
    let out = tempfile::tempdir().unwrap();
    let id = ids_of(
        &f.db,
        "SELECT id FROM run_summary WHERE method = 'ddsas' AND L = 30",
    )[0];
    ok(&report(
        &f.db,
        &["fig9", "--sweep", "main", "--run", &id.to_string()],
        out.path(),
    ));
    let side = json(&out.path().join("fig9_sampling.json"));
    let panels = side["panels"].as_array().unwrap();
    assert_eq!(panels.len(), 2, "normal and reduce of run {id}");
    for p in panels {
        assert_eq!(as_ids(&p["runs"]), vec![id]);
        assert_eq!(p["aggregate"], "run");
        let total: Vec<(i64,)> = query(
            &f.db,
            &format!(
                "SELECT sum(count) FROM sampling_counts WHERE run_id = {id} AND cell = '{}'
                   AND epoch = (SELECT max(epoch) FROM sampling_counts WHERE run_id = {id})",
                p["cell"].as_str().unwrap()
            ),
        );
        let drawn: f64 = p["counts"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
            .sum();
        assert!(close(drawn, total[0].0 as f64));
    }
    let darts = ids_of(&f.db, "SELECT id FROM runs WHERE method = 'darts'")[0];
    let e = refused(&["fig9", "--sweep", "main", "--run", &darts.to_string()]);
    assert!(
        e.contains(&format!("no done DDSAS run {darts}")) && e.contains("pick one of"),
        "{e}"
    );
}

#[derive(sqlx::FromRow)]
struct SkipMean {
    epoch: i64,
    mean: f64,
    n: i64,
}

#[test]
fn fig8_draws_one_series_per_setting_with_the_sql_mean() {
    let f = fixture();
    let out = tempfile::tempdir().unwrap();
    ok(&report(&f.db, &["fig8", "--sweep", "main"], out.path()));
    let side = json(&out.path().join("fig8_skip.json"));
    let digits = side["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["dataset"] == "digits")
        .unwrap();
    let series = digits["methods"].as_array().unwrap();
    // DARTS, GDAS, and DDSAS at 4 settings: never one mean over all DDSAS runs.
    assert_eq!(series.len(), 6, "{digits}");
    let mut labels = Vec::new();
    for s in series {
        let method = s["method"].as_str().unwrap();
        labels.push(s["label"].as_str().unwrap().to_string());
        let filter = setting_where(method, "digits", "darts", &s["setting"]);
        let runs = ids_of(
            &f.db,
            &format!("SELECT id FROM run_summary WHERE {filter} ORDER BY id"),
        );
        assert_eq!(as_ids(&s["runs"]), runs, "{}", s["label"]);
        let rows: Vec<SkipMean> = query(
            &f.db,
            &format!(
                "SELECT epoch, avg(skip_normal) AS mean, count(*) AS n FROM epochs
                 WHERE run_id IN ({}) GROUP BY epoch ORDER BY epoch",
                id_list(&runs)
            ),
        );
        let drawn = s["skip_normal"].as_array().unwrap();
        assert_eq!(drawn.len(), rows.len());
        for (d, r) in drawn.iter().zip(&rows) {
            assert_eq!(d["x"].as_i64().unwrap(), r.epoch);
            assert_eq!(d["n"].as_i64().unwrap(), r.n);
            assert!(
                close(d["mean"].as_f64().unwrap(), r.mean),
                "{d} vs {}",
                r.mean
            );
        }
    }
    assert!(
        labels.contains(&"DDSAS L=20 M=1 approximation=false".to_string()),
        "{labels:?}"
    );
    assert!(labels.contains(&"DARTS".to_string()), "{labels:?}");
    let index_caption = std::fs::read_to_string(out.path().join("fig8_skip.json")).unwrap();
    assert!(index_caption.contains("L=30"));
}

#[test]
fn where_picks_the_runs_a_figure_draws_and_is_named() {
    let f = fixture();
    let out = tempfile::tempdir().unwrap();
    let text = ok(&report(
        &f.db,
        &[
            "fig8",
            "--sweep",
            "main",
            "--where",
            "L = 20 and M = 1 and approximation = 1 or method != 'ddsas'",
            "-v",
        ],
        out.path(),
    ));
    assert!(text.contains("Runs where L = 20"), "{text}");
    let side = json(&out.path().join("fig8_skip.json"));
    let digits = side["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["dataset"] == "digits")
        .unwrap();
    let labels: Vec<&str> = digits["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    // One DDSAS setting left: the series are named by method alone.
    assert_eq!(labels, vec!["DARTS", "GDAS", "DDSAS"]);
    let e = refused(&["fig8", "--sweep", "main", "--where", "no_such_column = 1"]);
    assert!(
        e.contains("bad --where") && e.contains("no_such_column"),
        "{e}"
    );
    let e = refused(&["fig8", "--sweep", "main", "--where", "L = 999"]);
    assert!(e.contains("no done run where L = 999"), "{e}");
    // A runaway condition stops at --query-timeout with one line.
    let endless = "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c) > 0";
    for figure in ["fig8", "cells"] {
        let start = Instant::now();
        let e = refused(&[
            figure,
            "--sweep",
            "main",
            "--where",
            endless,
            "--query-timeout",
            "1",
        ]);
        assert!(
            e.contains("time limit of 1 s") && e.contains("--query-timeout"),
            "{e}"
        );
        assert_eq!(e.trim().lines().count(), 1, "{e}");
        assert!(start.elapsed() < Duration::from_secs(60), "{e}");
    }
}

#[derive(sqlx::FromRow)]
struct Best {
    l: i64,
    m: i64,
    best: f64,
    n: i64,
}

#[test]
fn fig7_cells_are_the_best_seed_of_each_lm_point() {
    let f = fixture();
    let out = tempfile::tempdir().unwrap();
    ok(&report(
        &f.db,
        &["fig7", "--sweep", "main", "--metric", "valid_acc"],
        out.path(),
    ));
    let side = json(&out.path().join("fig7_lm_grid.json"));
    let rows: Vec<Best> = query(
        &f.db,
        "SELECT L AS l, M AS m, 100.0 * max(valid_acc) AS best, count(*) AS n FROM run_summary
         WHERE method = 'ddsas' AND space = 'darts' AND approximation = 1 GROUP BY L, M ORDER BY L, M",
    );
    let panels = side["panels"].as_array().unwrap();
    assert_eq!(
        panels.len(),
        1,
        "only the digits grid has several (L, M) points"
    );
    let cells = panels[0]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), rows.len());
    for (c, r) in cells.iter().zip(&rows) {
        assert_eq!(
            (c["L"].as_i64().unwrap(), c["M"].as_i64().unwrap()),
            (r.l, r.m)
        );
        assert!(close(c["best"].as_f64().unwrap(), r.best));
        assert_eq!(c["runs"].as_array().unwrap().len() as i64, r.n);
    }
    let best = rows
        .iter()
        .map(|r| r.best)
        .fold(f64::NEG_INFINITY, f64::max);
    assert!(close(panels[0]["best"]["value"].as_f64().unwrap(), best));
    assert_eq!(panels[0]["L"], serde_json::json!([20, 30]));
    assert_eq!(panels[0]["M"], serde_json::json!([1, 2]));
}

/// A protocol-2 pickle of NASLib's layout, `{arch: {'cifar10-valid':
/// {'eval_acc1es': [...], 'eval_losses': [...]}}}`.
fn nb201_pickle(archs: &[(String, Vec<f64>)]) -> Vec<u8> {
    fn s(p: &mut Vec<u8>, t: &str) {
        p.push(b'X');
        p.extend_from_slice(&(t.len() as u32).to_le_bytes());
        p.extend_from_slice(t.as_bytes());
    }
    let mut p = vec![0x80, 2, b'}', b'('];
    for (arch, accs) in archs {
        s(&mut p, arch);
        p.extend_from_slice(b"}(");
        s(&mut p, "cifar10-valid");
        p.extend_from_slice(b"}(");
        for key in ["eval_acc1es", "eval_losses"] {
            s(&mut p, key);
            p.extend_from_slice(b"](");
            for a in accs {
                p.push(b'G');
                p.extend_from_slice(&a.to_be_bytes());
            }
            p.extend_from_slice(b"e");
        }
        p.extend_from_slice(b"uu");
    }
    p.extend_from_slice(b"u.");
    p
}

#[derive(sqlx::FromRow)]
struct EpochArch {
    epoch: i64,
    genotype: String,
}

#[test]
fn nb201_import_makes_nb201_figures_show_benchmark_accuracy() {
    let f = fixture();
    // Work on a copy: this test writes to the database.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("copy.db");
    exec(&f.db, &format!("VACUUM INTO '{}'", db.display()));
    let out = dir.path().join("out");
    // Without a table: the search's valid accuracy, and the caption says so.
    ok(&report(
        &db,
        &["fig10", "--sweep", "main", "--per", "epoch"],
        &out,
    ));
    let side = json(&out.join("fig10_explore_epoch.json"));
    let nb = nb201_panel(&side);
    assert!(
        nb["accuracy_source"]
            .as_str()
            .unwrap()
            .contains("no NAS-Bench-201 table imported for cifar10"),
        "{nb}"
    );

    // A table with every derived architecture, accuracy 50 + i, plus one
    // more; the last element of the list is the one kept.
    let epochs: Vec<EpochArch> = query(
        &db,
        "SELECT e.epoch, e.genotype FROM epochs e JOIN runs r ON r.id = e.run_id
         WHERE r.space = 'nb201' AND r.method = 'ddsas' ORDER BY e.run_id, e.epoch",
    );
    let mut archs: Vec<String> = epochs.iter().map(|e| e.genotype.clone()).collect();
    archs.sort();
    archs.dedup();
    let other = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|".to_string();
    archs.retain(|a| *a != other);
    let table: Vec<(String, Vec<f64>)> = archs
        .iter()
        .enumerate()
        .map(|(i, a)| (a.clone(), vec![10.0, 20.0, 50.0 + i as f64]))
        .chain(std::iter::once((other, vec![1.0, 2.0])))
        .collect();
    let pickle = dir.path().join("nb201_cifar10_full_training.pickle");
    std::fs::write(&pickle, nb201_pickle(&table)).unwrap();
    let imported = Command::new(BIN)
        .args(["nb201", "import"])
        .arg(&pickle)
        .args(["--dataset", "cifar10", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let text = ok(&imported);
    assert!(
        text.contains(&format!("imported {}", table.len())) && text.contains("cifar10-valid"),
        "{text}"
    );
    let stored: Vec<(String, f64)> = query(
        &db,
        "SELECT arch, accuracy FROM nb201_accuracy WHERE dataset = 'cifar10' ORDER BY arch",
    );
    assert_eq!(stored.len(), table.len());
    let acc_of: BTreeMap<String, f64> = table
        .iter()
        .map(|(a, l)| (a.clone(), *l.last().unwrap()))
        .collect();
    for (arch, acc) in &stored {
        assert_eq!(acc_of[arch], *acc);
    }
    // The import filled in the benchmark accuracy of every NB201 run
    // already recorded: each epoch's and the final architecture's.
    let filled: Vec<(String, Option<f64>, Option<f64>)> = query(
        &db,
        "SELECT e.genotype, e.nb201_cifar10, e.nb201_cifar100 FROM epochs e JOIN runs r ON r.id = e.run_id
         WHERE r.space = 'nb201'",
    );
    assert!(!filled.is_empty());
    for (arch, c10, c100) in &filled {
        assert_eq!(*c10, acc_of.get(arch).copied(), "{arch}");
        assert_eq!(*c100, None, "no CIFAR-100 table was imported");
    }
    let finals: Vec<(String, Option<f64>)> = query(
        &db,
        "SELECT genotype, nb201_cifar10 FROM run_summary WHERE space = 'nb201' AND status = 'done'",
    );
    assert!(!finals.is_empty());
    for (arch, c10) in &finals {
        assert_eq!(*c10, acc_of.get(arch).copied(), "{arch}");
    }

    // Now the NB201 panel shows benchmark accuracy of each epoch's architecture.
    ok(&report(
        &db,
        &["fig10", "--sweep", "main", "--per", "epoch"],
        &out,
    ));
    let side = json(&out.join("fig10_explore_epoch.json"));
    let nb = nb201_panel(&side);
    assert!(
        nb["accuracy_source"]
            .as_str()
            .unwrap()
            .starts_with("NAS-Bench-201 cifar10 accuracy"),
        "{nb}"
    );
    let ddsas = nb["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "ddsas")
        .unwrap();
    let mut by_epoch: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for e in &epochs {
        by_epoch
            .entry(e.epoch)
            .or_default()
            .push(acc_of[&e.genotype]);
    }
    for point in ddsas["accuracy"].as_array().unwrap() {
        let vals = &by_epoch[&point["x"].as_i64().unwrap()];
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        assert!(
            close(point["mean"].as_f64().unwrap(), mean),
            "{point} vs {mean}"
        );
    }
    // Fig. 8 uses the same source for its accuracy row.
    ok(&report(&db, &["fig8", "--sweep", "main"], &out));
    let side = json(&out.join("fig8_skip.json"));
    let nb = nb201_panel(&side);
    assert!(
        nb["accuracy_source"]
            .as_str()
            .unwrap()
            .starts_with("NAS-Bench-201 cifar10"),
        "{nb}"
    );
}

#[test]
fn nb201_import_refuses_a_file_of_another_layout() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let bad = dir.path().join("bad.pickle");
    std::fs::write(&bad, b"\x80\x02]q\x00.").unwrap();
    let out = Command::new(BIN)
        .args(["nb201", "import"])
        .arg(&bad)
        .args(["--dataset", "cifar100", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("list") && err.contains("eval_acc1es"), "{err}");
}

/// The op names a cell's genotype text names (`(sep_conv_3x3,0)` or NB201's
/// `nor_conv_3x3~0`), `none` left out as the pictures leave it out.
fn ops_in(cell_genotype: &str) -> Vec<String> {
    cell_genotype
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.contains('_') && *w != "none")
        .map(str::to_string)
        .collect()
}

#[test]
fn cells_draws_the_best_run_of_each_setting_as_png_and_svg() {
    let f = fixture();
    let out = tempfile::tempdir().unwrap();
    let text = ok(&report(&f.db, &["cells", "--sweep", "main"], out.path()));
    assert!(text.contains("cells.json"), "{text}");
    let side = json(&out.path().join("cells.json"));
    let pictures = side["pictures"].as_array().unwrap();
    let mut runs: Vec<i64> = Vec::new();
    for p in pictures {
        let stem = p["stem"].as_str().unwrap();
        let run = p["run"].as_i64().unwrap();
        let cell = p["cell"].as_str().unwrap();
        assert_eq!(stem, format!("cells_{run}_{cell}"));
        runs.push(run);
        // The genotype drawn is the run's final genotype in the database.
        let stored = scalar(
            &f.db,
            &format!("SELECT final_genotype FROM runs WHERE id = {run}"),
        );
        assert_eq!(p["genotype"].as_str().unwrap(), stored, "{stem}");
        let size = (
            p["width"].as_u64().unwrap() as u32,
            p["height"].as_u64().unwrap() as u32,
        );
        assert_eq!(png_size(&out.path().join(format!("{stem}.png"))), size);
        let svg_path = out.path().join(format!("{stem}.svg"));
        check_svg(&svg_path, size);
        let svg = std::fs::read_to_string(&svg_path).unwrap();
        let ops = ops_in(p["cell_genotype"].as_str().unwrap());
        assert!(!ops.is_empty(), "{stem}");
        for op in &ops {
            assert!(svg.contains(&format!("{op}\n</text>")), "{stem} lacks {op}");
        }
        // One label per op edge drawn.
        let labelled = p["layout"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| !e["op"].is_null())
            .count();
        assert_eq!(labelled, ops.len(), "{stem}");
    }
    // Both cell types of a DARTS-space run, the one cell of an NB201 run.
    let cells_of = |run: i64| -> Vec<&str> {
        pictures
            .iter()
            .filter(|p| p["run"] == run)
            .map(|p| p["cell"].as_str().unwrap())
            .collect()
    };
    let nb201_darts = ids_of(
        &f.db,
        "SELECT id FROM run_summary WHERE space = 'nb201' AND method = 'darts'",
    );
    assert_eq!(cells_of(nb201_darts[0]), ["cell"]);
    // The best of two seeds by final valid accuracy (no cell is trained).
    let best = ids_of(
        &f.db,
        "SELECT id FROM run_summary WHERE method = 'ddsas' AND space = 'darts' AND L = 20 AND M = 1
           AND approximation = 1 ORDER BY valid_acc DESC, id LIMIT 1",
    );
    assert_eq!(cells_of(best[0]), ["normal", "reduce"]);
    let other = ids_of(
        &f.db,
        &format!(
            "SELECT id FROM run_summary WHERE method = 'ddsas' AND space = 'darts' AND L = 20
               AND M = 1 AND approximation = 1 AND id <> {}",
            best[0]
        ),
    );
    assert!(
        !runs.contains(&other[0]),
        "run {} is not its setting's best",
        other[0]
    );
    // --top 2 draws both seeds; --run one run, of the sweep or not.
    let top = tempfile::tempdir().unwrap();
    ok(&report(
        &f.db,
        &["cells", "--sweep", "main", "--top", "2"],
        top.path(),
    ));
    assert!(top
        .path()
        .join(format!("cells_{}_normal.png", other[0]))
        .is_file());
    let one = tempfile::tempdir().unwrap();
    ok(&report(
        &f.db,
        &["cells", "--run", &other[0].to_string()],
        one.path(),
    ));
    let side = json(&one.path().join(format!("cells_{}.json", other[0])));
    assert_eq!(side["pictures"].as_array().unwrap().len(), 2);
    // A published genotype needs no database.
    let v2 = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .args(["report", "cells", "--genotype", "darts_v2", "--out"])
        .arg(v2.path())
        .output()
        .unwrap();
    ok(&o);
    let svg = std::fs::read_to_string(v2.path().join("cells_darts_v2_normal.svg")).unwrap();
    assert!(svg.contains("dil_conv_3x3") && svg.contains("sep_conv_3x3"));
}

#[test]
fn cells_of_an_unknown_or_unfinished_run_are_refused() {
    let e = refused(&["cells", "--run", "999"]);
    assert!(
        e.contains("there is no run 999") && e.contains("runs list"),
        "{e}"
    );
    let e = refused(&["cells", "--sweep", "main", "--run", "999"]);
    assert!(
        e.contains("has no done search run 999") && e.contains("pick one of its runs"),
        "{e}"
    );
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("copy.db");
    exec(&f.db, &format!("VACUUM INTO '{}'", db.display()));
    exec(
        &db,
        "UPDATE runs SET status = 'running', final_genotype = NULL WHERE id = 1",
    );
    let out = dir.path().join("out");
    let o = report(&db, &["cells", "--run", "1"], &out);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("run 1 is running, not done"), "{e}");
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().count() == 0);
    let e = refused(&["cells", "--sweep", "main", "--genotype", "darts_v2"]);
    assert!(e.contains("cannot be used with"), "{e}");
}

/// Runs a report that must fail; returns stderr, and checks that no image
/// was written.
fn refused(args: &[&str]) -> String {
    let f = fixture();
    let out = tempfile::tempdir().unwrap();
    let o = report(&f.db, args, out.path());
    assert!(!o.status.success(), "{args:?} succeeded");
    let pngs = std::fs::read_dir(out.path())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(pngs, 0, "{args:?} wrote files");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn unknown_empty_and_unsuitable_sweeps_are_refused_with_the_fix() {
    let e = refused(&["all", "--sweep", "nope"]);
    assert!(
        e.contains("sweep `nope` is not in") && e.contains("known sweeps: baselines, empty, main"),
        "{e}"
    );
    let e = refused(&["fig7", "--sweep", "empty"]);
    assert!(
        e.contains("sweep `empty` has no runs") && e.contains("ddsas sweep run"),
        "{e}"
    );
    let e = refused(&["fig7", "--sweep", "baselines"]);
    assert!(
        e.contains("no done DDSAS runs") && e.contains("sweeps/fig7_lm_grid.yaml"),
        "{e}"
    );
    let e = refused(&["fig9", "--sweep", "baselines"]);
    assert!(
        e.contains("sampling counts") && e.contains("sweeps/fig8_fig9_skip.yaml"),
        "{e}"
    );
    let e = refused(&["fig12", "--sweep", "baselines"]);
    assert!(
        e.contains("sampled subspaces") && e.contains("sweeps/fig12_combinations.yaml"),
        "{e}"
    );
    let e = refused(&["table5", "--sweep", "baselines"]);
    assert!(
        e.contains("both with and without the approximation")
            && e.contains("sweeps/table5_approximation.yaml"),
        "{e}"
    );
    let e = refused(&["fig7", "--sweep", "main", "--metric", "test_acc"]);
    assert!(
        e.contains("test accuracy for 0 of its")
            && e.contains("train --from-run")
            && e.contains("--metric valid_acc"),
        "{e}"
    );
}

#[test]
fn per_step_figure_needs_logged_steps() {
    let f = fixture();
    // A sweep of runs without per-step records.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("copy.db");
    exec(&f.db, &format!("VACUUM INTO '{}'", db.display()));
    exec(
        &db,
        "INSERT INTO sweeps (name) VALUES ('nosteps');
         INSERT INTO sweep_runs (sweep, run_id) SELECT 'nosteps', id FROM runs WHERE id NOT IN (SELECT run_id FROM steps);",
    );
    let out = dir.path().join("out");
    let o = report(&db, &["fig10", "--sweep", "nosteps", "--per", "step"], &out);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("log_steps") && e.contains("sweeps/fig10_explore.yaml"),
        "{e}"
    );
    // `all` skips it with the reason, draws the rest, and removes the
    // step figure an earlier report left in the folder.
    ok(&report(
        &db,
        &["fig10", "--sweep", "main", "--per", "step"],
        &out,
    ));
    assert!(out.join("fig10_explore_step.png").exists());
    let text = ok(&report(&db, &["all", "--sweep", "nosteps"], &out));
    assert!(
        text.contains("skipped fig10 --per step") && text.contains("log_steps"),
        "{text}"
    );
    assert!(!out.join("fig10_explore_step.png").exists());
    assert!(out.join("fig10_explore_epoch.png").exists());
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(index.contains("Not drawn") && index.contains("fig10 --per step"));
}
