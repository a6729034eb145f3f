//! End-to-end tests of `ddsas serve` against a database filled by a real
//! small digits sweep: pages checked against SQL written here, figures as
//! SVG, nothing writable through any URL, the token rules, and a real
//! headless browser (Debian's `chromium`, installed by
//! `scripts/browser.sh` when missing) that runs the pages' script: the
//! sweep page lists every run with the right counts, a run page draws one
//! point per epoch, and a run that finishes while the page is open shows
//! as done without a reload (the run held at a step until the browser's
//! requests, seen through a pass-through proxy, show the page open).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::util::{scalar, sqlite, text, Hold, BIN};

/// Tiny digits searches: seconds each on one thread.
const TINY: &str =
    "{dataset: digits, epochs: 2, layers: 1, init_channels: 4, batch_size: 16, steps_per_epoch: 3}";

/// A temporary folder with a sweep file `name.yaml`.
fn sweep_file(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, format!("name: {name}\n{body}")).unwrap();
    path
}

/// `ddsas sweep run FILE` on CPU workers (one thread each), spawned, with
/// `envs` set.
fn start_sweep(db: &Path, file: &Path, workers: usize, envs: &[(&str, String)]) -> Child {
    start_sweep_in(db.parent().unwrap(), db, file, workers, envs)
}

/// [`start_sweep`] with `--db` a file or a PostgreSQL URL, run in `dir`.
fn start_sweep_in(
    dir: &Path,
    db: impl AsRef<OsStr>,
    file: &Path,
    workers: usize,
    envs: &[(&str, String)],
) -> Child {
    Command::new(BIN)
        .args(["sweep", "run"])
        .arg(file)
        .args(["--gpus", "none", "--cpu-workers", &workers.to_string()])
        .args(["--threads", "1", "--plain", "--db"])
        .arg(db)
        .current_dir(dir)
        .env_remove("DDSAS_DB")
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
}

/// A database of a finished small sweep `small`: DDSAS (two seeds) and
/// DARTS on digits, plus a sweep `mixed` of runs in every state; run 2
/// has a Slurm job recorded (`4242`).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("results.db");
        let file = sweep_file(
            dir.path(),
            "small",
            &format!(
                "base: {TINY}\nruns:\n  - {{method: ddsas, L: 15, M: 1}}\n  - {{method: darts}}\nseeds: [0, 1]\n"
            ),
        );
        let status = start_sweep(&db, &file, 2, &[]).wait().unwrap();
        assert!(status.success(), "the fixture sweep failed");
        // A sweep `mixed` with every status but running: run 2, and
        // copies of run 1 that are queued, failed and interrupted.
        super::util::rt().block_on(async {
            let pool = sqlx::SqlitePool::connect_with(
                sqlx::sqlite::SqliteConnectOptions::new().filename(&db),
            )
            .await
            .unwrap();
            sqlx::raw_sql(
                "INSERT INTO runs (fingerprint, method, space, dataset, seed, config_json, epochs_total, definitions, status, error)
                 SELECT fingerprint || '-' || s.value, method, space, dataset, seed, config_json, epochs_total, definitions, s.value,
                        CASE WHEN s.value = 'failed' THEN 'boom' END
                 FROM runs, json_each('[\"queued\", \"failed\", \"interrupted\"]') s WHERE runs.id = 1;
                 INSERT INTO sweeps (name, description) VALUES ('mixed', 'every status');
                 INSERT INTO sweep_runs (sweep, run_id, position) SELECT 'mixed', id, id FROM runs WHERE id = 2 OR id > 4;
                 INSERT INTO slurm_jobs (job_id, run_id, tasks, script_path, submitted_at) VALUES ('4242', 2, 2, '/exp/slurm/train-2/submit-1.sh', 0);",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        });
        Fixture { _dir: dir, db }
    })
}

