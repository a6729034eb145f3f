//! End-to-end tests of `ddsas train --nproc 2` (the `dist` build): two rank
//! processes on loopback (Gloo) train one run data-parallel; rank 0 alone
//! records it.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::util::{scalar, sqlite, text, tmp, Hold, BIN};

/// A small darts_v2 on the digits: two whole epochs (44 steps each), a global
/// batch of 32 split 16 + 16.
const SMALL: &[&str] = &[
    "layers=3",
    "init_channels=8",
    "batch_size=32",
    "cutout=4",
    "steps_per_epoch=null",
    "epochs=2",
];

fn train(db: &Path, env: &[(&str, &str)], extra: &[&str]) -> Output {
    command(db, env, extra).output().expect("ddsas runs")
}

/// The command of [`train`], not started.
fn command(db: &Path, env: &[(&str, &str)], extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["train", "--quiet", "--threads", "2", "--nproc", "2"])
        .args(["--genotype", "darts_v2", "--db"])
        .arg(db)
        .env("DDSAS_PARAM_CHECKSUM", "1")
        .env("DDSAS_DIST_TIMEOUT_S", "30");
    for s in SMALL {
        cmd.args(["--set", s]);
    }
    cmd.envs(env.iter().copied()).args(extra);
    cmd
}

/// The parameter checksums the ranks printed, by rank.
fn checksums(out: &Output) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut lines: Vec<(String, String)> = stderr
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("rank ")?;
            let (rank, sum) = rest.split_once(" of 2: parameter checksum ")?;
            Some((rank.to_owned(), sum.to_owned()))
        })
        .collect();
    lines.sort();
    lines.into_iter().map(|(_, sum)| sum).collect()
}

#[test]
fn two_ranks_train_darts_v2_with_identical_weights_and_one_history() {
    let (_dir, db) = tmp();
    let out = train(&db, &[], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let sums = checksums(&out);
    assert_eq!(sums.len(), 2, "{}", text(&out));
    assert_eq!(
        sums[0],
        sums[1],
        "the ranks' weights differ: {}",
        text(&out)
    );
    assert_eq!(
        sqlite(&db, "SELECT method, status, epochs_done FROM runs"),
        vec![vec!["train", "done", "2"]]
    );
    // Rank 0 recorded the world and the backend `auto` picks on CPU.
    assert_eq!(
        sqlite(&db, "SELECT world_size, dist_backend FROM runs"),
        vec![vec!["2", "gloo"]]
    );
    let show = Command::new(BIN)
        .args(["runs", "show", "1", "--db"])
        .arg(&db)
        .output()
        .expect("ddsas runs");
    let shown = text(&show);
    assert!(
        shown
            .lines()
            .any(|l| l.contains("ranks") && l.contains("2 (gloo)")),
        "{shown}"
    );
    assert_eq!(
        sqlite(&db, "SELECT epoch FROM train_epochs ORDER BY epoch"),
        vec![vec!["0"], vec!["1"]]
    );
    let acc: f64 = scalar(&db, "SELECT test_acc FROM train_epochs WHERE epoch = 1")
        .parse()
        .unwrap();
    assert!(
        acc > 0.4,
        "test accuracy {acc} after 2 epochs is near chance (0.1)"
    );
}

#[test]
fn a_rank_that_dies_ends_the_run_interrupted_and_a_resume_finishes_it() {
    let (_dir, db) = tmp();
    let out = train(&db, &[("DDSAS_DIST_DIE_AT", "1 20")], &[]);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("rank 1") && all.contains("stopped answering"),
        "{all}"
    );
    assert_eq!(scalar(&db, "SELECT status FROM runs"), "interrupted");
    let again = train(&db, &[], &["--resume"]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(
        sqlite(&db, "SELECT status, epochs_done FROM runs"),
        vec![vec!["done", "2"]]
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(DISTINCT epoch) FROM train_epochs"),
        "2"
    );
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM train_epochs"), "2");
}

/// Rank 1 stays alive but never joins the collective of step 20: rank 0's
/// collective ends at the group's timeout with the line saying no peer
/// died, the launcher kills the hung rank a few seconds later, and the run
/// is `interrupted`; a resume finishes it. The bound is timed from the
/// line rank 1 prints when it starts to hang, so a slow start on a loaded
/// machine does not count.
#[test]
fn a_rank_that_hangs_ends_every_rank_within_the_timeout_and_a_resume_finishes_it() {
    const TIMEOUT_S: u64 = 15;
    let (_dir, db) = tmp();
    let timeout = TIMEOUT_S.to_string();
    let (out, since_hang) = train_timed_from(
        command(
            &db,
            &[
                ("DDSAS_DIST_HANG_AT", "1 20"),
                ("DDSAS_DIST_TIMEOUT_S", timeout.as_str()),
            ],
            &[],
        ),
        "hanging before step 20",
    );
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("no peer died (one may be hung or slower than the timeout)"),
        "{all}"
    );
    assert!(all.contains("rank 1 ended with signal: 9"), "{all}");
    let since_hang = since_hang.unwrap_or_else(|| panic!("rank 1 never hung: {all}"));
    // The timeout, the launcher's grace after rank 0 ended (10 s), and
    // time for the processes to end on a busy machine.
    let bound = Duration::from_secs(TIMEOUT_S + 10 + 15);
    assert!(since_hang < bound, "{since_hang:?}: {all}");
    assert_eq!(scalar(&db, "SELECT status FROM runs"), "interrupted");
    let again = train(&db, &[], &["--resume"]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(
        sqlite(&db, "SELECT status, epochs_done FROM runs"),
        vec![vec!["done", "2"]]
    );
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM train_epochs"), "2");
}

/// Runs `cmd` to its end and says how long it went on after a line of its
/// stderr first contained `mark` (`None` if none did).
fn train_timed_from(mut cmd: Command, mark: &str) -> (Output, Option<Duration>) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ddsas starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mark = mark.to_owned();
    let reader = std::thread::spawn(move || {
        let mut seen = None;
        let mut text = Vec::new();
        for line in BufReader::new(stderr).split(b'\n').map_while(Result::ok) {
            if seen.is_none() && String::from_utf8_lossy(&line).contains(&mark) {
                seen = Some(Instant::now());
            }
            text.extend_from_slice(&line);
            text.push(b'\n');
        }
        (seen, text)
    });
    let mut out = child.wait_with_output().expect("ddsas runs");
    let ended = Instant::now();
    let (seen, text) = reader.join().expect("the stderr reader ends");
    out.stderr = text;
    (out, seen.map(|at| ended - at))
}

