//! The sweep worker (docs/design.md §6): one process per claimed run, started by
//! the orchestrator as `ddsas worker ...` (the same binary), so that a crash,
//! a CUDA error or a `kill -9` of one run never takes the sweep down.
//!
//! The worker trusts nothing it is told except the run id: it rebuilds the
//! resolved config from the run's `config_json`, checks that it still
//! resolves to the run's fingerprint, and checks that its orchestrator
//! (`--owner`) still holds the claim before it touches the run. It then
//! runs [`execute`] resuming from the run's checkpoint, heartbeats in the
//! background (an epoch may be longer than the staleness limit), stops at a
//! safe point on SIGINT/SIGTERM or when its orchestrator dies, and reports
//! how the run ended through its exit status (the `EXIT_*` constants).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{default_checkpoint_dir, execute, Display, ExecError, Job, RunEnd};
use crate::config::train::ResolvedTrain;
use crate::config::SearchConfig;
use crate::nas::run::interrupted_text;
use crate::store::{unix_now, DbLocation, RunKind, Store};

// The exit statuses live beside the orchestrator that reads them, which
// builds without the engine; the worker that sets them names them here.
pub use super::{EXIT_CLAIM_LOST, EXIT_DONE, EXIT_INTERRUPTED, EXIT_NO_SPACE, EXIT_SEARCH_FAILED};

/// What the orchestrator tells a worker.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The run-history database.
    pub db: DbLocation,
    /// The claimed run.
    pub run_id: i64,
    /// Which attempt at the run this worker is (see `Store::confirm_claim`).
    pub attempt: i64,
    /// Device to train on (`cuda:0` under `CUDA_VISIBLE_DEVICES`).
    pub device: tch::Device,
    /// The claim's owner, checked before the run is touched.
    pub owner: String,
    /// The process the orchestrator started for the run, recorded with the
    /// claim: this one, or the launcher of a data-parallel training's
    /// ranks (whose process group holds them all).
    pub pid: u32,
    /// Seconds between background heartbeats.
    pub heartbeat_s: f64,
    /// Print nothing per epoch.
    pub quiet: bool,
}

/// Runs the claimed run to its end; returns the exit status to use. Errors
/// (database, a run that does not exist) are for the caller to print; the
/// orchestrator treats them as retryable.
pub fn run_worker(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    opts: &WorkerOptions,
) -> Result<u8, ExecError> {
    run_claimed(rt, store, opts, None)
}

/// How rank 0 of a data-parallel training meets its other ranks, between
/// its claim and its training: `go` false tells them there is nothing to
/// train (the claim is lost, the stored config no longer resolves), and
/// they exit. An error is why the group could not be joined.
pub type JoinRanks<'a> = &'a mut dyn FnMut(bool) -> Result<(), String>;

/// [`run_worker`] for rank 0 of a training that runs in several processes
/// (an `evaluate:` entry with `nproc`): the claim and the records are rank
/// 0's; it joins the other ranks through `join` once it knows whether there
/// is a run to train, and records the group's size and backend.
pub fn run_rank_zero(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    opts: &WorkerOptions,
    join: JoinRanks<'_>,
) -> Result<u8, ExecError> {
    run_claimed(rt, store, opts, Some(join))
}

/// Tells the other ranks, if any, that there is nothing to train. They
/// exit either way (the launcher ends them once rank 0 has ended), so a
/// failure to tell them changes nothing.
fn dismiss(join: Option<JoinRanks<'_>>) {
    if let Some(join) = join {
        if let Err(err) = join(false) {
            crate::errln!("worker: {err}");
        }
    }
}

