//! End-to-end tests of sweeps on Slurm (issue 13): `sweep submit --slurm`
//! (its script, its refusals) and the pull worker each array task runs
//! (`ddsas worker --sweep`), here on a SQLite file without Slurm: several
//! pull workers sharing a sweep, and SIGUSR2 (Slurm's time-limit warning)
//! stopping one so that the next resumes its run with the same records.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::sweep::{heavy, kill, wait_child, Env, WAIT};
use super::util::{text, BIN};

/// Tiny searches: a few seconds each on one thread.
const TINY: &str =
    "{dataset: digits, epochs: 2, layers: 1, init_channels: 2, batch_size: 16, steps_per_epoch: 2}";
/// Long enough to be stopped mid-run (4 epochs of ~0.5 s).
const SLOWER: &str =
    "{dataset: digits, epochs: 4, layers: 2, init_channels: 4, batch_size: 16, steps_per_epoch: 3}";

/// The columns of an epoch that a resumed run must reproduce exactly.
const EPOCH_NUMBERS: &str = "SELECT r.fingerprint, e.epoch, e.train_acc, e.train_loss, e.valid_acc, e.valid_loss, e.lr, e.genotype, e.cosine_distance \
     FROM epochs e JOIN runs r ON r.id = e.run_id ORDER BY r.fingerprint, e.epoch";

/// Environment variables of a Slurm job that must not leak into the tests
/// from a test run that itself runs inside Slurm.
const SLURM_VARS: [&str; 7] = [
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_RESTART_COUNT",
    "SLURM_JOB_GPUS",
    "SLURM_GPUS_ON_NODE",
    "CUDA_VISIBLE_DEVICES",
];

#[test]
fn dry_run_prints_a_complete_script_and_submits_nothing() {
    let env = Env::new();
    let file = env.sweep(
        "grid",
        &format!("base: {TINY}\ngrid: {{seed: [0, 1, 2]}}\n"),
    );
    let scripts = env.path("jobs");
    let url = "postgres://me@db.example:5432/ddsas";
    let out = Command::new(BIN)
        .args(["sweep", "submit"])
        .arg(&file)
        .args(["--slurm", "--dry-run", "--db", url, "--script-dir"])
        .arg(&scripts)
        .args([
            "--partition=debug",
            "--account=lab",
            "--time=30",
            "--cpus-per-task=1",
            "--mem=2G",
            "--workers=2",
            "--array-parallelism=1",
            "--threads=1",
            "--signal-before=60",
            "--sbatch-arg=--qos=low",
        ])
        .current_dir(env.path(""))
        .env_remove("DDSAS_DB")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let script = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = script.lines().collect();
    assert_eq!(lines[0], "#!/bin/bash", "{script}");
    let output = format!("--output={}/%A_%a.out", scripts.display());
    for directive in [
        "--job-name=ddsas-grid",
        "--array=0-1%1",
        "--ntasks=1",
        output.as_str(),
        "--open-mode=append",
        "--requeue",
        "--signal=B:USR2@60",
        "--partition=debug",
        "--account=lab",
        "--time=30",
        "--cpus-per-task=1",
        "--mem=2G",
        "--qos=low",
    ] {
        assert!(
            lines.contains(&format!("#SBATCH {directive}").as_str()),
            "no #SBATCH {directive} in\n{script}"
        );
    }
    let workdir = env.path("").canonicalize().unwrap();
    assert!(
        script.contains(&format!("\ncd {} || exit 1\n", workdir.display())),
        "{script}"
    );
    let exec = lines.last().unwrap();
    assert_eq!(
        *exec,
        format!(
            "exec {BIN} worker --sweep grid --db {url} --log-dir {}/logs --max-retries 2 --stale-after 30 --threads 1",
            scripts.display()
        )
    );
    assert!(Path::new(BIN).is_absolute());
    // A script bash accepts, and nothing written or registered.
    let syntax = Command::new("bash")
        .args(["-n", "-c", &script])
        .output()
        .unwrap();
    assert!(syntax.status.success(), "{}", text(&syntax));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("nothing was registered, written or submitted"),
        "{said}"
    );
    assert!(
        said.contains(&format!("{}/submit-1.sh", scripts.display())),
        "{said}"
    );
    assert!(!scripts.exists(), "--dry-run wrote {}", scripts.display());
}