/// Slurm's warning (SIGUSR2) to the launcher while both ranks are held
/// before step 20 of the second epoch: every rank stops there, rank 0
/// checkpoints it, the run is `interrupted`; the resume goes on from that
/// step and ends with the weights of an uninterrupted run, bit for bit.
#[test]
fn sigusr2_to_the_launcher_checkpoints_every_rank_at_the_step_and_a_resume_goes_on() {
    let (dir, db) = tmp();
    // 44 steps per epoch: global step 64 is step 20 (from 1) of epoch 2.
    let hold = Hold::every_run(dir.path(), 64);
    let (key, value) = hold.env();
    let child = command(&db, &[(key, value.as_str())], &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ddsas starts");
    let held = dir.path().join("hold.held");
    let start = Instant::now();
    while !held.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no rank reached the hold"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: the launcher is our child, not yet reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGUSR2) };
    let out = child.wait_with_output().expect("ddsas ends");
    hold.release();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(130), "{all}");
    // Both ranks got it; rank 0 alone says so.
    assert_eq!(all.matches("SIGUSR2 (Slurm").count(), 1, "{all}");
    assert!(
        all.contains("every rank stops at the next step, rank 0 checkpoints there"),
        "{all}"
    );
    assert!(
        all.contains("interrupted at step 19 of epoch 2, checkpointed there"),
        "{all}"
    );
    assert_eq!(scalar(&db, "SELECT status FROM runs"), "interrupted");
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM train_epochs"), "1");
    let resumed = train(&db, &[], &["--resume"]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert_eq!(
        sqlite(&db, "SELECT status, epochs_done FROM runs"),
        vec![vec!["done", "2"]]
    );
    let (_other, fresh_db) = tmp();
    let fresh = train(&fresh_db, &[], &[]);
    assert!(fresh.status.success(), "{}", text(&fresh));
    let sums = checksums(&resumed);
    assert_eq!(sums.len(), 2, "{}", text(&resumed));
    assert_eq!(sums[0], sums[1], "{}", text(&resumed));
    assert_eq!(sums, checksums(&fresh), "the resumed run's weights differ");
}

/// A sweep whose `evaluate:` asks for `nproc: 2`: `sweep run` on two CPU
/// worker slots runs the search, then starts the training of its cell as
/// one worker launching two ranks on both slots; rank 0 records one train
/// run, done, with world size 2 (Gloo) and each epoch once.
#[test]
fn a_sweep_trains_a_searched_cell_in_two_ranks() {
    use super::sweep::{heavy, wait_child, Env};
    let _heavy = heavy();
    let env = Env::new();
    let file = env.sweep(
        "dp",
        "base: {dataset: digits, epochs: 1, layers: 1, init_channels: 2, batch_size: 16, steps_per_epoch: 2}\n\
         evaluate: {epochs: 2, layers: 3, init_channels: 8, batch_size: 32, cutout: 4, steps_per_epoch: 6, nproc: 2}\n",
    );
    let mut child = env.start_sweep(&file, 2, "dp", &[]);
    let status = wait_child(&mut child, "the sweep");
    let said = env.output_of("dp");
    assert!(status.success(), "{said}");
    assert!(said.contains("started on 2 ranks on cpu"), "{said}");
    let train = env.query(
        "SELECT id, status, world_size, dist_backend, attempts, epochs_done FROM runs WHERE method = 'train'",
    );
    assert_eq!(train.len(), 1, "one train run: {train:?}");
    let row: Vec<String> = train[0]
        .iter()
        .map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    assert_eq!(row[1..], ["done", "2", "gloo", "1", "2"], "{said}");
    assert_eq!(
        env.query(&format!(
            "SELECT epoch, count(*) FROM train_epochs WHERE run_id = {} GROUP BY epoch ORDER BY epoch",
            row[0]
        )),
        vec![
            vec![serde_json::json!(0), serde_json::json!(1)],
            vec![serde_json::json!(1), serde_json::json!(1)]
        ],
        "each epoch recorded once"
    );
}

/// An entry's `dist_backend:` reaches the ranks of its trainings although
/// the stored config leaves it out: `nccl` on CPU workers is refused by the
/// worker with the backend's line (under `auto` the ranks would take Gloo
/// and train), and the train run keeps the identity of one without it.
#[test]
fn an_entrys_dist_backend_reaches_the_ranks_of_its_training() {
    use super::sweep::{heavy, wait_child, Env};
    let _heavy = heavy();
    let env = Env::new();
    let file = env.sweep(
        "dpb",
        "base: {dataset: digits, epochs: 1, layers: 1, init_channels: 2, batch_size: 16, steps_per_epoch: 2}\n\
         evaluate: {epochs: 1, layers: 3, init_channels: 8, batch_size: 32, cutout: 4, steps_per_epoch: 2, nproc: 2, dist_backend: nccl}\n",
    );
    let mut child = env.start_sweep(&file, 2, "dpb", &["--max-retries", "0"]);
    let status = wait_child(&mut child, "the sweep");
    let said = env.output_of("dpb");
    assert!(!status.success(), "{said}");
    assert!(said.contains("nccl needs CUDA devices"), "{said}");
    let config = env.query("SELECT status, config_json FROM runs WHERE method = 'train'");
    assert_eq!(config.len(), 1, "one train run: {config:?}");
    assert_eq!(config[0][0], serde_json::json!("failed"), "{said}");
    assert!(
        !config[0][1].as_str().unwrap().contains("dist_backend"),
        "the stored config keeps its identity: {config:?}"
    );
}

/// The worker of a two-rank training killed with SIGKILL while both ranks
/// are held in its second epoch: no rank outlives it, the orchestrator
/// retries the run from its checkpoint as two ranks again, and the run
/// ends done with each epoch recorded once.
#[test]
fn a_killed_worker_of_two_ranks_takes_its_ranks_along_and_its_run_resumes() {
    use super::sweep::{alive, heavy, kill, wait_child, Env};
    let _heavy = heavy();
    let env = Env::new();
    let file = env.sweep(
        "dpk",
        "base: {dataset: digits, epochs: 1, layers: 1, init_channels: 2, batch_size: 16, steps_per_epoch: 2}\n\
         evaluate: {epochs: 3, layers: 3, init_channels: 8, batch_size: 32, cutout: 4, steps_per_epoch: 30, nproc: 2}\n",
    );
    // Global step 45 is step 15 of the training's second epoch; the search
    // (2 steps) never gets there.
    let hold = env.hold(45);
    let mut child = env.start_held_sweep(&file, 2, "dpk", &[], Some(&hold));
    let held = env.path("hold.held");
    poll("a rank held in the second epoch", || held.exists());
    let launcher = env.scalar("SELECT pid FROM runs WHERE method = 'train'");
    let ranks = ranks_of(launcher);
    assert_eq!(ranks.len(), 2, "the worker's ranks: {ranks:?}");
    kill(launcher, libc::SIGKILL);
    poll("the killed worker's ranks to end", || {
        !ranks.iter().any(|&r| alive(r))
    });
    hold.release();
    let status = wait_child(&mut child, "the sweep");
    let said = env.output_of("dpk");
    assert!(status.success(), "{said}");
    assert!(said.contains("killed by signal 9"), "{said}");
    env.assert_two_rank_training_resumed_once(&said);
}

/// Polls `cond` every 50 ms until it holds; panics after five minutes.
fn poll(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The child processes of `pid` (from /proc).
fn ranks_of(pid: i64) -> Vec<i64> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i64>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|ppid| ppid.parse::<i64>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// `sweep run` refuses, before it touches the database, a sweep whose
/// `evaluate:` asks for more ranks than it has slots, naming the entry and
/// the flag that gives it the slots.
#[test]
fn a_sweep_with_more_ranks_than_slots_is_refused_before_anything_is_registered() {
    use super::sweep::Env;
    let env = Env::new();
    let file = env.sweep(
        "dpr",
        "base: {dataset: digits, epochs: 1, layers: 1, init_channels: 2, batch_size: 16, steps_per_epoch: 2}\n\
         evaluate: [{epochs: 1}, {epochs: 2, nproc: 3}]\n",
    );
    let out = env.run(&[
        "sweep",
        "run",
        file.to_str().unwrap(),
        "--gpus",
        "none",
        "--cpu-workers",
        "2",
        "--threads",
        "1",
        "--plain",
    ]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("entry 2 of `evaluate` asks for nproc: 3")
            && said.contains("this sweep has 2 such slot(s)")
            && said.contains("--cpu-workers 3"),
        "{said}"
    );
    assert!(!env.db().exists(), "nothing registered: {said}");
}
