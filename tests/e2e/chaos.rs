//! The chaos test: a sweep of small digits runs goes on while a
//! seeded injector, at random moments, kills workers with SIGKILL, stops
//! them with SIGSTOP (never continued), terminates them with SIGTERM, and
//! kills the orchestrator with SIGKILL (starting a new one each time),
//! until every run is done. Then nothing may be lost: every run done once,
//! every epoch recorded once, the attempts counted, and every run's
//! per-epoch records equal to those of an undisturbed sweep of the same
//! file (CPU determinism).
//!
//! The test command runs a short form. `scripts/chaos.sh` runs a long one
//! through the same test, sized by environment variables:
//! `DDSAS_CHAOS_FAULTS` (faults to inject, default 8), `DDSAS_CHAOS_RUNS`
//! (runs in the sweep, default 6), `DDSAS_CHAOS_SEED` (default 14).

use std::collections::{BTreeMap, HashSet};
use std::process::Child;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::sweep::{alive, heavy, kill, wait_child, Env};

/// One run: 5 epochs of a tiny network, about 2 s undisturbed.
const RUN: &str =
    "{dataset: digits, epochs: 5, layers: 2, init_channels: 4, batch_size: 16, steps_per_epoch: 3}";

/// What every epoch measures that must not depend on timing or faults.
const EPOCH_NUMBERS: &str =
    "SELECT r.fingerprint, e.epoch, e.train_acc, e.train_loss, e.valid_acc, \
     e.valid_loss, e.lr, e.genotype, e.skip_normal, e.skip_reduce, e.cosine_distance \
     FROM epochs e JOIN runs r ON r.id = e.run_id ORDER BY r.fingerprint, e.epoch";

/// The size of a chaos session.
struct Plan {
    faults: usize,
    runs: usize,
    seed: u64,
}

impl Plan {
    fn from_env() -> Plan {
        let var = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Plan {
            faults: var("DDSAS_CHAOS_FAULTS", 8) as usize,
            runs: var("DDSAS_CHAOS_RUNS", 6).max(6) as usize,
            seed: var("DDSAS_CHAOS_SEED", 14),
        }
    }

    fn sweep(&self) -> String {
        let seeds: Vec<String> = (0..self.runs).map(|s| s.to_string()).collect();
        format!("base: {RUN}\nseeds: [{}]\n", seeds.join(", "))
    }
}

/// The faults the injector knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Fault {
    KillWorker,
    StopWorker,
    TermWorker,
    KillOrchestrator,
}

/// The first faults of every session, one of each kind.
const FIRST: [Fault; 4] = [
    Fault::KillWorker,
    Fault::StopWorker,
    Fault::KillOrchestrator,
    Fault::TermWorker,
];

impl Fault {
    fn pick(rng: &mut ChaCha8Rng) -> Fault {
        match rng.gen_range(0..10) {
            0..=2 => Fault::KillWorker,
            3..=5 => Fault::StopWorker,
            6..=7 => Fault::TermWorker,
            _ => Fault::KillOrchestrator,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Fault::KillWorker => "SIGKILL to a worker",
            Fault::StopWorker => "SIGSTOP to a worker (never continued)",
            Fault::TermWorker => "SIGTERM to a worker",
            Fault::KillOrchestrator => "SIGKILL to the orchestrator (restarted)",
        }
    }
}

/// `sweep run` as the chaos session runs it: two CPU workers, heartbeats
/// every 0.5 s, a short staleness limit, retries without end.
fn start(env: &Env, file: &std::path::Path, tag: &str) -> Child {
    env.start_sweep(
        file,
        2,
        tag,
        &[
            // Short, to keep stopped workers from holding up the session,
            // yet well above a worker's start-up on a slow machine.
            "--stale-after",
            "4",
            "--stall-after",
            "60",
            "--max-retries",
            "100000",
        ],
    )
}

/// (run id, worker pid) of the runs whose worker is alive, not yet hit by
/// us and not the orchestrator.
fn live_workers(env: &Env, orchestrator: u32, hit: &HashSet<i64>) -> Vec<(i64, i64)> {
    if !env.is_postgres() && !env.db().exists() {
        return Vec::new();
    }
    env.try_query(&format!(
        "SELECT id, pid FROM runs WHERE status = 'running' AND pid IS NOT NULL AND pid <> {orchestrator} ORDER BY id"
    ))
    .unwrap_or_default()
    .into_iter()
    .filter_map(|r| Some((r[0].as_i64()?, r[1].as_i64()?)))
    .filter(|(_, pid)| !hit.contains(pid) && alive(*pid))
    .collect()
}

fn all_done(env: &Env, runs: usize) -> bool {
    env.try_query("SELECT count(*) FROM runs WHERE status = 'done'")
        .ok()
        .and_then(|rows| rows[0][0].as_i64())
        == Some(runs as i64)
}

#[test]
fn chaos_loses_no_run_and_no_epoch() {
    chaos(Env::new);
}

/// The same on PostgreSQL: a frozen worker may hold a row lock there, which
/// the server must take back (`idle_in_transaction_session_timeout`).
#[test]
fn chaos_loses_no_run_and_no_epoch_on_postgres() {
    if ddsas::store::test_postgres::server_or_skip().is_some() {
        chaos(|| Env::postgres().expect("a server was there a moment ago"));
    }
}

