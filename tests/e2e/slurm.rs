//! End-to-end tests of sweeps on Slurm: `sweep submit --slurm`
//! (its script, its refusals) and the pull worker each array task runs
//! (`ddsas worker --sweep`), here on a SQLite file without Slurm: several
//! pull workers sharing a sweep, and SIGUSR2 (Slurm's time-limit warning)
//! stopping one so that the next resumes its run with the same records.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::sweep::{heavy, kill, wait_child, Env, WAIT};
use ddsas::test_services::Service;

use super::util::{text, Hold, BIN};

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
    // The URL (which may hold a password) is not on the command line.
    assert!(
        lines.contains(&format!("export DDSAS_DB={url}").as_str()),
        "{script}"
    );
    let exec = lines.last().unwrap();
    assert_eq!(
        *exec,
        format!(
            "exec {BIN} worker --sweep grid --log-dir {}/logs --max-retries 2 --stale-after 30 --threads 1",
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

#[test]
fn status_without_squeue_says_so_in_one_line_and_shows_the_database() {
    let env = Env::new();
    let file = env.sweep("grid", &format!("base: {TINY}\n"));
    register(&env, &file);
    super::util::rt().block_on(async {
        let store = ddsas::store::Store::open(&env.db()).await.unwrap();
        store
            .record_slurm_job("4242", "grid", 2, "x.sh")
            .await
            .unwrap();
        store.close().await;
    });
    let empty = env.path("no-slurm-here");
    std::fs::create_dir_all(&empty).unwrap();
    let out = env
        .cmd(&["sweep", "status", "grid"])
        .env("PATH", &empty)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("1 runs: 0 done"), "{said}");
    let slurm_lines: Vec<&str> = said.lines().filter(|l| l.contains("4242")).collect();
    assert_eq!(slurm_lines.len(), 1, "{said}");
    assert!(
        slurm_lines[0].contains("`squeue` is not installed here"),
        "{said}"
    );
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
/// output into `<tag>.out` / `<tag>.err`, its runs held by `hold`.
fn pull_worker(env: &Env, sweep: &str, tag: &str, hold: Option<&Hold>) -> Child {
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
    if let Some(hold) = hold {
        let (var, value) = hold.env();
        cmd.env(var, value);
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
    let mut first = pull_worker(&env, "shared", "first", None);
    let mut second = pull_worker(&env, "shared", "second", None);
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
    let mut late = pull_worker(&env, "shared", "late", None);
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
    // Held at the 2nd step of epoch 2 (3 steps an epoch) until signalled.
    let hold = env.hold(5);
    let mut worker = pull_worker(&env, "limited", "first", Some(&hold));
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
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(said.contains("SIGUSR2"), "{said}");
    let rows = env.query("SELECT status, epochs_done FROM runs");
    assert_eq!(rows[0][0], "interrupted", "{said}");
    assert_eq!(rows[0][1].as_i64(), Some(1), "{said}");
    hold.release();
    let mut next = pull_worker(&env, "limited", "next", None);
    assert!(
        wait_child(&mut next, "the next pull worker").success(),
        "{}",
        env.output_of("next")
    );
    env.assert_all_done_once(1);
    assert_eq!(env.query(EPOCH_NUMBERS), uninterrupted(&Env::new(), SLOWER));
}

/// The signalled attempt of the sweep's one run stopped at its next step
/// and checkpointed there, and the next attempt went on from that step;
/// or, when the signal landed between two epochs, stopped before a step
/// of the new epoch was done (and then goes on from the epoch checkpoint).
fn assert_resumed_where_stopped(env: &Env, sweep: &str) {
    let id = env.scalar("SELECT id FROM runs");
    let logs = env.path(&format!("slurm/{sweep}/logs"));
    let read = |attempt: i64| {
        std::fs::read_to_string(logs.join(format!("run-{id}-attempt-{attempt}.log")))
            .unwrap_or_default()
    };
    let (stopped, resumed) = (read(1), read(2));
    let at = stopped
        .split_once("interrupted at step ")
        .and_then(|(_, rest)| rest.split_once(", checkpointed there"));
    match at {
        Some((at, _)) => {
            assert!(
                resumed.contains(&format!("resuming at step {at} of")),
                "stopped at step {at}, but:\n{resumed}"
            );
            eprintln!("the signalled run stopped at step {at} and resumed there");
        }
        None => {
            assert!(
                stopped.contains("interrupted before epoch"),
                "{stopped}\n---\n{resumed}"
            );
            eprintln!("the signal landed between epochs");
        }
    }
}

/// The epoch records of `config` searched in one go by `ddsas search` in
/// `reference`'s database (of the same backend as the one compared with:
/// each backend reads its numbers back its own way).
fn uninterrupted(reference: &Env, config: &str) -> Vec<Vec<serde_json::Value>> {
    let config_file = reference.path("straight.yaml");
    std::fs::write(&config_file, config).unwrap();
    let out = reference.run(&[
        "search",
        "--quiet",
        "--threads",
        "1",
        "--config",
        config_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    reference.query(EPOCH_NUMBERS)
}

/// Polls `cond` every 50 ms until it holds; panics after [`WAIT`].
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------
// On the one-node cluster of `scripts/slurm.sh` with the run history in a
// PostgreSQL database of the test's own.

/// The environment variable naming the `slurm.conf` of the cluster to
/// test on; when unset, the tests start the project's one-node cluster
/// with `scripts/slurm.sh start` (as the test command does), and are
/// skipped where that cannot be done (it needs root). Never the user's
/// own `SLURM_CONF`: a test must not submit to a real cluster.
const SLURM_CONF_ENV: &str = "DDSAS_TEST_SLURM_CONF";

/// The test cluster's `slurm.conf`, started once per test binary, or why
/// it cannot be started here.
fn started_cluster() -> &'static Result<String, String> {
    static CONF: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    CONF.get_or_init(|| {
        if let Ok(conf) = std::env::var(SLURM_CONF_ENV) {
            return Ok(conf);
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/slurm.sh");
        let out = Command::new(script).arg("start").output().unwrap();
        if !out.status.success() {
            return Err(ddsas::test_services::reason(&out.stderr));
        }
        let said = String::from_utf8_lossy(&out.stdout);
        let conf = said.lines().find_map(|l| l.strip_prefix("SLURM_CONF="));
        Ok(conf
            .unwrap_or_else(|| panic!("{script} start printed no SLURM_CONF=: {said}"))
            .to_owned())
    })
}

/// Whether the test cluster is up; when it cannot be had here, the test
/// calling this is noted as skipped (see `ddsas::test_services`).
fn cluster_or_skip() -> bool {
    ddsas::test_services::or_skip(Service::Slurm, started_cluster()).is_some()
}

/// The test cluster's `slurm.conf` (a test checked [`cluster_or_skip`]).
fn slurm_conf() -> &'static str {
    started_cluster()
        .as_deref()
        .expect("the test checked cluster_or_skip first")
}

/// An environment on PostgreSQL for a test on the test cluster; None when
/// either cannot be had here and the test is skipped.
fn cluster_env() -> Option<Env> {
    if !cluster_or_skip() {
        return None;
    }
    Env::postgres()
}

/// A command of `env` pointed at the test cluster.
fn on_cluster(env: &Env, args: &[&str]) -> Command {
    let mut cmd = env.cmd(args);
    for var in SLURM_VARS {
        cmd.env_remove(var);
    }
    cmd.env("SLURM_CONF", slurm_conf());
    cmd
}

/// A Slurm client command against the test cluster; its stdout.
fn slurm(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .env("SLURM_CONF", slurm_conf())
        .output()
        .unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ddsas train --slurm` of darts_v2 on the digits, quiet, one CPU per
/// rank and `ranks_per_node` ranks on the node, with `sets` as `--set`s.
fn train_on_slurm(ranks_per_node: &'static str, sets: &[&'static str]) -> Vec<&'static str> {
    let mut args = vec![
        "train",
        "--quiet",
        "--genotype",
        "darts_v2",
        "--slurm",
        "--ntasks-per-node",
        ranks_per_node,
        "--cpus-per-task",
        "1",
    ];
    for set in sets {
        args.extend(["--set", set]);
    }
    args
}

/// The first Slurm job `select` (a `SELECT job_id FROM slurm_jobs ...`)
/// finds, scancelled when the test ends.
fn recorded_job(env: &Env, select: &str) -> Submitted {
    Submitted {
        job: env.query(select)[0][0]
            .as_str()
            .unwrap_or_else(|| panic!("no job id from {select}"))
            .to_owned(),
    }
}

/// (task, state) of every task of job array `job`.
fn task_states(job: &str) -> Vec<(String, String)> {
    let jobs = format!("--jobs={job}");
    slurm(
        "squeue",
        &["-h", "-r", "--states=all", "-o", "%i|%T", &jobs],
    )
    .lines()
    .filter_map(|l| l.split_once('|'))
    .map(|(id, state)| {
        let task = id.split_once('_').map_or(id, |(_, t)| t);
        (task.to_owned(), state.to_owned())
    })
    .collect()
}

/// Whether every task of `job` has ended, none of them to come back.
fn all_ended(job: &str) -> bool {
    let states = task_states(job);
    !states.is_empty()
        && states.iter().all(|(_, s)| {
            matches!(
                s.as_str(),
                "COMPLETED" | "FAILED" | "CANCELLED" | "TIMEOUT" | "OUT_OF_MEMORY"
            )
        })
}

/// A submitted job array, scancelled (and waited for) when the test ends
/// however it ends, so that no task outlives its database.
struct Submitted {
    job: String,
}

impl Drop for Submitted {
    fn drop(&mut self) {
        let _ = Command::new("scancel")
            .arg(&self.job)
            .env("SLURM_CONF", slurm_conf())
            .output();
        let start = Instant::now();
        while !all_ended(&self.job) && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// `sweep submit FILE --slurm` with `extra` options, single-threaded runs
/// on one core per task, held by `hold` (the tasks inherit the submit's
/// environment); returns the job.
fn submit(env: &Env, file: &Path, extra: &[&str], hold: Option<&Hold>) -> Submitted {
    let mut args = vec![
        "sweep",
        "submit",
        file.to_str().unwrap(),
        "--slurm",
        "--cpus-per-task=1",
        "--threads=1",
    ];
    args.extend_from_slice(extra);
    let mut cmd = on_cluster(env, &args);
    if let Some(hold) = hold {
        let (var, value) = hold.env();
        cmd.env(var, value);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("submitted job array"), "{said}");
    let rows = env.query("SELECT job_id, tasks, script_path FROM slurm_jobs");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let script = rows[0][2].as_str().unwrap();
    assert!(Path::new(script).is_file(), "{script}");
    assert!(said.contains(script), "{said}");
    Submitted {
        job: rows[0][0].as_str().unwrap().to_owned(),
    }
}

/// The output file of task `task` of `job` (in the default script folder).
fn task_output(env: &Env, sweep: &str, job: &str, task: u32) -> String {
    let path = env.path(&format!("slurm/{sweep}/{job}_{task}.out"));
    std::fs::read_to_string(path).unwrap_or_default()
}

fn wait_until_ended(env: &Env, sweep: &str, job: &Submitted, tasks: u32) {
    let start = Instant::now();
    while !all_ended(&job.job) {
        if start.elapsed() > WAIT {
            let outputs: Vec<String> = (0..tasks)
                .map(|t| task_output(env, sweep, &job.job, t))
                .collect();
            panic!(
                "job {} did not end: {:?}\n{}",
                job.job,
                task_states(&job.job),
                outputs.join("\n---\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_six_run_sweep_submitted_as_three_tasks_runs_every_run_once() {
    let _heavy = heavy();
    let Some(env) = cluster_env() else {
        return;
    };
    let file = env.sweep(
        "six",
        &format!("base: {TINY}\ngrid: {{seed: [0, 1, 2, 3, 4, 5]}}\n"),
    );
    let job = submit(&env, &file, &["--workers=3"], None);
    wait_until_ended(&env, "six", &job, 3);
    let states = task_states(&job.job);
    assert_eq!(states.len(), 3, "{states:?}");
    for task in 0..3 {
        let said = task_output(&env, "six", &job.job, task);
        assert!(
            states.iter().all(|(_, s)| s == "COMPLETED"),
            "{states:?}\ntask {task}:\n{said}"
        );
        assert!(said.contains("pull worker of sweep six"), "{said}");
    }
    env.assert_all_done_once(6);
    assert_eq!(
        env.scalar("SELECT CAST(sum(attempts) AS BIGINT) FROM runs"),
        6,
        "no run claimed twice"
    );
    assert_eq!(env.scalar("SELECT count(*) FROM epochs"), 12);
    let status = on_cluster(&env, &["sweep", "status", "six"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{}", text(&status));
    assert!(said.contains("6 runs: 6 done"), "{said}");
    assert!(said.contains("Slurm tasks: 3 COMPLETED"), "{said}");
}

#[test]
fn a_scancelled_task_leaves_its_run_to_another_task() {
    let Some((stopped, _)) = one_of_two_tasks_stopped(Stop::Scancel) else {
        return;
    };
    assert!(stopped.contains("interrupted at epoch"), "{stopped}");
}

/// A task killed without a word (a lost node, `kill -9`: here SIGKILL to
/// its pull worker and run worker; `scancel --signal=KILL` would still
/// send SIGTERM first) leaves its run `running`; the other task takes it
/// over: at once here, as its processes on this host are gone; from
/// another node, once its heartbeat is older than `--stale-after`.
#[test]
fn a_killed_task_s_run_is_taken_over_by_another_task() {
    let Some((killed, other)) = one_of_two_tasks_stopped(Stop::Kill) else {
        return;
    };
    assert!(
        other.contains("taking over from orch:"),
        "{other}\n--- the killed task ---\n{killed}"
    );
}

/// How a test stops one of two tasks.
#[derive(Clone, Copy, PartialEq)]
enum Stop {
    /// `scancel` of task 0.
    Scancel,
    /// SIGKILL to the pull worker and run worker of one running run.
    Kill,
}

/// Submits four runs as two tasks, stops one (`how`) while both are in
/// their first runs, and checks that the other finishes every run, the
/// stopped one's from its checkpoint; returns the output of the stopped
/// task and of the other.
fn one_of_two_tasks_stopped(how: Stop) -> Option<(String, String)> {
    let _heavy = heavy();
    let env = cluster_env()?;
    let body = "base: {dataset: digits, epochs: 8, layers: 2, init_channels: 4, batch_size: 16, steps_per_epoch: 3}\ngrid: {seed: [0, 1, 2, 3]}\n";
    let file = env.sweep("four", body);
    // Every run is held before its epoch 2 (3 steps an epoch) until one
    // task is stopped.
    let hold = env.hold(4);
    let job = submit(&env, &file, &["--workers=2"], Some(&hold));
    wait_until("both tasks in their first runs", || {
        env.try_query("SELECT count(*) FROM runs WHERE status = 'running' AND epochs_done >= 1")
            .is_ok_and(|rows| rows[0][0].as_i64() == Some(2))
    });
    match how {
        Stop::Scancel => {
            slurm("scancel", &[&format!("{}_0", job.job)]);
            // Slurm signals the task on its own time: released once done.
            wait_until("the cancelled task's run interrupted", || {
                env.try_query("SELECT count(*) FROM runs WHERE status = 'interrupted'")
                    .is_ok_and(|rows| rows[0][0].as_i64() == Some(1))
            });
        }
        Stop::Kill => {
            let rows =
                env.query("SELECT owner, pid FROM runs WHERE status = 'running' ORDER BY id");
            let owner = rows[0][0].as_str().unwrap();
            let orchestrator: i64 = owner.split(':').nth(2).unwrap().parse().unwrap();
            kill(orchestrator, libc::SIGKILL);
            kill(rows[0][1].as_i64().unwrap(), libc::SIGKILL);
        }
    }
    hold.release();
    wait_until_ended(&env, "four", &job, 2);
    let states = task_states(&job.job);
    let outputs: Vec<String> = (0..2)
        .map(|t| task_output(&env, "four", &job.job, t))
        .collect();
    let completed: Vec<usize> = states
        .iter()
        .filter(|(_, s)| s == "COMPLETED")
        .filter_map(|(t, _)| t.parse().ok())
        .collect();
    assert_eq!(
        completed.len(),
        1,
        "{states:?}\n{}",
        outputs.join("\n---\n")
    );
    let other = completed[0];
    if how == Stop::Scancel {
        assert_eq!(other, 1, "{states:?}");
    }
    let (stopped, other) = (outputs[1 - other].clone(), outputs[other].clone());
    env.assert_all_done_once(4);
    assert_eq!(
        env.scalar("SELECT CAST(sum(attempts) AS BIGINT) FROM runs"),
        5,
        "one run claimed twice\n{stopped}\n---\n{other}"
    );
    let taken = env.scalar("SELECT id FROM runs WHERE attempts = 2");
    assert!(other.contains(&format!("run {taken} ")), "{other}");
    let status = on_cluster(&env, &["sweep", "status", "four"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(
        said.contains("Slurm tasks: ") && said.contains("1 COMPLETED"),
        "{said}"
    );
    Some((stopped, other))
}

#[test]
fn a_task_warned_of_its_time_limit_requeues_and_resumes_with_the_same_records() {
    let _heavy = heavy();
    let Some(env) = cluster_env() else {
        return;
    };
    let config = "{dataset: digits, epochs: 10, layers: 2, init_channels: 4, batch_size: 16, steps_per_epoch: 3}";
    let file = env.sweep("limited", &format!("base: {config}\n"));
    // Held at the 2nd step of epoch 3 (3 steps an epoch) until signalled.
    let hold = env.hold(8);
    let job = submit(
        &env,
        &file,
        &["--workers=1", "--time=10", "--signal-before=60"],
        Some(&hold),
    );
    wait_until("two checkpointed epochs", || {
        env.try_query(
            "SELECT checkpoint_path FROM runs WHERE status = 'running' AND epochs_done >= 2",
        )
        .is_ok_and(|rows| {
            rows.first()
                .and_then(|r| r[0].as_str())
                .is_some_and(|c| super::util::has_checkpoint(Path::new(c)))
        })
    });
    // What Slurm sends the batch step `--signal-before` seconds before the limit.
    slurm(
        "scancel",
        &["--signal=USR2", "--batch", &format!("{}_0", job.job)],
    );
    let signalled = Instant::now();
    // Slurm signals the task on its own time: released once it stopped.
    wait_until("the signalled run interrupted", || {
        env.try_query("SELECT status, attempts FROM runs")
            .is_ok_and(|rows| rows[0][0] == "interrupted" || rows[0][1].as_i64() > Some(1))
    });
    hold.release();
    wait_until_ended(&env, "limited", &job, 1);
    let said = task_output(&env, "limited", &job.job, 0);
    assert_eq!(
        task_states(&job.job),
        [("0".to_owned(), "COMPLETED".to_owned())],
        "{said}"
    );
    for part in [
        "SIGUSR2",
        "interrupted at epoch",
        &format!("requeueing Slurm task {}_0", job.job),
        &format!("Slurm task {}_0 restart 1", job.job),
    ] {
        assert!(said.contains(part), "no {part:?} in\n{said}");
    }
    env.assert_all_done_once(1);
    assert_eq!(env.scalar("SELECT attempts FROM runs"), 2, "{said}");
    assert_resumed_where_stopped(&env, "limited");
    eprintln!(
        "requeued task resumed and finished {:.1} s after the signal",
        signalled.elapsed().as_secs_f64()
    );
    assert_eq!(
        env.query(EPOCH_NUMBERS),
        uninterrupted(
            &Env::postgres().expect("a server was there a moment ago"),
            config
        )
    );
}

#[test]
fn cancel_scancels_the_array_and_done_runs_stay_done() {
    let _heavy = heavy();
    let Some(env) = cluster_env() else {
        return;
    };
    let body = "base: {dataset: digits, epochs: 6, layers: 2, init_channels: 4, batch_size: 16, steps_per_epoch: 3}\ngrid: {seed: [0, 1, 2]}\n";
    let file = env.sweep("stopped", body);
    // Each run is held before its epoch 2 (3 steps an epoch): the first
    // one to get there is let go, the next one stays.
    let hold = env.hold_seeds(4, &[0, 1, 2]);
    let job = submit(&env, &file, &["--workers=1"], Some(&hold));
    wait_until("a run with a recorded epoch", || {
        env.try_query("SELECT count(*) FROM runs WHERE status = 'running' AND epochs_done >= 1")
            .is_ok_and(|rows| rows[0][0].as_i64() == Some(1))
    });
    let first = env.query("SELECT seed FROM runs WHERE status = 'running'");
    hold.release_seed(first[0][0].as_u64().unwrap());
    wait_until("one run done and the next one running", || {
        env.try_query("SELECT count(*) FROM runs WHERE status = 'done'")
            .is_ok_and(|rows| rows[0][0].as_i64() == Some(1))
            && env
                .try_query(
                    "SELECT count(*) FROM runs WHERE status = 'running' AND epochs_done >= 1",
                )
                .is_ok_and(|rows| rows[0][0].as_i64() == Some(1))
    });
    let out = on_cluster(&env, &["sweep", "cancel", "stopped"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("scancel {}", job.job)), "{said}");
    wait_until_ended(&env, "stopped", &job, 1);
    assert_eq!(
        task_states(&job.job),
        [("0".to_owned(), "CANCELLED".to_owned())]
    );
    let rows = env.query("SELECT status, count(*) FROM runs GROUP BY status ORDER BY status");
    let counts: Vec<(String, i64)> = rows
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_owned(), r[1].as_i64().unwrap()))
        .collect();
    assert_eq!(
        counts,
        [
            ("done".to_owned(), 1),
            ("interrupted".to_owned(), 1),
            ("queued".to_owned(), 1)
        ],
        "{}",
        task_output(&env, "stopped", &job.job, 0)
    );
}

/// `ddsas train --slurm` of a small darts_v2 on the digits (two whole
/// epochs, a global batch of 32 split 16 + 16) as one job of two srun
/// tasks on the test cluster's node: the ranks meet, rank 0 alone records
/// the run, and the job completes.
#[cfg(feature = "dist")]
#[test]
fn a_two_task_srun_training_completes_with_one_history() {
    let _heavy = heavy();
    let Some(env) = cluster_env() else {
        return;
    };
    let mut args = train_on_slurm(
        "2",
        &[
            "layers=3",
            "init_channels=8",
            "batch_size=32",
            "cutout=4",
            "steps_per_epoch=null",
            "epochs=2",
        ],
    );
    args.extend(["--nodes", "1"]);
    let out = on_cluster(&env, &args)
        .env("DDSAS_DIST_TIMEOUT_S", "60")
        .env("DDSAS_PARAM_CHECKSUM", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let job = said
        .split_once("submitted job ")
        .and_then(|(_, rest)| rest.split_once(':'))
        .map(|(id, _)| id.to_owned())
        .unwrap_or_else(|| panic!("no job id in {said}"));
    let run_id = env.scalar("SELECT id FROM runs");
    assert!(
        said.contains(&format!("train run {run_id} on 2 rank(s)"))
            && said.contains(&format!("ddsas runs show {run_id} --db")),
        "{said}"
    );
    let job = Submitted { job };
    let output = env.path(&format!("slurm/train-{run_id}/{}.out", job.job));
    let read_output = || std::fs::read_to_string(&output).unwrap_or_default();
    let start = Instant::now();
    while !all_ended(&job.job) {
        assert!(
            start.elapsed() < WAIT,
            "job {} did not end: {:?}\n{}",
            job.job,
            task_states(&job.job),
            read_output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let said = read_output();
    assert_eq!(
        task_states(&job.job),
        [(job.job.clone(), "COMPLETED".to_owned())],
        "{said}"
    );
    let sums: Vec<&str> = said
        .lines()
        .filter_map(|l| l.split_once(" of 2: parameter checksum ").map(|(_, s)| s))
        .collect();
    assert_eq!(sums.len(), 2, "{said}");
    assert_eq!(sums[0], sums[1], "the ranks' weights differ:\n{said}");
    assert_eq!(
        env.query("SELECT method, status, epochs_done FROM runs"),
        vec![vec![
            serde_json::json!("train"),
            serde_json::json!("done"),
            serde_json::json!(2)
        ]],
        "{said}"
    );
    assert_eq!(
        env.query("SELECT epoch FROM train_epochs ORDER BY epoch"),
        vec![vec![serde_json::json!(0)], vec![serde_json::json!(1)]],
        "{said}"
    );
    // The job is recorded with the run (no sweep), and `runs show` names
    // it with the state squeue gives it.
    assert_eq!(
        env.query("SELECT job_id, sweep, run_id, tasks FROM slurm_jobs"),
        vec![vec![
            serde_json::json!(job.job),
            serde_json::Value::Null,
            serde_json::json!(run_id),
            serde_json::json!(2)
        ]]
    );
    let show = on_cluster(&env, &["runs", "show", &run_id.to_string()])
        .output()
        .unwrap();
    assert!(show.status.success(), "{}", text(&show));
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        shown.contains(&format!("slurm job(s): {} COMPLETED", job.job)),
        "{shown}"
    );
}

/// `runs cancel` of a `train --slurm` run whose one task is held in its
/// first epoch: `runs show` names the job as running, the cancel scancels
/// it, the task stops at the step and leaves the run `interrupted`.
#[test]
fn runs_cancel_scancels_a_train_runs_job_and_leaves_it_interrupted() {
    let _heavy = heavy();
    let Some(env) = cluster_env() else {
        return;
    };
    let hold = Hold::every_run(&env.path(""), 5);
    let (var, value) = hold.env();
    let args = train_on_slurm(
        "1",
        &["layers=3", "init_channels=8", "batch_size=32", "epochs=2"],
    );
    let out = on_cluster(&env, &args).env(var, value).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let run_id = env.scalar("SELECT id FROM runs").to_string();
    assert!(
        said.contains(&format!("ddsas runs cancel {run_id} --db")),
        "{said}"
    );
    let job = recorded_job(&env, "SELECT job_id FROM slurm_jobs");
    let held = env.path("hold.held");
    wait_until("the task to reach the hold", || held.exists());
    let show = on_cluster(&env, &["runs", "show", &run_id])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        shown.contains(&format!("slurm job(s): {} RUNNING", job.job)),
        "{shown}"
    );
    let cancel = on_cluster(&env, &["runs", "cancel", &run_id])
        .output()
        .unwrap();
    assert!(cancel.status.success(), "{}", text(&cancel));
    assert!(
        text(&cancel).contains(&format!("scancel {}", job.job)),
        "{}",
        text(&cancel)
    );
    wait_until("the job to end", || all_ended(&job.job));
    assert_eq!(
        task_states(&job.job),
        [(job.job.clone(), "CANCELLED".to_owned())]
    );
    assert_eq!(
        env.query("SELECT status FROM runs"),
        vec![vec![serde_json::json!("interrupted")]]
    );
    let again = on_cluster(&env, &["runs", "cancel", &run_id])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("have ended") && text(&again).contains("nothing to cancel"),
        "{}",
        text(&again)
    );
}

/// The batch output of `train --slurm`-made job `job` in `dir` (relative
/// to the test's folder).
#[cfg(feature = "dist")]
fn job_output(env: &Env, dir: &str, job: &str) -> String {
    std::fs::read_to_string(env.path(&format!("{dir}/{job}.out"))).unwrap_or_default()
}

/// Waits until every task of `job` has ended; panics with `output()` when
/// it does not within [`WAIT`].
#[cfg(feature = "dist")]
fn wait_for_job(job: &str, output: impl Fn() -> String) {
    let start = Instant::now();
    while !all_ended(job) {
        assert!(
            start.elapsed() < WAIT,
            "job {job} did not end: {:?}\n{}",
            task_states(job),
            output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A sweep submitted to Slurm whose `evaluate:` asks for `nproc: 2`: the
/// pull worker runs the search, then hands the training of its cell to a
/// Slurm job of its own (two srun tasks on CPU, Gloo) and leaves; the job
/// trains it on two ranks, under the array's time limit and extra sbatch
/// options: the run is done, world size 2, each epoch recorded once, the
/// job recorded with the run.
#[cfg(feature = "dist")]
#[test]
fn a_sweeps_two_rank_training_runs_in_a_slurm_job_of_its_own() {
    let _heavy = heavy();
    let Some(env) = cluster_env() else {
        return;
    };
    let file = env.sweep(
        "dps",
        "base: {dataset: digits, epochs: 1, layers: 1, init_channels: 2, batch_size: 16, steps_per_epoch: 2}\n\
         evaluate: {epochs: 2, layers: 3, init_channels: 8, batch_size: 32, cutout: 4, steps_per_epoch: 6, nproc: 2}\n",
    );
    let job = submit(
        &env,
        &file,
        &[
            "--workers=1",
            "--time=30",
            "--sbatch-arg=--comment=dps-handoff",
        ],
        None,
    );
    wait_until_ended(&env, "dps", &job, 1);
    let said = task_output(&env, "dps", &job.job, 0);
    assert_eq!(
        task_states(&job.job),
        [("0".to_owned(), "COMPLETED".to_owned())],
        "{said}"
    );
    assert!(
        said.contains("1 handed to Slurm jobs of their own"),
        "{said}"
    );
    let rows = env.query("SELECT job_id, run_id, tasks FROM slurm_jobs WHERE run_id IS NOT NULL");
    assert_eq!(rows.len(), 1, "one training job: {rows:?}\n{said}");
    let run_id = rows[0][1].as_i64().unwrap();
    assert_eq!(rows[0][2], serde_json::json!(2), "{rows:?}");
    let train_job = Submitted {
        job: rows[0][0].as_str().unwrap().to_owned(),
    };
    let dir = format!("slurm/dps/train-{run_id}");
    let script = std::fs::read_to_string(env.path(&format!("{dir}/submit-1.sh"))).unwrap();
    for line in ["#SBATCH --time=30\n", "#SBATCH --comment=dps-handoff\n"] {
        assert!(script.contains(line), "the array's {line:?}:\n{script}");
    }
    wait_for_job(&train_job.job, || job_output(&env, &dir, &train_job.job));
    let output = job_output(&env, &dir, &train_job.job);
    assert_eq!(
        task_states(&train_job.job),
        [(train_job.job.clone(), "COMPLETED".to_owned())],
        "{output}"
    );
    assert_eq!(
        env.query(&format!(
            "SELECT method, status, world_size, dist_backend, attempts, epochs_done FROM runs WHERE id = {run_id}"
        )),
        vec![vec![
            serde_json::json!("train"),
            serde_json::json!("done"),
            serde_json::json!(2),
            serde_json::json!("gloo"),
            serde_json::json!(1),
            serde_json::json!(2)
        ]],
        "{said}\n{output}"
    );
    assert_eq!(
        env.query("SELECT epoch, count(*) FROM train_epochs GROUP BY epoch ORDER BY epoch"),
        vec![
            vec![serde_json::json!(0), serde_json::json!(1)],
            vec![serde_json::json!(1), serde_json::json!(1)]
        ],
        "each epoch recorded once"
    );
}

/// Slurm's time-limit warning to a two-task `train --slurm` job whose
/// ranks are held in the second epoch (what the batch step gets
/// `--signal-before` seconds before the limit): every rank stops at the
/// step, rank 0 checkpoints it, says so once and requeues the job; the
/// requeued job resumes there and finishes with each epoch recorded once.
#[cfg(feature = "dist")]
#[test]
fn a_train_job_warned_of_its_time_limit_requeues_and_finishes_once() {
    let _heavy = heavy();
    let Some(env) = cluster_env() else {
        return;
    };
    // 6 steps an epoch: global step 8 is in the second epoch.
    let hold = Hold::every_run(&env.path(""), 8);
    let (var, value) = hold.env();
    let args = train_on_slurm(
        "2",
        &[
            "layers=3",
            "init_channels=8",
            "batch_size=32",
            "cutout=4",
            "steps_per_epoch=6",
            "epochs=3",
        ],
    );
    let out = on_cluster(&env, &args)
        .env(var, value)
        .env("DDSAS_DIST_TIMEOUT_S", "60")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let run_id = env.scalar("SELECT id FROM runs");
    let job = recorded_job(&env, "SELECT job_id FROM slurm_jobs");
    let dir = format!("slurm/train-{run_id}");
    let held = env.path("hold.held");
    wait_until("a rank to reach the hold", || held.exists());
    slurm("scancel", &["--signal=USR2", "--batch", &job.job]);
    wait_until("the warned run to stop and the job to requeue", || {
        env.try_query("SELECT status, attempts, owner FROM runs")
            .is_ok_and(|rows| {
                rows[0][0] == "interrupted"
                    || rows[0][1].as_i64() > Some(1)
                    || rows[0][2].as_str().is_some_and(|o| o.starts_with("slurm:"))
            })
    });
    hold.release();
    let output = || job_output(&env, &dir, &job.job);
    let start = Instant::now();
    while env.scalar("SELECT epochs_done FROM runs") < 3 || !all_ended(&job.job) {
        assert!(
            start.elapsed() < WAIT,
            "job {} did not finish: {:?}\n{}",
            job.job,
            task_states(&job.job),
            output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let said = output();
    assert_eq!(
        task_states(&job.job),
        [(job.job.clone(), "COMPLETED".to_owned())],
        "{said}"
    );
    for part in [
        "checkpointed there",
        &format!("requeueing Slurm job {}", job.job),
    ] {
        assert!(said.contains(part), "no {part:?} in\n{said}");
    }
    // srun gave both ranks the signal; rank 0 alone said so.
    assert_eq!(said.matches("SIGUSR2 (Slurm").count(), 1, "{said}");
    env.assert_two_rank_training_resumed_once(&said);
    assert_eq!(
        env.scalar("SELECT count(*) FROM slurm_jobs"),
        1,
        "the requeue is the same job"
    );
}

/// A sweep's two-rank training whose Slurm job is cancelled while its
/// ranks are held in the second epoch: the ranks stop at the step, rank 0
/// checkpoints it and leaves the run `interrupted`; `sweep submit` again
/// starts a pull worker that hands the run to a new job, which resumes at
/// that step: the run ends done on its second attempt with each epoch
/// recorded once, both jobs recorded with it.
#[cfg(feature = "dist")]
#[test]
fn a_cancelled_training_job_is_handed_on_and_resumes_at_its_step() {
    let _heavy = heavy();
    let Some(env) = cluster_env() else {
        return;
    };
    let file = env.sweep(
        "dpc",
        "base: {dataset: digits, epochs: 1, layers: 1, init_channels: 2, batch_size: 16, steps_per_epoch: 2}\n\
         evaluate: {epochs: 3, layers: 3, init_channels: 8, batch_size: 32, cutout: 4, steps_per_epoch: 6, nproc: 2}\n",
    );
    // The search (2 steps) never gets to global step 8, the training's
    // third step of its second epoch.
    let hold = env.hold(8);
    let first = submit(&env, &file, &["--workers=1"], Some(&hold));
    let held = env.path("hold.held");
    wait_until("the training's ranks to reach the hold", || held.exists());
    let train_job = |n: usize| -> String {
        let rows = env.query(
            "SELECT job_id FROM slurm_jobs WHERE run_id IS NOT NULL ORDER BY submitted_at, job_id",
        );
        rows.get(n)
            .and_then(|r| r[0].as_str())
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let cancelled = Submitted { job: train_job(0) };
    slurm("scancel", &[&cancelled.job]);
    wait_until("the cancelled job to end", || all_ended(&cancelled.job));
    assert_eq!(
        env.query("SELECT status, epochs_done FROM runs WHERE method = 'train'"),
        vec![vec![serde_json::json!("interrupted"), serde_json::json!(1)]]
    );
    hold.release();
    wait_until_ended(&env, "dpc", &first, 1);
    let again = on_cluster(
        &env,
        &[
            "sweep",
            "submit",
            file.to_str().unwrap(),
            "--slurm",
            "--cpus-per-task=1",
            "--threads=1",
            "--workers=1",
        ],
    )
    .output()
    .unwrap();
    assert!(again.status.success(), "{}", text(&again));
    let _second_array = recorded_job(&env, "SELECT job_id FROM slurm_jobs WHERE sweep IS NOT NULL ORDER BY submitted_at DESC, job_id DESC");
    wait_until("a second training job", || !train_job(1).is_empty());
    let resumed = Submitted { job: train_job(1) };
    let run_id = env.scalar("SELECT id FROM runs WHERE method = 'train'");
    let dir = format!("slurm/dpc/train-{run_id}");
    wait_for_job(&resumed.job, || job_output(&env, &dir, &resumed.job));
    let said = job_output(&env, &dir, &resumed.job);
    assert!(said.contains("resuming at step"), "{said}");
    env.assert_two_rank_training_resumed_once(&said);
}

/// `runs cancel` (or `sweep cancel`) of a sweep's training whose job of
/// its own has not started (it waits for the CPUs the pull task holds while
/// that task's second search is held): the job is cancelled and the run,
/// held for it, is put back to `interrupted` at once, for the next pull
/// worker or `train --resume` to take.
#[cfg(feature = "dist")]
#[test]
fn runs_cancel_of_a_pending_training_job_leaves_its_run_interrupted() {
    pending_training_cancelled(|env, run_id| {
        let out = on_cluster(env, &["runs", "cancel", &run_id.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    });
}

/// [`runs_cancel_of_a_pending_training_job_leaves_its_run_interrupted`]
/// by `sweep cancel`, which scancels the array and the trainings' jobs.
#[cfg(feature = "dist")]
#[test]
fn sweep_cancel_of_a_pending_training_job_leaves_its_run_interrupted() {
    pending_training_cancelled(|env, _| {
        let out = on_cluster(env, &["sweep", "cancel", "dpp"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    });
}

/// A plain `scancel` of that pending job: nothing in ddsas hears of it,
/// so `runs show` says the run is held for a job that ended and how to
/// free it, and `runs cancel` then frees it (no pull worker needed).
#[cfg(feature = "dist")]
#[test]
fn a_plain_scancel_of_a_pending_training_job_is_shown_and_freed_by_runs_cancel() {
    pending_training_cancelled(|env, run_id| {
        let job = env.query("SELECT job_id FROM slurm_jobs WHERE run_id IS NOT NULL")[0][0]
            .as_str()
            .map(str::to_owned)
            .unwrap();
        slurm("scancel", &[&job]);
        wait_until("the scancelled job to end", || all_ended(&job));
        let id = run_id.to_string();
        let show = on_cluster(env, &["runs", "show", &id]).output().unwrap();
        assert!(show.status.success(), "{}", text(&show));
        assert!(
            text(&show).contains(&format!(
                "held for Slurm job {job}, which ended before it started: `ddsas runs cancel {id}`"
            )),
            "{}",
            text(&show)
        );
        let out = on_cluster(env, &["runs", "cancel", &id]).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    });
}

/// A sweep whose handed-off training waits in the queue, cancelled by
/// `cancel` (given the train run's id; returns what it said).
#[cfg(feature = "dist")]
fn pending_training_cancelled(cancel: impl Fn(&Env, i64) -> String) {
    let _heavy = heavy();
    let Some(env) = cluster_env() else {
        return;
    };
    let file = env.sweep(
        "dpp",
        "base: {dataset: digits, epochs: 1, layers: 1, init_channels: 2, batch_size: 16, steps_per_epoch: 2}\n\
         grid: {seed: [0, 1]}\n\
         evaluate: {epochs: 2, layers: 3, init_channels: 8, batch_size: 32, cutout: 4, steps_per_epoch: 6, nproc: 2}\n",
    );
    // The second search waits before its second step: the pull task keeps
    // one of the node's two CPUs, and the training's two ranks wait.
    let hold = env.hold_seeds(1, &[1]);
    let _array = submit(&env, &file, &["--workers=1"], Some(&hold));
    wait_until("the training handed to a job", || {
        env.try_query("SELECT count(*) FROM runs WHERE method = 'train' AND owner LIKE 'slurm:%'")
            .is_ok_and(|rows| rows[0][0].as_i64() == Some(1))
    });
    let job = recorded_job(
        &env,
        "SELECT job_id FROM slurm_jobs WHERE run_id IS NOT NULL",
    );
    assert_eq!(
        task_states(&job.job),
        [(job.job.clone(), "PENDING".to_owned())]
    );
    let said = cancel(
        &env,
        env.scalar("SELECT id FROM runs WHERE method = 'train'"),
    );
    assert!(
        said.contains("had not started; the run is `interrupted` now"),
        "{said}"
    );
    assert_eq!(
        env.query("SELECT status, owner, error FROM runs WHERE method = 'train'"),
        vec![vec![
            serde_json::json!("interrupted"),
            serde_json::json!(format!("slurm:{}", job.job)),
            serde_json::json!("its Slurm job was cancelled, or ended, before it started")
        ]]
    );
    wait_until("the cancelled job to end", || all_ended(&job.job));
}