fn run_claimed(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    opts: &WorkerOptions,
    join: Option<JoinRanks<'_>>,
) -> Result<u8, ExecError> {
    let started = unix_now();
    let id = opts.run_id;
    let row = rt
        .block_on(store.run(id))?
        .ok_or_else(|| ExecError::NotInDb {
            id,
            db: opts.db.display().to_string(),
        })?;
    let me = i64::from(std::process::id());
    if !rt.block_on(store.confirm_claim(id, &opts.owner, i64::from(opts.pid), opts.attempt))? {
        crate::errln!(
            "worker: run {id} is no longer held by {} (status {}, owner {}); leaving it alone",
            opts.owner,
            row.status.as_str(),
            row.owner.as_deref().unwrap_or("-")
        );
        dismiss(join);
        return Ok(EXIT_CLAIM_LOST);
    }
    match (row.kind, join) {
        (RunKind::Train, join) => return run_train(rt, store, opts, &row, join),
        (RunKind::Search, Some(join)) => {
            let message = "a search runs in one process; its worker was started as ranks of a training (this orchestrator's plan is wrong)";
            crate::errln!("worker: run {id}: {message}");
            dismiss(Some(join));
            rt.block_on(store.fail_run(id, message))?;
            return Ok(EXIT_SEARCH_FAILED);
        }
        (RunKind::Search, None) => {}
    }
    let cfg = match rebuild_config(&row.config_json, &row.fingerprint, row.definitions) {
        Ok(cfg) => cfg,
        Err(message) => {
            crate::errln!("worker: run {id}: {message}");
            rt.block_on(store.fail_run(id, &message))?;
            return Ok(EXIT_SEARCH_FAILED);
        }
    };
    crate::outln!(
        "worker pid {me}: run {id} ({}) attempt {} on {} with {} libtorch thread(s), owner {}, {}; ready at {:.3} (started {started:.3})",
        row.fingerprint,
        opts.attempt,
        match opts.device {
            tch::Device::Cuda(n) => format!("cuda:{n}"),
            _ => "cpu".to_owned(),
        },
        tch::get_num_threads(),
        opts.owner,
        allocator_text(),
        unix_now()
    );

    let stop = watch(rt, store, id, opts)?;

    let job = Job {
        run_id: id,
        cfg: &cfg,
        device: opts.device,
        checkpoint_dir: default_checkpoint_dir(&opts.db, &cfg),
        resume: true,
        stop,
        display: opts.display(),
    };
    let end = execute(rt, store, job)?;
    Ok(exit_code(id, "run", end, |outcome| {
        format!(
            "valid acc {:.2}%, {:.1} s of search",
            100.0 * outcome.final_valid_acc,
            outcome.wall_s
        )
    }))
}

/// The exit status that tells the orchestrator how run `id` ended, after
/// a line for the worker's log.
fn exit_code<O>(id: i64, what: &str, end: RunEnd<O>, done: impl FnOnce(&O) -> String) -> u8 {
    match end {
        RunEnd::Done(outcome) => {
            crate::outln!(
                "worker: {what} {id} done: {}; ended at {:.3}",
                done(&outcome),
                unix_now()
            );
            EXIT_DONE
        }
        RunEnd::Interrupted { epoch, step } => {
            crate::outln!("worker: {what} {id} {}", interrupted_text(epoch, step));
            EXIT_INTERRUPTED
        }
        RunEnd::NoSpace(message) => {
            crate::errln!("error: {what} {id} stopped: {message}");
            EXIT_NO_SPACE
        }
        RunEnd::PeerLost(message) => {
            crate::errln!("error: {what} {id} stopped: {message}");
            EXIT_INTERRUPTED
        }
        RunEnd::Failed(message) => {
            crate::errln!("worker: {what} {id} failed: {message}");
            EXIT_SEARCH_FAILED
        }
    }
}

/// A claimed train run (a sweep's `evaluate:`) to its end; the exit status
/// as for a search. With `join`, this is rank 0 of several.
fn run_train(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    opts: &WorkerOptions,
    row: &crate::store::RunRow,
    join: Option<JoinRanks<'_>>,
) -> Result<u8, ExecError> {
    let id = row.id;
    crate::outln!(
        "worker pid {}: train run {id} ({}) attempt {}, owner {}, {}",
        std::process::id(),
        row.fingerprint,
        opts.attempt,
        opts.owner,
        allocator_text()
    );
    let cfg = match train_config(row) {
        Ok(cfg) => cfg,
        Err(message) => {
            crate::errln!("worker: train run {id}: {message}");
            dismiss(join);
            rt.block_on(store.fail_run(id, &message))?;
            return Ok(EXIT_SEARCH_FAILED);
        }
    };
    if let Some(join) = join {
        join(true).map_err(ExecError::Ranks)?;
        let ranks = crate::store::Ranks {
            world_size: u32::try_from(crate::nas::parallel::world().size).unwrap_or(u32::MAX),
            backend: crate::nas::parallel::backend(),
        };
        rt.block_on(store.record_ranks(id, &opts.owner, ranks))?;
    }
    let stop = watch(rt, store, id, opts)?;
    let job = super::train::TrainJob {
        run_id: id,
        cfg: &cfg,
        device: opts.device,
        checkpoint_dir: super::checkpoint_dir_of(&opts.db, &cfg.fingerprint()),
        resume: true,
        stop,
        display: opts.display(),
    };
    let end = super::train::execute_train(rt, store, job)?;
    Ok(exit_code(id, "train run", end, |outcome| {
        format!(
            "test acc {:.2}%, {:.1} s",
            100.0 * outcome.final_test_acc,
            outcome.wall_s
        )
    }))
}

/// The resolved config of a stored train run, checked against its
/// definitions version and its fingerprint (what every rank of a training
/// trains).
pub fn train_config(row: &crate::store::RunRow) -> Result<ResolvedTrain, String> {
    serde_json::from_str::<crate::config::train::TrainConfig>(&row.config_json)
        .map_err(|e| e.to_string())
        .and_then(|c| c.resolve().map_err(|e| e.to_string()))
        .and_then(|cfg| {
            if row.definitions != i64::from(cfg.definitions()) {
                Err(format!(
                    "it was registered under train definitions version {} and this ddsas trains under version {} (weights now start as PyTorch initialises them); continuing it would mix two meanings in one run. Train its config again: that registers a new run",
                    row.definitions,
                    cfg.definitions()
                ))
            } else if cfg.fingerprint() == row.fingerprint {
                Ok(cfg)
            } else {
                Err(format!(
                    "its stored config resolves to fingerprint {} instead of {}; this ddsas resolves train configs differently from the one that registered it",
                    cfg.fingerprint(),
                    row.fingerprint
                ))
            }
        })
}