/// A chaos session on databases made by `backend`.
fn chaos(backend: fn() -> Env) {
    let _heavy = heavy();
    let plan = Plan::from_env();
    let started = Instant::now();
    let budget = Duration::from_secs(120 + 6 * plan.faults as u64 + 3 * plan.runs as u64);

    // The undisturbed sweep: what every run must end up recording.
    let calm = backend();
    let calm_file = calm.sweep("chaos", &plan.sweep());
    let mut child = start(&calm, &calm_file, "calm");
    let status = wait_child(&mut child, "the undisturbed sweep");
    assert!(status.success(), "{}", calm.output_of("calm"));

    let env = backend();
    let file = env.sweep("chaos", &plan.sweep());
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
    let mut orch = start(&env, &file, "orch-0");
    let mut orchestrators = 1;
    let mut injected: BTreeMap<Fault, usize> = BTreeMap::new();
    let mut struck = 0;
    let mut stopped: HashSet<i64> = HashSet::new();
    // Each worker process is hit once: a second signal to a worker already
    // on its way out would not cost its run another attempt.
    let mut hit_pids: HashSet<i64> = HashSet::new();
    let mut log = Vec::new();
    loop {
        assert!(
            started.elapsed() < budget,
            "chaos session over its time budget; faults so far: {log:?}\n{}",
            env.output_of(&format!("orch-{}", orchestrators - 1))
        );
        if let Some(status) = orch.try_wait().unwrap() {
            if all_done(&env, plan.runs) {
                break;
            }
            // An orchestrator that gave up (e.g. on a lock a frozen
            // worker held) is started again, as a user would.
            log.push(format!(
                "orchestrator ended with {status} before the end; restarted"
            ));
            orch = start(&env, &file, &format!("orch-{orchestrators}"));
            orchestrators += 1;
            continue;
        }
        let done_injecting = injected.values().sum::<usize>() >= plan.faults;
        let pause = if done_injecting {
            100
        } else {
            rng.gen_range(200..1200)
        };
        std::thread::sleep(Duration::from_millis(pause));
        if done_injecting {
            continue;
        }
        // Each kind once first, so that even the short form meets them all.
        let fault = match injected.values().sum::<usize>() {
            n if n < FIRST.len() => FIRST[n],
            _ => Fault::pick(&mut rng),
        };
        if fault == Fault::KillOrchestrator {
            kill(i64::from(orch.id()), libc::SIGKILL);
            let _ = orch.wait();
            orch = start(&env, &file, &format!("orch-{orchestrators}"));
            orchestrators += 1;
        } else {
            let workers = live_workers(&env, orch.id(), &hit_pids);
            if workers.is_empty() {
                continue;
            }
            let (run, pid) = workers[rng.gen_range(0..workers.len())];
            let signal = match fault {
                Fault::KillWorker => libc::SIGKILL,
                Fault::StopWorker => libc::SIGSTOP,
                _ => libc::SIGTERM,
            };
            kill(pid, signal);
            hit_pids.insert(pid);
            if fault == Fault::StopWorker {
                stopped.insert(pid);
            }
            struck += 1;
            log.push(format!("{}: run {run} (pid {pid})", fault.words()));
        }
        *injected.entry(fault).or_default() += 1;
    }

    // Nothing lost, nothing done twice.
    env.assert_all_done_once(plan.runs as i64);
    let attempts = env.query("SELECT id, attempts FROM runs ORDER BY id");
    let mut total_attempts = 0;
    for row in &attempts {
        let (id, n) = (row[0].as_i64().unwrap(), row[1].as_i64().unwrap());
        total_attempts += n;
        // Every worker started for a run is one attempt, counted once: one
        // log per attempt number, none missing, none reused.
        let logs = std::fs::read_dir(env.path("logs"))
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                let name = name.to_string_lossy();
                name.starts_with(&format!("run-{id}-attempt-")) && name.ends_with(".log")
            })
            .count() as i64;
        assert_eq!(n, logs, "run {id}: attempts vs worker logs");
    }
    // A fault can strike a worker that has just finished its run, so a run
    // struck k times has at least 1 and usually k + 1 attempts; in all,
    // some run must have needed another.
    assert!(
        struck == 0 || total_attempts > plan.runs as i64,
        "{struck} faults struck workers and no run needed a second attempt"
    );
    assert_eq!(
        env.query(EPOCH_NUMBERS),
        calm.query(EPOCH_NUMBERS),
        "the disturbed sweep recorded other numbers than the undisturbed one"
    );
    for pid in &stopped {
        assert!(!alive(*pid), "stopped worker {pid} was never ended");
    }
    let epochs = env.query("SELECT count(*) FROM epochs")[0][0]
        .as_i64()
        .unwrap();
    let total: usize = injected.values().sum();
    let kinds: Vec<String> = injected
        .iter()
        .map(|(f, n)| format!("{n} x {}", f.words()))
        .collect();
    println!(
        "chaos (seed {}, {}): {total} faults injected ({}); survived: {}/{} runs done exactly once, {epochs} epochs each recorded once and equal to an undisturbed sweep's, {total_attempts} attempts in all, {orchestrators} orchestrators, 0 lost, in {:.0} s",
        plan.seed,
        if env.is_postgres() { "PostgreSQL" } else { "SQLite" },
        kinds.join(", "),
        plan.runs,
        plan.runs,
        started.elapsed().as_secs_f64()
    );
}