/// A `ddsas serve` process, killed when dropped.
pub(crate) struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    pub(crate) fn start(db: impl AsRef<OsStr>, extra: &[&str], envs: &[(&str, &str)]) -> Serve {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--port", "0", "--db"])
            .arg(db)
            .args(extra)
            .env_remove("DDSAS_SERVE_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        let base = url.split('?').next().unwrap().trim_end_matches('/');
        Serve {
            child,
            url: base.to_owned(),
        }
    }

    pub(crate) fn get(&self, path: &str) -> (u16, String, String) {
        request("GET", &format!("{}{path}", self.url), None)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(status, content type, body)` of a request; `bearer` as the token.
fn request(method: &str, url: &str, bearer: Option<&str>) -> (u16, String, String) {
    let mut req = ureq::request(method, url).timeout(Duration::from_secs(60));
    if let Some(t) = bearer {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let ct = resp.content_type().to_owned();
    (status, ct, resp.into_string().unwrap_or_default())
}

/// The text in `<... id="ID" ...>TEXT<`.
fn element_text(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap() + start;
    rest[start..end].trim().to_owned()
}

/// The number in `<... id="ID">N<`.
fn number_at(html: &str, id: &str) -> i64 {
    element_text(html, id).parse().unwrap()
}

fn count_where(db: &Path, sweep: &str, status: &str) -> i64 {
    scalar(
        db,
        &format!(
            "SELECT count(*) FROM runs WHERE status = '{status}' AND id IN (SELECT run_id FROM sweep_runs WHERE sweep = '{sweep}')"
        ),
    )
    .parse()
    .unwrap()
}

fn ids_of(db: &Path, sweep: &str) -> Vec<i64> {
    sqlite(
        db,
        &format!("SELECT run_id FROM sweep_runs WHERE sweep = '{sweep}' ORDER BY run_id"),
    )
    .into_iter()
    .map(|r| r[0].parse().unwrap())
    .collect()
}

fn epochs_of(db: &Path, id: i64) -> usize {
    scalar(
        db,
        &format!("SELECT count(*) FROM epochs WHERE run_id = {id}"),
    )
    .parse()
    .unwrap()
}

#[test]
fn sweep_pages_show_the_counts_and_runs_sql_has() {
    let f = fixture();
    let serve = Serve::start(&f.db, &[], &[]);
    for sweep in ["small", "mixed"] {
        let (status, ct, html) = serve.get(&format!("/sweep/{sweep}"));
        assert_eq!(status, 200, "{html}");
        assert!(ct.starts_with("text/html"), "{ct}");
        for st in ["done", "running", "queued", "failed", "interrupted"] {
            assert_eq!(
                number_at(&html, &format!("n-{st}")),
                count_where(&f.db, sweep, st),
                "{sweep} {st}"
            );
        }
        let ids = ids_of(&f.db, sweep);
        assert_eq!(number_at(&html, "n-runs"), ids.len() as i64);
        for id in &ids {
            assert!(
                html.contains(&format!("id=\"run-{id}\"")),
                "run {id} missing"
            );
        }
        assert_eq!(html.matches("<tr id=\"run-").count(), ids.len());
        let (_, ct, api) = serve.get(&format!("/api/sweep/{sweep}"));
        assert_eq!(ct, "application/json");
        let api: Value = serde_json::from_str(&api).unwrap();
        assert_eq!(api["sweep"]["done"], count_where(&f.db, sweep, "done"));
        assert_eq!(api["runs"].as_array().unwrap().len(), ids.len());
    }
    assert_eq!(count_where(&f.db, "small", "done"), 4);
    for st in ["done", "queued", "failed", "interrupted"] {
        assert_eq!(count_where(&f.db, "mixed", st), 1, "{st}");
    }
    let (_, _, index) = serve.get("/");
    assert!(index.contains("/sweep/small") && index.contains("/sweep/mixed"));
    // --where picks runs as `runs list --where` does.
    let (status, _, html) = serve.get("/sweep/small?where=method%20%3D%20%27darts%27");
    assert_eq!(status, 200);
    assert_eq!(html.matches("<tr id=\"run-").count(), 2);
    let (status, _, html) = serve.get("/sweep/small?where=no_such_column%20%3D%201");
    assert_eq!(status, 400);
    assert!(html.contains("no such column"), "{html}");
    assert_eq!(serve.get("/sweep/nope").0, 404);
}

#[test]
fn run_pages_draw_one_point_per_recorded_epoch() {
    let f = fixture();
    let serve = Serve::start(&f.db, &[], &[]);
    for id in ids_of(&f.db, "small") {
        let n = epochs_of(&f.db, id);
        assert!(n > 0);
        let (status, ct, svg) = serve.get(&format!("/run/{id}/curves.svg"));
        assert_eq!((status, ct.as_str()), (200, "image/svg+xml"));
        assert_eq!(svg.matches("<circle").count(), n, "run {id}");
        let (status, _, html) = serve.get(&format!("/run/{id}"));
        assert_eq!(status, 200);
        assert!(html.contains(&format!("data-epochs=\"{n}\"")), "run {id}");
        assert_eq!(number_at(&html, "epochs-done"), n as i64);
        let (_, ct, cell) = serve.get(&format!("/run/{id}/cell/normal.svg"));
        assert_eq!(ct, "image/svg+xml");
        assert!(cell.starts_with("<svg"));
        let (_, _, api) = serve.get(&format!("/api/run/{id}"));
        let api: Value = serde_json::from_str(&api).unwrap();
        assert_eq!(api["status"], "done");
        assert_eq!(api["epochs_done"], n as i64);
    }
    assert_eq!(serve.get("/run/9999").0, 404);
}

/// A run page names the run's Slurm jobs with what squeue says of them,
/// as `runs show` does; here squeue has no cluster to ask, and the page
/// says so beside the job id. A run without a job shows none.
#[test]
fn a_run_page_names_its_slurm_jobs_and_their_state() {
    let f = fixture();
    let serve = Serve::start(&f.db, &[], &[("SLURM_CONF", "/nonexistent/slurm.conf")]);
    let (status, _, html) = serve.get("/run/2");
    assert_eq!(status, 200);
    let jobs = html
        .split_once("id=\"slurm-jobs\">")
        .map(|(_, rest)| rest.split('<').next().unwrap_or_default())
        .unwrap_or_else(|| panic!("no Slurm jobs on the page of run 2:\n{html}"));
    assert!(
        jobs.starts_with("4242 (squeue cannot tell their state"),
        "{jobs}"
    );
    let (_, _, other) = serve.get("/run/1");
    assert!(!other.contains("slurm-jobs"), "run 1 has no job");
}

#[test]
fn figures_load_as_svg_drawn_by_the_report_code() {
    let f = fixture();
    let serve = Serve::start(&f.db, &[], &[]);
    for fig in ["fig8", "fig10_epoch"] {
        let (status, ct, body) = serve.get(&format!("/sweep/small/figure/{fig}.svg"));
        assert_eq!(status, 200, "{fig}: {body}");
        assert_eq!(ct, "image/svg+xml");
        assert!(body.starts_with("<svg"), "{fig}");
    }
    // Nothing the runs cannot support is drawn: the message says why.
    let (status, _, body) = serve.get("/sweep/small/figure/fig7.svg");
    assert_eq!(status, 404);
    assert!(body.contains("fig7"), "{body}");
    assert_eq!(serve.get("/sweep/small/figure/nope.svg").0, 404);
}

/// A query that never ends by itself: what a careless filter can write.
const ENDLESS: &str =
    "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c)";

/// `text` with every byte but letters and digits percent-encoded.
fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A runaway `?where=` filter is stopped at `--query-timeout` with an
/// error page naming the limit, and the index answers while it runs.
#[test]
fn a_runaway_filter_gets_an_error_page_while_other_pages_answer() {
    let f = fixture();
    // A limit far above what `/` takes even on a loaded machine: the
    // index must answer while the runaway still runs.
    let serve = Serve::start(&f.db, &["--query-timeout", "10"], &[]);
    let url = format!(
        "{}/sweep/small?where={}",
        serve.url,
        url_encoded(&format!("1=1 AND {ENDLESS}>0"))
    );
    let start = Instant::now();
    let runaway = std::thread::spawn(move || {
        let answer = request("GET", &url, None);
        (answer, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(500));
    let (status, _, html) = serve.get("/");
    let index_answered = Instant::now();
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("small"), "{html}");
    let ((status, _, body), runaway_answered) = runaway.join().unwrap();
    assert!(
        index_answered < runaway_answered,
        "the index waited for the runaway filter"
    );
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("time limit of 10 s") && body.contains("--query-timeout"),
        "{body}"
    );
    let took = runaway_answered - start;
    assert!(took < Duration::from_secs(30), "answered after {took:?}");
    let (status, _, _) = serve.get("/sweep/small");
    assert_eq!(
        status, 200,
        "the server no longer answers after the runaway"
    );
}

/// `ddsas sql` and `runs list --where` stop a runaway statement at
/// `--query-timeout` and exit non-zero with one line naming the limit.
#[test]
fn the_cli_stops_a_runaway_query_at_its_time_limit() {
    let f = fixture();
    let run = |args: &[&str]| {
        let start = Instant::now();
        let out = Command::new(BIN)
            .args(args)
            .args(["--query-timeout", "1", "--db"])
            .arg(&f.db)
            .env_remove("DDSAS_DB")
            .output()
            .unwrap();
        (out, start.elapsed())
    };
    let sql = format!("SELECT {ENDLESS}");
    let endless_where = format!("{ENDLESS} > 0");
    for args in [
        vec!["sql", sql.as_str()],
        vec!["runs", "list", "--where", endless_where.as_str()],
    ] {
        let (out, took) = run(&args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            err.contains("time limit of 1 s") && err.contains("--query-timeout"),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(took < Duration::from_secs(30), "{args:?} took {took:?}");
    }
    let counting =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 5) SELECT x FROM c";
    let (out, _) = run(&["sql", counting, "--format", "csv", "--limit", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "x\n1\n2\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 more rows not shown (--limit 2)"), "{err}");
    huge_answers_are_cut(f.db.as_os_str());
}

/// A `ddsas sql` command on `db` (file or URL): its output and whether it
/// succeeded.
fn ddsas_sql(db: &OsStr, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("sql")
        .args(args)
        .arg("--db")
        .arg(db)
        .env_remove("DDSAS_DB")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ddsas sql` on `db`: a huge value is refused or cut, and a set of rows
/// over `--max-mib` is cut after the rows that fit, each with one line
/// that says so and a failed exit, never an out-of-memory.
fn huge_answers_are_cut(db: &OsStr) {
    let postgres = db.to_string_lossy().starts_with("postgres");
    let huge = if postgres {
        "SELECT repeat('x', 100000000) AS x"
    } else {
        "SELECT length(randomblob(1000000000)) AS n"
    };
    let (ok, out, err) = ddsas_sql(db, &[huge, "--max-mib", "16"]);
    assert!(!ok, "{out}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("larger than 16 MiB") || err.contains("cut at 16 MiB after 0 rows"),
        "{err}"
    );
    let pad = "0123456789abcdef".repeat(64);
    let wide = format!(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000000) SELECT x, '{pad}' AS pad FROM c"
    );
    let (ok, out, err) = ddsas_sql(db, &[&wide, "--max-mib", "1", "--format", "csv"]);
    assert!(!ok, "a cut answer exited 0");
    let rows = out.lines().count() - 1;
    assert!((500..1100).contains(&rows), "{rows} rows of 1 KiB in 1 MiB");
    assert!(
        err.contains(&format!("cut at 1 MiB after {rows} rows")) && err.contains("--max-mib"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// A filter that builds a huge value is refused at once with a page that
/// says so, never taking the memory.
#[test]
fn a_filter_that_builds_a_huge_value_gets_an_error_page() {
    let f = fixture();
    let serve = Serve::start(&f.db, &[], &[]);
    let filter = url_encoded("length(randomblob(1000000000)) > 0");
    let (status, _, html) = serve.get(&format!("/sweep/small?where={filter}"));
    assert_eq!(status, 400, "{html}");
    assert!(
        html.contains("where-error") && html.contains("larger than 16 MiB"),
        "{html}"
    );
    let (status, _, body) = serve.get(&format!("/sweep/small/figure/fig8.svg?where={filter}"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("larger than 16 MiB"), "{body}");
}

/// Runs `sql` (one number) with `ddsas sql` on `db` until it gives `want`.
fn wait_for_count(db: &OsStr, sql: &str, want: &str, what: &str) {
    let start = Instant::now();
    loop {
        let (ok, out, _) = ddsas_sql(db, &[sql, "--format", "csv"]);
        if ok && out.lines().nth(1) == Some(want) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(180), "{what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The live JSON of sweep `live`.
fn live_sweep(serve: &Serve) -> Value {
    let (status, _, body) = serve.get("/api/sweep/live");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// On `db` (file or URL; `dir` the test's folder): a sweep whose run is
/// held at a known step, a server whose runaway filters are refused one
/// after another, the index and the live view answering and updating
/// meanwhile, and the sweep running to the end while the filters go on.
fn a_sweep_runs_to_the_end_while_runaway_filters_are_refused(db: &OsStr, dir: &Path) {
    let file = sweep_file(
        dir,
        "live",
        "base: {dataset: digits, epochs: 2, layers: 1, init_channels: 4, batch_size: 16, steps_per_epoch: 4}\n",
    );
    // Step 5 is in the second epoch: the run holds with one epoch recorded.
    let hold = Hold::every_run(dir, 5);
    let mut sweep = start_sweep_in(dir, db, &file, 1, &[hold.env()]);
    wait_for_count(
        db,
        "SELECT count(*) AS n FROM runs WHERE status = 'running' AND epochs_done = 1",
        "1",
        "the run never reached its hold",
    );
    let serve = Serve::start(db, &["--query-timeout", "3"], &[]);
    let url = format!(
        "{}/sweep/live?where={}",
        serve.url,
        url_encoded(&format!("1=1 AND {ENDLESS}>0"))
    );
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let runaways = {
        let (stop, answers) = (stop.clone(), answers.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let (status, _, body) = request("GET", &url, None);
                answers.lock().unwrap().push((status, body));
            }
        })
    };
    let refused = |n: usize| answers.lock().unwrap().len() >= n;
    while !refused(1) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let held = live_sweep(&serve);
    assert_eq!(held["sweep"]["running"], 1, "{held}");
    assert_eq!(serve.get("/").0, 200);
    hold.release();
    let start = Instant::now();
    loop {
        let now = live_sweep(&serve);
        if now["sweep"]["done"] == 1 {
            assert_ne!(now["stamp"], held["stamp"], "{now}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "the live view never showed the run done: {now}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(sweep.wait().unwrap().success(), "the sweep failed");
    let seen = answers.lock().unwrap().len();
    while !refused(seen + 1) {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    runaways.join().unwrap();
    for (status, body) in answers.lock().unwrap().iter() {
        assert_eq!(*status, 503, "{body}");
        assert!(body.contains("time limit of 3 s"), "{body}");
    }
    assert_eq!(serve.get("/sweep/live").0, 200);
}

#[test]
fn a_sweep_runs_to_the_end_while_runaway_filters_are_refused_on_sqlite() {
    let _heavy = super::sweep::heavy();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    a_sweep_runs_to_the_end_while_runaway_filters_are_refused(db.as_os_str(), dir.path());
}

/// On PostgreSQL: the sweep goes on while runaway filters are refused,
/// the CLI stops a runaway statement with one line, and huge answers are
/// cut.
#[test]
fn a_sweep_runs_to_the_end_while_runaway_filters_are_refused_on_postgres() {
    let Some(env) = super::sweep::Env::postgres() else {
        return;
    };
    let _heavy = super::sweep::heavy();
    let url = env.db_arg();
    let db = OsStr::new(&url);
    a_sweep_runs_to_the_end_while_runaway_filters_are_refused(db, &env.path("."));
    let sql = format!("SELECT {ENDLESS}");
    let (ok, _, err) = ddsas_sql(db, &[&sql, "--query-timeout", "1"]);
    assert!(!ok);
    assert!(
        err.contains("time limit of 1 s") && err.contains("--query-timeout"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    huge_answers_are_cut(db);
}

fn fingerprint(db: &Path) -> (Vec<u8>, std::time::SystemTime, Vec<Vec<String>>) {
    (
        std::fs::read(db).unwrap(),
        std::fs::metadata(db).unwrap().modified().unwrap(),
        sqlite(
            db,
            "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM epochs), (SELECT count(*) FROM sweeps), (SELECT count(*) FROM sweep_runs), (SELECT group_concat(status) FROM runs)",
        ),
    )
}

#[test]
fn no_url_can_change_the_database() {
    let f = fixture();
    // A copy: the other tests read the fixture meanwhile.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    std::fs::copy(&f.db, &db).unwrap();
    let before = fingerprint(&db);
    let serve = Serve::start(&db, &[], &[]);
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        for path in ["/", "/sweep/small", "/run/1", "/api/run/1", "/nowhere"] {
            let (status, _, body) = request(method, &format!("{}{path}", serve.url), None);
            assert_eq!(status, 405, "{method} {path}: {body}");
        }
    }
    for condition in [
        "1%3B%20DROP%20TABLE%20runs",
        "1)%3B%20DELETE%20FROM%20runs%3B%20--",
        "id%20IN%20(DELETE%20FROM%20runs%20RETURNING%20id)",
    ] {
        let (status, _, html) = serve.get(&format!("/sweep/small?where={condition}"));
        assert_eq!(status, 400, "{condition}: {html}");
        assert!(html.contains("where-error"), "{html}");
        let (status, _, _) = serve.get(&format!("/sweep/small/figure/fig8.svg?where={condition}"));
        assert!(status >= 400);
    }
    drop(serve);
    let after = fingerprint(&db);
    assert_eq!(before.2, after.2, "rows changed");
    assert_eq!(before.1, after.1, "the file was written");
    assert!(before.0 == after.0, "the file's bytes changed");
}

#[test]
fn anything_but_loopback_needs_a_token_and_requests_must_carry_it() {
    let f = fixture();
    let out = Command::new(BIN)
        .args(["serve", "--host", "0.0.0.0", "--port", "0", "--db"])
        .arg(&f.db)
        .env_remove("DDSAS_SERVE_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--token") && err.contains("DDSAS_SERVE_TOKEN"),
        "{err}"
    );

    // The token from the environment; any address.
    let serve = Serve::start(
        &f.db,
        &["--host", "0.0.0.0"],
        &[("DDSAS_SERVE_TOKEN", "s3cret/x")],
    );
    let url = serve.url.replace("0.0.0.0", "127.0.0.1");
    assert_eq!(request("GET", &format!("{url}/"), None).0, 401);
    assert_eq!(request("GET", &format!("{url}/?token=wrong"), None).0, 401);
    assert_eq!(
        request("GET", &format!("{url}/sweep/small"), Some("wrong")).0,
        401
    );
    assert_eq!(
        request("GET", &format!("{url}/api/sweeps"), Some("s3cret/x")).0,
        200
    );
    assert_eq!(
        request("GET", &format!("{url}/?token=s3cret%2Fx"), None).0,
        200
    );
    let resp = ureq::get(&format!("{url}/sweep/small?token=s3cret%2Fx"))
        .call()
        .unwrap();
    let cookie = resp.header("set-cookie").unwrap().to_owned();
    assert!(cookie.starts_with("ddsas_token="), "{cookie}");
    let with_cookie = ureq::get(&format!("{url}/run/1"))
        .set("Cookie", cookie.split(';').next().unwrap())
        .call()
        .unwrap();
    assert_eq!(with_cookie.status(), 200);
    // Writes are refused before the token is even looked at.
    assert_eq!(request("POST", &format!("{url}/"), Some("s3cret/x")).0, 405);
}

// ---- in a real browser ----

/// Debian's chromium, installed by `scripts/browser.sh` when missing (as
/// root); None where it cannot be had, the test calling this being then
/// skipped (see `ddsas::test_services`).
fn browser() -> Option<&'static str> {
    static B: OnceLock<Result<String, String>> = OnceLock::new();
    let found = B.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/browser.sh");
        let out = Command::new("bash").arg(script).output().unwrap();
        if !out.status.success() {
            return Err(ddsas::test_services::reason(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    });
    ddsas::test_services::or_skip(ddsas::test_services::Service::Browser, found)
}

/// The DOM of `url` in `browser` after its script ran for `budget_ms` of
/// the page's (virtual) time; network waits do not count, so a long poll
/// holds the page open in real time.
fn dom(browser: &str, url: &str, budget_ms: u64) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .args(["--dump-dom", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(240) {
            let _ = child.kill();
            panic!("chromium did not finish {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn in_a_browser_the_pages_list_every_run_and_every_epoch() {
    let Some(browser) = browser() else {
        return;
    };
    let f = fixture();
    let serve = Serve::start(&f.db, &[], &[]);
    let html = dom(browser, &format!("{}/sweep/small", serve.url), 5000);
    let ids = ids_of(&f.db, "small");
    assert_eq!(html.matches("<tr id=\"run-").count(), ids.len(), "{html}");
    assert_eq!(
        number_at(&html, "n-done"),
        count_where(&f.db, "small", "done")
    );
    // The tables were fetched and put in by the script.
    assert!(!html.contains("loading…"), "{html}");
    let id = ids[0];
    let html = dom(browser, &format!("{}/run/{id}", serve.url), 5000);
    let curves = &html[html.find("id=\"curves\"").unwrap()..];
    let curves = &curves[..curves.find("</svg>").unwrap()];
    assert_eq!(curves.matches("<circle").count(), epochs_of(&f.db, id));
}

/// A pass-through TCP proxy in front of a `ddsas serve` that keeps what
/// the browser sent, so that a test knows which requests a page's script
/// has made. Stops accepting when dropped.
struct Watch {
    url: String,
    sent: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
}

impl Watch {
    fn start(serve_url: &str) -> Watch {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = serve_url.trim_start_matches("http://").to_owned();
        let sent = Arc::new(Mutex::new(String::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopped) = (sent.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    Some(log.clone()),
                );
                pipe(server, client, None);
            }
        });
        Watch { url, sent, stop }
    }

    /// Whether the browser has sent a request starting with `start`
    /// (`GET /path?query`).
    fn saw(&self, start: &str) -> bool {
        self.sent.lock().unwrap().contains(start)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// Copies `from` to `to` on a thread of its own until either side closes,
/// appending what passes to `log`.
fn pipe(mut from: TcpStream, mut to: TcpStream, log: Option<Arc<Mutex<String>>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            if let Some(log) = &log {
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// The run holds before its second epoch (weight step 5) until both
/// pages are served and their scripts wait for news of it (their long
/// polls reached the server), so the pages see it running and then done
/// however slowly the browser starts.
#[test]
fn in_a_browser_a_run_that_finishes_while_the_page_is_open_shows_as_done() {
    let Some(browser) = browser() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    let file = sweep_file(
        dir.path(),
        "live",
        "base: {dataset: digits, epochs: 3, layers: 1, init_channels: 4, batch_size: 16, steps_per_epoch: 4}\n",
    );
    let hold = Hold::every_run(dir.path(), 5);
    let mut sweep = start_sweep(&db, &file, 1, &[hold.env()]);
    let start = Instant::now();
    // Open the pages once the run runs with an epoch recorded: it cannot
    // record another before the hold is released.
    loop {
        let held = db.exists()
            && super::util::try_sqlite(
                &db,
                "SELECT count(*) FROM runs WHERE status = 'running' AND epochs_done = 1",
            )
            .is_ok_and(|r| r[0][0] == "1");
        if held {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run never reached its hold"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let serve = Serve::start(&db, &[], &[]);
    let watch = Watch::start(&serve.url);
    let id: i64 = scalar(&db, "SELECT id FROM runs").parse().unwrap();
    let (sweep_url, run_url) = (
        format!("{}/sweep/live", watch.url),
        format!("{}/run/{id}", watch.url),
    );
    let run_page = std::thread::spawn(move || dom(browser, &run_url, 120_000));
    let sweep_page = std::thread::spawn(move || dom(browser, &sweep_url, 120_000));
    let polls = [
        "GET /api/sweep/live?since=".to_owned(),
        format!("GET /api/run/{id}?since="),
    ];
    let start = Instant::now();
    while !polls.iter().all(|p| watch.saw(p)) {
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the pages never asked for news: {}",
            watch.sent.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    hold.release();
    let html = sweep_page.join().unwrap();
    let run_html = run_page.join().unwrap();
    assert!(sweep.wait().unwrap().success());
    let finished: f64 = scalar(&db, "SELECT finished_at FROM runs").parse().unwrap();
    for page in [&html, &run_html] {
        // Served while the run ran, and shows it done: the script did it.
        let served: f64 = page
            .split("data-served-at=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            served < finished,
            "the page was served after the run finished"
        );
    }
    assert_eq!(number_at(&html, "n-done"), 1, "{html}");
    assert_eq!(number_at(&html, "n-running"), 0);
    let row = &html[html.find(&format!("id=\"run-{id}\"")).unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("st-done") && row.contains(">done<"), "{row}");
    assert_eq!(element_text(&run_html, "status"), "done", "{run_html}");
    let n = epochs_of(&db, id);
    assert_eq!(n, 3);
    let curves = &run_html[run_html.find("id=\"curves\"").unwrap()..];
    let curves = &curves[..curves.find("</svg>").unwrap()];
    assert_eq!(
        curves.matches("<circle").count(),
        n,
        "the curves were not redrawn"
    );
}

/// The median of `n` timed GETs of `path`, in milliseconds.
fn median_ms(serve: &Serve, path: &str, n: usize) -> f64 {
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let (status, _, _) = serve.get(path);
            assert_eq!(status, 200, "{path}");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

/// BENCHMARKS.md: pages on the history the paper's experiments leave, a
/// sweep of 500 runs × 600 epochs (copies of a real run's rows). Run with
/// `cargo test --release --locked --test e2e serve::bench -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_pages_on_500_runs_of_600_epochs() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    std::fs::copy(&f.db, &db).unwrap();
    let t = Instant::now();
    super::util::rt().block_on(async {
        let pool = sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new().filename(&db),
        )
        .await
        .unwrap();
        sqlx::raw_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
             INSERT INTO runs (fingerprint, method, space, dataset, seed, config_json, epochs_total, definitions,
                               status, epochs_done, final_valid_acc, best_valid_acc, final_genotype, wall_s,
                               started_at, finished_at, attempts)
             SELECT 'bench-' || i, method, space, dataset, i, json_set(config_json, '$.seed', i), 600, definitions,
                    CASE WHEN i % 50 = 0 THEN 'running' WHEN i % 25 = 0 THEN 'queued' ELSE 'done' END,
                    CASE WHEN i % 25 = 0 THEN 300 ELSE 600 END, 0.5 + i / 1000.0, 0.6, final_genotype, 3600.0,
                    created_at, finished_at, 1
             FROM runs, n WHERE runs.id = 1;
             INSERT INTO sweeps (name, description) VALUES ('big', '500 runs x 600 epochs');
             INSERT INTO sweep_runs (sweep, run_id, position) SELECT 'big', id, id FROM runs WHERE fingerprint LIKE 'bench-%';
             WITH RECURSIVE e(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM e WHERE k < 599)
             INSERT INTO epochs (run_id, epoch, train_acc, train_loss, valid_acc, valid_loss, lr, genotype,
                                 skip_normal, skip_reduce, cosine_distance, wall_s, images_per_s)
             SELECT r.id, e.k, 0.3 + e.k / 1000.0, 2.0 - e.k / 400.0, 0.25 + e.k / 1000.0, 2.1 - e.k / 400.0,
                    0.025 * (600 - e.k) / 600.0, g.genotype, e.k % 5, e.k % 3,
                    CASE WHEN e.k > 0 THEN 0.1 END, 6.0, 1000.0
             FROM runs r, e, (SELECT genotype FROM epochs WHERE run_id = 1 LIMIT 1) g
             WHERE r.fingerprint LIKE 'bench-%' AND e.k < r.epochs_done;",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    });
    eprintln!("database built in {:.1} s", t.elapsed().as_secs_f64());
    let epochs = scalar(&db, "SELECT count(*) FROM epochs e JOIN sweep_runs s ON s.run_id = e.run_id WHERE s.sweep = 'big'");
    let run: i64 = scalar(
        &db,
        "SELECT min(id) FROM runs WHERE fingerprint LIKE 'bench-%'",
    )
    .parse()
    .unwrap();
    let serve = Serve::start(&db, &[], &[]);
    let n = 11;
    let rows = [
        ("sweeps (/)", "/".to_string()),
        ("sweep page", "/sweep/big".to_string()),
        (
            "sweep page, --where",
            "/sweep/big?where=valid_acc%20%3E%200.7".to_string(),
        ),
        ("sweep JSON (refresh)", "/api/sweep/big".to_string()),
        ("run page (600 epochs)", format!("/run/{run}")),
        ("run curves SVG", format!("/run/{run}/curves.svg")),
        ("run JSON (refresh)", format!("/api/run/{run}")),
    ];
    eprintln!("{epochs} epoch rows in sweep big; median of {n} requests:");
    let mut medians = Vec::new();
    for (what, path) in rows {
        let ms = median_ms(&serve, &path, n);
        eprintln!("| {what} | `{path}` | {ms:.1} ms |");
        medians.push((what, ms));
    }
    let of = |w: &str| medians.iter().find(|(k, _)| k.starts_with(w)).unwrap().1;
    assert!(
        of("sweep page") < 200.0,
        "the sweep page takes {} ms",
        of("sweep page")
    );
    assert!(
        of("run page") < 100.0,
        "the run page takes {} ms",
        of("run page")
    );
}