#[test]
fn a_sqlite_database_is_refused_with_the_reason_and_the_fix() {
    let env = Env::new();
    let file = env.sweep("grid", &format!("base: {TINY}\n"));
    let out = env.run(&["sweep", "submit", file.to_str().unwrap(), "--slurm"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    for part in [
        "--slurm needs a PostgreSQL database",
        "network file systems",
        "postgres://",
        "scripts/postgres.sh start",
    ] {
        assert!(said.contains(part), "no {part:?} in {said}");
    }
    assert!(
        !env.db().exists(),
        "the refusal created {}",
        env.db().display()
    );
    assert!(!env.path("slurm").exists());
    let no_flag = env.run(&["sweep", "submit", file.to_str().unwrap()]);
    assert_eq!(no_flag.status.code(), Some(2), "{}", text(&no_flag));
    assert!(String::from_utf8_lossy(&no_flag.stderr).contains("--slurm"));
}

/// Registers a sweep file's runs in the test's SQLite database, as `sweep
/// submit` does before it submits (which it refuses on SQLite).
fn register(env: &Env, file: &Path) {
    let sweep = ddsas::sweep::Sweep::load(file).unwrap();
    super::util::rt().block_on(async {
        let store = ddsas::store::Store::open(&env.db()).await.unwrap();
        let mut links = Vec::new();
        for run in &sweep.runs {
            let row = store.ensure_run(&run.cfg).await.unwrap();
            links.push((row.id, run.position as i64));
        }
        store
            .register_sweep(&sweep.name, None, &sweep.file, &sweep.text, &links)
            .await
            .unwrap();
        store.close().await;
    });
}

/// Starts a pull worker of `sweep` on one single-threaded CPU slot, its
/// output into `<tag>.out` / `<tag>.err`.
fn pull_worker(env: &Env, sweep: &str, tag: &str) -> Child {
    let mut cmd = env.cmd(&[
        "worker",
        "--sweep",
        sweep,
        "--threads",
        "1",
        "--heartbeat-s",
        "0.5",
        "--log-dir",
        env.path("logs").to_str().unwrap(),
    ]);
    for var in SLURM_VARS {
        cmd.env_remove(var);
    }
    cmd.env("SLURM_CPUS_PER_TASK", "1")
        .stdout(std::fs::File::create(env.path(&format!("{tag}.out"))).unwrap())
        .stderr(std::fs::File::create(env.path(&format!("{tag}.err"))).unwrap())
        .spawn()
        .unwrap()
}

#[test]
fn pull_workers_share_a_registered_sweep_and_leave_when_nothing_is_left() {
    let _heavy = heavy();
    let env = Env::new();
    let file = env.sweep(
        "shared",
        &format!("base: {TINY}\ngrid: {{seed: [0, 1, 2, 3]}}\n"),
    );
    register(&env, &file);
    let mut first = pull_worker(&env, "shared", "first");
    let mut second = pull_worker(&env, "shared", "second");
    for (child, tag) in [(&mut first, "first"), (&mut second, "second")] {
        let status = wait_child(child, tag);
        assert!(
            status.success(),
            "{tag}: {status:?}\n{}",
            env.output_of(tag)
        );
    }
    env.assert_all_done_once(4);
    let attempts = env.scalar("SELECT sum(attempts) FROM runs");
    assert_eq!(attempts, 4, "each run claimed once");
    let said = env.output_of("first") + &env.output_of("second");
    assert!(said.contains("pull worker of sweep shared"), "{said}");
    // A pull worker that comes late finds nothing and leaves at once.
    let mut late = pull_worker(&env, "shared", "late");
    assert!(
        wait_child(&mut late, "late").success(),
        "{}",
        env.output_of("late")
    );
    assert!(env.output_of("late").contains("0 run(s) not done, 4 done"));
    let unknown = env.run(&["worker", "--sweep", "nope"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("its sweeps: shared"));
}

#[test]
fn sigusr2_stops_a_pull_worker_and_the_next_resumes_with_the_same_records() {
    let _heavy = heavy();
    let env = Env::new();
    let file = env.sweep("limited", &format!("base: {SLOWER}\n"));
    register(&env, &file);
    let mut worker = pull_worker(&env, "limited", "first");
    wait_until("a checkpointed epoch", || {
        env.try_query(
            "SELECT checkpoint_path FROM runs WHERE epochs_done >= 1 AND status = 'running'",
        )
        .is_ok_and(|rows| {
            rows.first()
                .and_then(|r| r[0].as_str())
                .is_some_and(|c| super::util::has_checkpoint(Path::new(c)))
        })
    });
    kill(i64::from(worker.id()), libc::SIGUSR2);
    let status = wait_child(&mut worker, "the signalled pull worker");
    let said = env.output_of("first");
    if status.code() == Some(130) {
        assert!(said.contains("SIGUSR2"), "{said}");
        let rows = env.query("SELECT status, epochs_done FROM runs");
        assert_eq!(rows[0][0], "interrupted", "{said}");
        assert!(rows[0][1].as_i64().unwrap() < 4, "{said}");
    } else {
        // The run ended before the signal landed: nothing to resume.
        assert!(status.success(), "{status:?}\n{said}");
    }
    let mut next = pull_worker(&env, "limited", "next");
    assert!(
        wait_child(&mut next, "the next pull worker").success(),
        "{}",
        env.output_of("next")
    );
    env.assert_all_done_once(1);
    assert_eq!(numbers(&env.db()), numbers(&uninterrupted(&env, SLOWER)));
}

/// The epoch numbers of every run in a SQLite database, by fingerprint.
fn numbers(db: &Path) -> Vec<Vec<String>> {
    super::util::sqlite(db, EPOCH_NUMBERS)
}

/// A database holding `config` searched in one go by `ddsas search`.
fn uninterrupted(env: &Env, config: &str) -> PathBuf {
    let config_file = env.path("straight.yaml");
    std::fs::write(&config_file, config).unwrap();
    let db = env.path("straight.db");
    let out = Command::new(BIN)
        .args(["search", "--quiet", "--threads", "1", "--config"])
        .arg(&config_file)
        .arg("--db")
        .arg(&db)
        .env("DDSAS_DATA", env.path("data"))
        .env_remove("DDSAS_DB")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    db
}

/// Polls `cond` every 50 ms until it holds; panics after [`WAIT`].
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