/// The allocator settings that matter for speed and memory
/// (`exec::memory`), for the worker's log.
fn allocator_text() -> String {
    use super::memory::{dirty_decay_ms, lg_extent_max_active_fit};
    match (dirty_decay_ms(), lg_extent_max_active_fit()) {
        (Some(ms), Some(fit)) => {
            format!("jemalloc dirty_decay_ms {ms}, lg_extent_max_active_fit {fit}")
        }
        _ => "allocator settings unknown".into(),
    }
}

/// The resolved config of a stored run, checked against its definitions
/// version and its fingerprint.
fn rebuild_config(
    config_json: &str,
    fingerprint: &str,
    definitions: i64,
) -> Result<crate::config::ResolvedConfig, String> {
    let config: SearchConfig = serde_json::from_str(config_json)
        .map_err(|e| format!("its stored config no longer parses ({e}); this ddsas is not the one that registered it"))?;
    let (method, space) = (config.method, config.space);
    let cfg = config
        .resolve()
        .map_err(|e| format!("its stored config no longer resolves: {e}"))?;
    if definitions != i64::from(cfg.definitions()) {
        return Err(format!(
            "it was registered under definitions version {definitions} and this ddsas runs {} under version {} ({}); continuing it would mix two meanings in one run. Run its config again (its sweep file, or `ddsas search`): that registers a new run",
            method.name(),
            cfg.definitions(),
            crate::config::definitions_change(method, space)
        ));
    }
    if cfg.fingerprint() != fingerprint {
        return Err(format!(
            "its stored config resolves to fingerprint {} instead of {fingerprint}; this ddsas resolves configs differently from the one that registered it",
            cfg.fingerprint()
        ));
    }
    Ok(cfg)
}

impl WorkerOptions {
    /// How the run shows its progress in the worker's log.
    fn display(&self) -> Display {
        if self.quiet {
            Display::Quiet
        } else {
            Display::Lines
        }
    }
}

/// Starts what watches a claimed run from the side: the stop signals and
/// the heartbeat. The flag they set stops the run at its next safe point.
fn watch(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    id: i64,
    opts: &WorkerOptions,
) -> Result<Arc<AtomicBool>, ExecError> {
    let stop = Arc::new(AtomicBool::new(false));
    super::process::watch_stop_signals(rt, stop.clone(), "worker: ")?;
    spawn_heartbeat(
        rt,
        store.clone(),
        id,
        opts.owner.clone(),
        opts.heartbeat_s,
        stop.clone(),
    );
    Ok(stop)
}

/// Every `period_s`: heartbeat if the claim is still ours (exit at once if
/// not: the run belongs to someone else now), and stop at the next safe
/// point if the orchestrator that started us is gone (we were re-parented),
/// so that no orphan keeps running a run nobody watches.
fn spawn_heartbeat(
    rt: &tokio::runtime::Runtime,
    store: Store,
    id: i64,
    owner: String,
    period_s: f64,
    stop: Arc<AtomicBool>,
) {
    // SAFETY: getppid has no preconditions and cannot fail.
    let parent = unsafe { libc::getppid() };
    let period = Duration::from_secs_f64(period_s.max(0.05));
    rt.spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut orphan_reported = false;
        loop {
            tick.tick().await;
            // SAFETY: as above.
            if unsafe { libc::getppid() } != parent && !orphan_reported {
                orphan_reported = true;
                crate::errln!("worker: orchestrator (pid {parent}) is gone; stopping at the next safe point");
                stop.store(true, Ordering::SeqCst);
            }
            match store
                .heartbeat_owned(id, &owner, crate::nas::progress::batches())
                .await {
                Ok(true) => {}
                Ok(false) => {
                    // Done/failed/interrupted by us (execute is finishing), or
                    // taken over by another orchestrator: either way, only
                    // the latter needs us gone, and we cannot tell them
                    // apart safely from here, so check the owner.
                    match store.run(id).await {
                        Ok(Some(row)) if row.owner.as_deref() != Some(owner.as_str()) => {
                            crate::errln!(
                                "worker: run {id} was taken over by {}; exiting without touching it",
                                row.owner.as_deref().unwrap_or("another owner")
                            );
                            super::process::exit_now(EXIT_CLAIM_LOST);
                        }
                        _ => return,
                    }
                }
                Err(err) => tracing::warn!("heartbeat of run {id} failed: {err}"),
            }
        }
    });
}
