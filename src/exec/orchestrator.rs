//! The sweep orchestrator (docs/design.md §6): owns the schedule of one sweep,
//! runs each run in a worker process (see [`super::worker`]) on a GPU slot
//! or a CPU slot, and makes sure no run is lost or done twice.
//!
//! How the guarantees come about:
//! - **claims**: a run is started only after `Store::claim_run` (or a
//!   compare-and-swap takeover) moved it to `running` for this
//!   orchestrator's owner id; two orchestrators on one database never both
//!   get a run, and a `done` run is never claimed again.
//! - **dead workers**: the orchestrator awaits every worker's exit status. A
//!   worker killed (SIGKILL, OOM, a crash) or failing for an
//!   infrastructure reason is retried from its checkpoint, up to
//!   `max_retries` times; a search that itself failed (exit
//!   [`EXIT_SEARCH_FAILED`]) is final.
//! - **dead orchestrators**: a run left `running` by an orchestrator of this
//!   host whose processes are all gone, or whose heartbeat is older than
//!   `stale_after_s`, is taken over. Workers stop by themselves when their
//!   orchestrator dies, so the next orchestrator finds their runs
//!   `interrupted` and resumes them.
//! - **Ctrl-C / SIGTERM / `ddsas sweep cancel`**: no new launches, SIGINT to
//!   every worker (they stop between steps and mark their runs
//!   `interrupted`); a second Ctrl-C kills them (their last checkpoints
//!   stay, the runs are marked `interrupted` here). SIGUSR2, Slurm's warning
//!   before a time limit (`sweep submit --slurm`), stops the same way.
//! - **pull workers** (`ddsas worker --sweep`, one per Slurm array task)
//!   run this same loop with [`Options::leave_when_idle`]: they leave once
//!   nothing is left for them to claim instead of watching runs that other
//!   tasks hold.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::IsTerminal;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::process::Command;
use tokio::task::JoinSet;

use super::process::{hostname, pid_alive, Owner, StopSignals};
use super::slots::{most_ranks, pick_slots};
use super::sweep_run::SweepRun;
use super::{chain_text, ExecError, EXIT_INTERRUPTED, EXIT_NO_SPACE, EXIT_SEARCH_FAILED};
use crate::config::train::DistBackend;
use crate::store::{
    Claim, DbLocation, Ranks, RunKind, RunRow, RunStatus, Store, StoreError, BUSY_TIMEOUT,
};

/// How often the orchestrator polls progress, cancellation and runs held
/// elsewhere.
const TICK: Duration = Duration::from_millis(500);
/// How often it checks `sweeps.cancelled`.
const CANCEL_CHECK: Duration = Duration::from_secs(1);
/// How often a pull worker asks squeue whether the job a run is held for
/// (`slurm:<job>`) has ended: not every tick, to spare the controller.
const JOB_CHECK: Duration = Duration::from_secs(30);
/// Lines of a worker's log shown when its run fails.
const LOG_TAIL_LINES: usize = 12;

/// Where a slot runs its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotDevice {
    /// On the CPU.
    Cpu,
    /// On this GPU (index as `nvidia-smi` and `CUDA_VISIBLE_DEVICES` count).
    Gpu(u32),
}

/// One place a worker can run: a device and the worker's libtorch threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The device.
    pub device: SlotDevice,
    /// libtorch CPU threads of the worker.
    pub threads: usize,
}

impl Slot {
    /// The device name stored in `runs.device` (`cpu`, `gpu1`'s run is `cuda:1`).
    pub fn device_name(&self) -> String {
        match self.device {
            SlotDevice::Cpu => "cpu".into(),
            SlotDevice::Gpu(g) => format!("cuda:{g}"),
        }
    }
}

/// How the orchestrator runs a sweep.
#[derive(Debug, Clone)]
pub struct Options {
    /// The sweep (for cancellation).
    pub sweep: String,
    /// The database (absolute, handed to the workers).
    pub db: DbLocation,
    /// The `ddsas` binary to start workers from.
    pub exe: PathBuf,
    /// Where the workers run.
    pub slots: Vec<Slot>,
    /// Retries of a run whose worker died or failed for a reason other
    /// than the search itself.
    pub max_retries: u32,
    /// A `running` run whose heartbeat is older than this is taken over,
    /// and a worker of ours that has not beaten for this long is killed and
    /// its run retried.
    pub stale_after_s: f64,
    /// A worker of ours whose batch count has not moved for this long is
    /// killed and its run retried (None: [`stall_limit`] from its own step
    /// times).
    pub stall_after_s: Option<f64>,
    /// Seconds between a worker's background heartbeats.
    pub heartbeat_s: f64,
    /// Folder of the per-attempt worker logs.
    pub log_dir: PathBuf,
    /// Live multi-line display (a terminal) instead of plain log lines.
    pub live: bool,
    /// Runs of the sweep already done before this session (for the
    /// header's "done/total").
    pub already_done: usize,
    /// The sweep's `evaluate:`: train the cell of each search that
    /// finishes, once per evaluation (none: empty).
    pub evaluate: Vec<crate::sweep::Evaluate>,
    /// Return as soon as no worker runs and every run left is held by a
    /// live owner elsewhere, instead of waiting for those runs to end (a
    /// pull worker of a Slurm job array: its allocation should not idle
    /// while other tasks finish their runs).
    pub leave_when_idle: bool,
    /// A run another owner failed for good at or after this time (unix
    /// seconds) is not retried here (default: this session's start). The
    /// pull workers of one Slurm submission pass its submission time, so
    /// that a run that failed in one task is not retried by every later one.
    pub failed_since: Option<f64>,
    /// Set in a pull worker of `sweep submit --slurm`: a training of
    /// several ranks is not trained in this task's slots but handed to a
    /// Slurm job of its own (`exec::slurm::handoff`).
    pub hand_off: Option<crate::exec::slurm::handoff::HandOff>,
}

/// Why an orchestrator stopped before every run finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Ctrl-C or SIGTERM.
    Signal,
    /// `ddsas sweep cancel`.
    Cancelled,
    /// SIGUSR2: Slurm's warning that the job's time limit (or a
    /// preemption) is near (`--signal` of `sweep submit --slurm`).
    TimeLimit,
    /// A worker found the disk of the database or checkpoints full
    /// ([`Outcome::no_space`] says which).
    NoSpace,
}

/// The shortest stall limit derived from a run's own step times: a slow
/// first batch, a long validation pass or a checkpoint on a slow disk must
/// never look like a hang.
pub const STALL_FLOOR_S: f64 = 300.0;

/// Mean batch times a run may go without a batch before it counts as hung.
const STALL_BATCHES: f64 = 20.0;

/// How long a worker may go without finishing a batch: `fixed` when given,
/// else [`STALL_BATCHES`] of its own mean batch time (`busy_s` seconds for
/// `batches` batches), never under [`STALL_FLOOR_S`].
pub fn stall_limit(fixed: Option<f64>, busy_s: f64, batches: i64) -> f64 {
    fixed.unwrap_or_else(|| {
        let mean = if batches > 0 {
            busy_s / batches as f64
        } else {
            0.0
        };
        (STALL_BATCHES * mean).max(STALL_FLOOR_S)
    })
}

/// A run that ended `failed`.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Run id.
    pub run_id: i64,
    /// Its varied values.
    pub label: String,
    /// Why.
    pub message: String,
    /// The log of its last attempt, if this orchestrator ran it.
    pub log: Option<PathBuf>,
}

/// What one orchestrator session did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Runs this session brought to `done`.
    pub done: usize,
    /// Runs that another orchestrator finished while this one waited.
    pub done_elsewhere: usize,
    /// Runs left `interrupted` by a stop.
    pub interrupted: usize,
    /// Runs that failed (for good, in this session).
    pub failed: Vec<Failure>,
    /// Retries made after a worker died.
    pub retries: usize,
    /// Set when the session was stopped before the end.
    pub stopped: Option<StopReason>,
    /// What a worker said when it found a disk full.
    pub no_space: Option<String>,
    /// Workers killed because they showed no life (no heartbeat, or no
    /// batch for the stall limit).
    pub hung: usize,
    /// Runs left to run when the session ended that no live owner held
    /// (a stop came before they were claimed).
    pub unclaimed: usize,
    /// Runs held by other live owners when the session ended (with
    /// [`Options::leave_when_idle`]: left to them).
    pub held_elsewhere: usize,
    /// Trainings handed to Slurm jobs of their own ([`Options::hand_off`]).
    pub handed_off: usize,
}

/// Runs every run of `runs` that is not done (from any sweep); returns when
/// all ended (done or failed for good), or after a stop once every worker
/// has stopped.
pub async fn orchestrate(
    store: &Store,
    runs: Vec<SweepRun>,
    opts: &Options,
) -> Result<Outcome, ExecError> {
    if opts.slots.is_empty() {
        return Err(ExecError::NoSlots);
    }
    std::fs::create_dir_all(&opts.log_dir).map_err(ExecError::io(format!(
        "creating the log folder {}",
        opts.log_dir.display()
    )))?;
    let total = runs.len() + opts.already_done;
    let mut orch = Orchestrator {
        store,
        opts,
        owner: Owner::orchestrator().to_string(),
        session_start: opts.failed_since.unwrap_or_else(|| store.now()),
        pending: runs.into(),
        active: vec![None; opts.slots.len()],
        retries: HashMap::new(),
        elsewhere: HashSet::new(),
        job_checks: HashMap::new(),
        children: JoinSet::new(),
        outcome: Outcome::default(),
        ui: Ui::new(opts.live, total),
        kill_sent: false,
        outage: Outage::default(),
    };
    orch.run().await
}

#[derive(Debug, Clone)]
struct Active {
    run: SweepRun,
    /// The slots its worker holds, the first being where it is shown: one,
    /// or one per rank of a data-parallel training.
    slots: Vec<usize>,
    pid: u32,
    attempt: i64,
    log: PathBuf,
    started: Instant,
    epochs_done: i64,
    last_acc: Option<f64>,
    last_test_acc: Option<f64>,
    mean_epoch_s: Option<f64>,
    /// Unix time of the launch (heartbeats older than it are the previous
    /// attempt's).
    launched_at: f64,
    /// Batch count of the last heartbeat seen, and when it last changed.
    steps: Option<i64>,
    steps_moved: Instant,
    /// Why this orchestrator killed the worker (it showed no life).
    kill_reason: Option<String>,
}

struct Orchestrator<'a> {
    store: &'a Store,
    opts: &'a Options,
    owner: String,
    session_start: f64,
    pending: VecDeque<SweepRun>,
    active: Vec<Option<Active>>,
    retries: HashMap<i64, u32>,
    elsewhere: HashSet<i64>,
    /// When a run held for a Slurm job was last looked at (squeue is asked
    /// whether the job ended at most every [`JOB_CHECK`]).
    job_checks: HashMap<i64, Instant>,
    children: JoinSet<(usize, std::io::Result<ExitStatus>)>,
    outcome: Outcome,
    ui: Ui,
    kill_sent: bool,
    outage: Outage,
}

/// How long the database has been out of reach, for the orchestrator's own
/// queries (claims, progress, cancellation). A PostgreSQL restart cuts the
/// queries in flight; the next ones wait for the server, so a cut query is
/// simply tried again at the next tick while the workers go on (their own
/// writes retry likewise, `Store::reconnecting`). Only an outage longer
/// than [`BUSY_TIMEOUT`] stops the session.
#[derive(Debug, Default)]
struct Outage {
    since: Option<Instant>,
}

impl Outage {
    /// Passes `result` on, except that a lost connection is forgiven (with
    /// one line) until the outage is [`BUSY_TIMEOUT`] old.
    fn judge(&mut self, result: Result<(), ExecError>, ui: &Ui) -> Result<(), ExecError> {
        let err = match result {
            Ok(()) => {
                if self.since.take().is_some() {
                    ui.line("the database is back; going on".to_owned());
                }
                return Ok(());
            }
            Err(err) => err,
        };
        let lost = err
            .store_error()
            .is_some_and(StoreError::is_connection_lost);
        if !lost {
            return Err(err);
        }
        let since = match self.since {
            Some(since) => since,
            None => {
                ui.line(format!(
                    "lost the connection to the database ({err}); trying again for up to {} s",
                    BUSY_TIMEOUT.as_secs()
                ));
                *self.since.insert(Instant::now())
            }
        };
        if since.elapsed() > BUSY_TIMEOUT {
            return Err(ExecError::OutOfReach {
                seconds: BUSY_TIMEOUT.as_secs(),
                source: Box::new(err),
            });
        }
        Ok(())
    }
}

impl Orchestrator<'_> {
    async fn run(&mut self) -> Result<Outcome, ExecError> {
        let mut signals =
            StopSignals::new().map_err(ExecError::io("installing the signal handlers"))?;
        let mut time_limit =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined2())
                .map_err(ExecError::io("installing the SIGUSR2 handler"))?;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_cancel_check = Instant::now();
        let result = async {
            loop {
                if self.outcome.stopped.is_none() {
                    let filled = self.fill().await;
                    self.outage.judge(filled, &self.ui)?;
                }
                let idle = self.active.iter().all(Option::is_none);
                if idle && (self.pending.is_empty() || self.outcome.stopped.is_some()) {
                    break;
                }
                if idle && self.opts.leave_when_idle && self.only_held_elsewhere() {
                    self.ui.line(format!(
                        "nothing left to claim: {} run(s) are held by other workers; leaving them to them",
                        self.elsewhere.len()
                    ));
                    break;
                }
                self.ui.header(self.counts());
                tokio::select! {
                    Some(joined) = self.children.join_next() => {
                        let (slot, status) = joined.map_err(ExecError::WatchTask)?;
                        self.finished(slot, status).await?;
                    }
                    _ = tick.tick() => {
                        let watched = self.watch(&mut last_cancel_check).await;
                        self.outage.judge(watched, &self.ui)?;
                    }
                    _ = signals.recv() => self.stop(StopReason::Signal),
                    _ = time_limit.recv() => self.stop(StopReason::TimeLimit),
                }
            }
            Ok::<_, ExecError>(())
        }
        .await;
        self.outcome.held_elsewhere = self.elsewhere.len();
        self.outcome.unclaimed = self
            .pending
            .iter()
            .filter(|r| !self.elsewhere.contains(&r.run_id))
            .count();
        if let Err(err) = result {
            // Leave nothing running behind us: stop the workers, wait for
            // them (they mark their runs interrupted), then report.
            self.ui
                .line(format!("error: {}; stopping the workers", chain_text(&err)));
            self.signal_all(libc::SIGINT);
            while let Some(Ok((slot, status))) = self.children.join_next().await {
                let _ = self.finished(slot, status).await;
            }
            self.ui.finish();
            return Err(err);
        }
        self.ui.finish();
        Ok(std::mem::take(&mut self.outcome))
    }

    /// A tick's look at the database: the runs' progress and, every
    /// [`CANCEL_CHECK`], whether the sweep was cancelled.
    async fn watch(&mut self, last_cancel_check: &mut Instant) -> Result<(), ExecError> {
        self.progress().await?;
        if last_cancel_check.elapsed() >= CANCEL_CHECK {
            *last_cancel_check = Instant::now();
            if self.outcome.stopped.is_none()
                && self.store.sweep_cancelled(&self.opts.sweep).await?
            {
                self.stop(StopReason::Cancelled);
            }
        }
        Ok(())
    }

    /// Whether every run still pending is held by a live owner elsewhere
    /// (as the last [`Self::fill`] found): nothing this session could claim.
    fn only_held_elsewhere(&self) -> bool {
        self.pending
            .iter()
            .all(|r| self.elsewhere.contains(&r.run_id))
    }

    fn counts(&self) -> Counts {
        let running = self.active.iter().flatten().count();
        Counts {
            done: self.opts.already_done + self.outcome.done + self.outcome.done_elsewhere,
            running,
            elsewhere: self.elsewhere.len(),
            queued: self.pending.len().saturating_sub(self.elsewhere.len()),
            failed: self.outcome.failed.len(),
            stopping: self.outcome.stopped,
        }
    }

    /// Starts runs on the free slots, in sweep order: claims what is
    /// claimable, takes over what a dead owner left, skips what is done or
    /// held by a live owner. A training of several ranks takes as many
    /// slots at once; while they are not free, the runs after it may take
    /// the free ones (it starts once enough are free together).
    async fn fill(&mut self) -> Result<(), ExecError> {
        self.hand_off_all().await?;
        let mut free = self.free_slots();
        if free.is_empty() {
            return Ok(());
        }
        let mut i = 0;
        while i < self.pending.len() {
            let run = self.pending[i].clone();
            if self.handed_off(&run) {
                i += 1;
                continue;
            }
            if self.never_fits(i, &run) {
                continue;
            }
            // A training whose ranks do not fit in the free slots now waits
            // for them without a look at the database.
            let Some(group) = pick_slots(&self.opts.slots, &free, run.ranks as usize) else {
                i += 1;
                continue;
            };
            let Some(row) = self.store.run(run.run_id).await? else {
                self.ui.line(format!(
                    "run {} vanished from the database; skipping it",
                    run.run_id
                ));
                self.pending.remove(i);
                continue;
            };
            if self.ended_elsewhere(i, &run, &row) {
                continue;
            }
            let claimed = self.claim(&group, &run, &row).await?;
            if claimed {
                self.pending.remove(i);
                self.elsewhere.remove(&run.run_id);
                free.retain(|s| !group.contains(s));
                self.launch(group, run).await?;
                if free.is_empty() {
                    break;
                }
            } else {
                self.elsewhere.insert(run.run_id);
                i += 1;
            }
        }
        Ok(())
    }

    /// Whether `run` goes to a Slurm job of its own rather than to slots
    /// here (a training of several ranks, in a pull worker).
    fn handed_off(&self, run: &SweepRun) -> bool {
        run.ranks > 1 && self.opts.hand_off.is_some()
    }

    /// Hands every pending training that goes to a job of its own to one,
    /// free slots or not: it needs none here, and should not wait behind
    /// this task's runs.
    async fn hand_off_all(&mut self) -> Result<(), ExecError> {
        let mut i = 0;
        while i < self.pending.len() {
            let run = self.pending[i].clone();
            if !self.handed_off(&run) || !self.hand_off(i, &run).await? {
                i += 1;
            }
        }
        Ok(())
    }

    /// Hands pending training `i` (`run`, of several ranks) to a Slurm job
    /// of its own when no live owner holds it: claims it, submits the job,
    /// records it with the run and leaves the run held for it (owner
    /// `slurm:<job>`, taken over by the job's rank 0). Whether `run` left
    /// the queue (handed off, ended elsewhere, or failed to submit).
    async fn hand_off(&mut self, i: usize, run: &SweepRun) -> Result<bool, ExecError> {
        let Some(row) = self.store.run(run.run_id).await? else {
            self.pending.remove(i);
            return Ok(true);
        };
        if self.ended_elsewhere(i, run, &row) {
            return Ok(true);
        }
        if self.job_checked_lately(&row) {
            self.elsewhere.insert(run.run_id);
            return Ok(false);
        }
        let mine = self.claim_for_job(run, &row).await?;
        if !mine {
            self.elsewhere.insert(run.run_id);
            return Ok(false);
        }
        self.pending.remove(i);
        self.elsewhere.remove(&run.run_id);
        let Some(hand) = self.opts.hand_off.clone() else {
            return Ok(true);
        };
        let submitted = tokio::task::spawn_blocking({
            let row = row.clone();
            let (ranks, backend) = (run.ranks, run.backend);
            move || hand.submit(&row, ranks, backend)
        })
        .await
        .unwrap_or_else(|e| Err(format!("the submission did not finish: {e}")));
        match submitted {
            Ok((job, script)) => self.held_by_job(run, &job, &script).await?,
            Err(message) => {
                self.store
                    .release_run(run.run_id, &self.owner, Some(&message))
                    .await?;
                self.not_run_here(run, message);
            }
        }
        Ok(true)
    }

    /// Whether `row` is held for a Slurm job whose end was looked for less
    /// than [`JOB_CHECK`] ago; otherwise notes that it is looked for now.
    fn job_checked_lately(&mut self, row: &RunRow) -> bool {
        let held_for_job = row.status == RunStatus::Running
            && matches!(
                row.owner.as_deref().and_then(Owner::parse),
                Some(Owner::SlurmJob { .. })
            );
        if !held_for_job {
            return false;
        }
        let now = Instant::now();
        match self.job_checks.get(&row.id) {
            Some(&at) if now.duration_since(at) < JOB_CHECK => true,
            _ => {
                self.job_checks.insert(row.id, now);
                false
            }
        }
    }

    /// Claims a training for the job this orchestrator is about to submit
    /// (or takes it over from an owner that is gone, a job that ended
    /// included).
    async fn claim_for_job(&mut self, run: &SweepRun, row: &RunRow) -> Result<bool, ExecError> {
        let claim = Claim {
            owner: self.owner.clone(),
            device: "slurm".into(),
            pid: i64::from(std::process::id()),
            stale_after_s: None,
            ranks: Ranks {
                world_size: run.ranks,
                backend: None,
            },
        };
        Ok(match row.status {
            RunStatus::Running if self.owner_is_gone(row) => {
                self.store
                    .take_over_run(row.id, &claim, row.owner.as_deref(), row.pid)
                    .await?
            }
            RunStatus::Running => false,
            _ => self.store.claim_run(row.id, &claim).await?,
        })
    }

    /// Leaves the claimed `run` to Slurm job `job` (its script at
    /// `script`, submitted held): records the job with the run, holds the
    /// run as `slurm:<job>`, then lets the job start, so that its rank 0
    /// finds the run held for it. A job whose run could not be held is
    /// cancelled instead: it would only fail to claim it.
    async fn held_by_job(
        &mut self,
        run: &SweepRun,
        job: &str,
        script: &Path,
    ) -> Result<(), ExecError> {
        let (id, label) = (run.run_id, &run.label);
        let recorded = self
            .store
            .record_run_slurm_job(job, id, i64::from(run.ranks), &script.display().to_string())
            .await;
        if let Err(e) = recorded {
            self.ui.line(format!("run {id} ({label}): Slurm job {job} is not recorded with the run ({e}); `runs show` will not name it: follow it with `squeue --jobs={job}`"));
        }
        let claim = Claim {
            owner: Owner::SlurmJob {
                job: job.to_owned(),
            }
            .to_string(),
            device: "slurm".into(),
            pid: 0,
            stale_after_s: None,
            ranks: Ranks {
                world_size: run.ranks,
                backend: None,
            },
        };
        let pid = i64::from(std::process::id());
        let held = self
            .store
            .take_over_run(id, &claim, Some(&self.owner), Some(pid))
            .await?;
        if !held {
            let _ = crate::exec::slurm::cancel(&[job.to_owned()]);
            self.ui.line(format!("run {id} ({label}): another owner took it before its Slurm job {job} started; cancelled the job"));
            return Ok(());
        }
        self.outcome.handed_off += 1;
        let released = self.opts.hand_off.as_ref().map(|hand| hand.release(job));
        if let Some(Err(message)) = released {
            self.ui.line(format!("run {id} ({label}): {message}"));
        }
        self.ui.line(format!(
            "run {id} ({label}): trains in {} ranks in Slurm job {job} of its own (script {}); follow it with `ddsas runs show {id}`",
            run.ranks,
            script.display()
        ));
        Ok(())
    }

    /// The slots no worker holds, in order (a worker of several ranks
    /// holds one slot per rank).
    fn free_slots(&self) -> Vec<usize> {
        let held: HashSet<usize> = self
            .active
            .iter()
            .flatten()
            .flat_map(|a| a.slots.iter().copied())
            .collect();
        (0..self.opts.slots.len())
            .filter(|s| !held.contains(s))
            .collect()
    }

    /// Drops pending run `i` (`run`) when it asks for more ranks than this
    /// orchestrator has slots for at once (`sweep run` refuses such a
    /// sweep before it starts; a pull worker's task may be too small): it
    /// is left unclaimed for a larger one, and reported as not run here.
    fn never_fits(&mut self, i: usize, run: &SweepRun) -> bool {
        let most = most_ranks(&self.opts.slots);
        if run.ranks as usize <= most {
            return false;
        }
        self.pending.remove(i);
        self.elsewhere.remove(&run.run_id);
        let message = format!(
            "it trains in {} processes, one worker slot each, and this orchestrator has {most} such slot(s); left unclaimed",
            run.ranks
        );
        self.not_run_here(run, message);
        true
    }

    /// Drops pending run `i` (`run`, as read in `row`) when it ended
    /// elsewhere: done by another orchestrator, or failed in another one
    /// during this session (it gave up on it); says so.
    fn ended_elsewhere(&mut self, i: usize, run: &SweepRun, row: &RunRow) -> bool {
        let mine = row.owner.as_deref() == Some(self.owner.as_str());
        match row.status {
            RunStatus::Done => {
                self.pending.remove(i);
                self.elsewhere.remove(&run.run_id);
                self.outcome.done_elsewhere += 1;
                self.ui.line(format!(
                    "run {} ({}) was finished by another orchestrator",
                    run.run_id, run.label
                ));
                true
            }
            RunStatus::Failed
                if !mine && row.finished_at.is_some_and(|t| t >= self.session_start) =>
            {
                self.pending.remove(i);
                self.elsewhere.remove(&run.run_id);
                self.outcome.failed.push(Failure {
                    run_id: run.run_id,
                    label: run.label.clone(),
                    message: row
                        .error
                        .clone()
                        .unwrap_or_else(|| "failed in another orchestrator".into()),
                    log: None,
                });
                true
            }
            _ => false,
        }
    }

    /// Claims `run` for the slots of `group`, or takes it over when its
    /// owner is gone (ours but not active can only be a leftover of a
    /// failed release; taken back like a dead owner's); whether this
    /// orchestrator got it.
    async fn claim(
        &mut self,
        group: &[usize],
        run: &SweepRun,
        row: &RunRow,
    ) -> Result<bool, StoreError> {
        let mine = row.owner.as_deref() == Some(self.owner.as_str());
        let claim = Claim {
            owner: self.owner.clone(),
            device: self.opts.slots[group[0]].device_name(),
            pid: i64::from(std::process::id()),
            stale_after_s: None,
            // A worker is one process, or the ranks of a training; their
            // rank 0 records the backend once the group has met.
            ranks: Ranks {
                world_size: run.ranks.max(1),
                backend: None,
            },
        };
        Ok(match row.status {
            RunStatus::Running if mine || self.owner_is_gone(row) => {
                let got = self
                    .store
                    .take_over_run(row.id, &claim, row.owner.as_deref(), row.pid)
                    .await?;
                if got {
                    self.ui.line(format!(
                        "run {} ({}): taking over from {} (no live worker)",
                        run.run_id,
                        run.label,
                        row.owner.as_deref().unwrap_or("an unknown owner")
                    ));
                }
                got
            }
            RunStatus::Running => false,
            _ => self.store.claim_run(row.id, &claim).await?,
        })
    }

    /// Whether a `running` run's owner is gone: on this host, when neither
    /// its orchestrator nor its worker process is alive (or its heartbeat is
    /// stale and its worker is not alive); elsewhere, when its heartbeat is
    /// stale. A silent orphan worker of a dead orchestrator of this host is
    /// killed first (see [`kill_orphan`]).
    fn owner_is_gone(&self, row: &RunRow) -> bool {
        let last = row.heartbeat_at.or(row.started_at).unwrap_or(0.0);
        let now = self.store.now();
        let stale = now - last > self.opts.stale_after_s;
        if let Some(line) = kill_orphan(row, self.opts.stale_after_s, now) {
            self.ui.line(line);
            return true;
        }
        let worker_alive = row.pid.is_some_and(pid_alive);
        match row.owner.as_deref().and_then(Owner::parse) {
            Some(Owner::Orchestrator { host, pid, .. }) if host == hostname() => {
                !worker_alive && (stale || !pid_alive(pid))
            }
            Some(Owner::Orchestrator { .. }) => stale,
            // Held for a job that may wait in the queue for hours: gone
            // once Slurm says the job ended without its rank 0 taking it
            // (asked only once the hold is older than --stale-after).
            Some(Owner::SlurmJob { job }) => {
                stale && crate::exec::slurm::job_ended(&job) == Some(true)
            }
            _ => stale && !worker_alive,
        }
    }

    /// Starts the worker of a run this orchestrator just claimed, on the
    /// slots of `group` (the first is where it shows and is watched).
    async fn launch(&mut self, group: Vec<usize>, run: SweepRun) -> Result<(), ExecError> {
        let slot = group[0];
        let id = run.run_id;
        let row = self.store.run(id).await?;
        // The claim counted nothing; this worker is the next attempt, and
        // counts once it exists (`Store::confirm_claim`).
        let attempt = row.as_ref().map_or(0, |r| r.attempts) + 1;
        let trains = row.as_ref().is_some_and(|r| r.kind == RunKind::Train);
        let log = self
            .opts
            .log_dir
            .join(format!("run-{id}-attempt-{attempt}.log"));
        let spawned = self.spawn_worker(&group, (id, attempt), &log, (trains, run.backend));
        let child = match spawned {
            Ok(child) => child,
            Err(err) => {
                let message = format!("cannot start a worker: {}", chain_text(&err));
                self.store
                    .release_run(id, &self.owner, Some(&message))
                    .await?;
                return Err(ExecError::Spawn {
                    id,
                    source: Box::new(err),
                });
            }
        };
        let pid = child.id().unwrap_or(0);
        // The worker confirms too; recording the pid now means a
        // `kill -9` of the orchestrator right away still leaves a pid that
        // the next orchestrator can check.
        self.store
            .confirm_claim(id, &self.owner, i64::from(pid), attempt)
            .await?;
        let mut child = child;
        self.children
            .spawn(async move { (slot, child.wait().await) });
        self.ui.line(format!(
            "run {id} ({}) started on {} (attempt {attempt}, worker pid {pid}, log {})",
            run.label,
            self.group_text(&group),
            log.display()
        ));
        let active = Active {
            run,
            slots: group,
            pid,
            attempt,
            log,
            started: Instant::now(),
            epochs_done: 0,
            last_acc: None,
            last_test_acc: None,
            mean_epoch_s: None,
            launched_at: self.store.now(),
            steps: None,
            steps_moved: Instant::now(),
            kill_reason: None,
        };
        self.ui.started(slot, &active);
        self.active[slot] = Some(active);
        Ok(())
    }

    /// Where a worker runs, for its start line: `cpu`, `cuda:1`, or for
    /// several ranks `2 ranks on cpu` / `2 ranks on cuda:0,1`.
    fn group_text(&self, group: &[usize]) -> String {
        let lead = self.opts.slots[group[0]].device_name();
        match (group.len(), self.opts.slots[group[0]].device) {
            (1, _) => lead,
            (n, SlotDevice::Cpu) => format!("{n} ranks on {lead}"),
            (n, SlotDevice::Gpu(_)) => {
                format!("{n} ranks on cuda:{}", gpu_list(&self.opts.slots, group))
            }
        }
    }

    /// Starts `ddsas worker` for `attempt` of run `id` on the slots of
    /// `group` (several: `--nproc`, one rank per slot, each with the slot's
    /// threads and on CUDA a GPU of its own, talking over `backend`);
    /// `trains` gives it the allocator settings of training, else those of
    /// a search (`exec::memory`).
    fn spawn_worker(
        &self,
        group: &[usize],
        (id, attempt): (i64, i64),
        log: &Path,
        (trains, backend): (bool, DistBackend),
    ) -> Result<tokio::process::Child, ExecError> {
        let s = &self.opts.slots[group[0]];
        let file = std::fs::File::create(log)
            .map_err(ExecError::io(format!("creating {}", log.display())))?;
        let err_file = file
            .try_clone()
            .map_err(ExecError::io("duplicating the log handle"))?;
        let mut cmd = Command::new(&self.opts.exe);
        cmd.arg("worker")
            .env(crate::store::DB_VARIABLE, self.opts.db.to_arg())
            .args(["--run-id", &id.to_string()])
            .args(["--attempt", &attempt.to_string()])
            .args(["--threads", &s.threads.to_string()])
            .args(["--owner", &self.owner])
            .args(["--heartbeat-s", &self.opts.heartbeat_s.to_string()])
            .env("OMP_NUM_THREADS", s.threads.to_string())
            .env("MKL_NUM_THREADS", s.threads.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err_file))
            // Its own process group: a terminal's Ctrl-C reaches only the
            // orchestrator, which forwards it (and escalates on a second).
            // A worker's ranks stay in it, so a kill of the group ends
            // them all.
            .process_group(0)
            .kill_on_drop(false);
        cmd.args(rank_args(group.len(), backend));
        let workload = if trains {
            super::memory::Workload::Training
        } else {
            super::memory::Workload::Search
        };
        cmd.envs(super::memory::env_for(workload));
        match s.device {
            SlotDevice::Cpu => {
                cmd.args(["--device", "cpu"])
                    .env("CUDA_VISIBLE_DEVICES", "");
            }
            SlotDevice::Gpu(_) if group.len() > 1 => {
                // Rank r takes the r-th GPU of the list.
                cmd.args(["--device", "cuda"])
                    .env("CUDA_VISIBLE_DEVICES", gpu_list(&self.opts.slots, group));
            }
            SlotDevice::Gpu(g) => {
                cmd.args(["--device", "cuda:0"])
                    .env("CUDA_VISIBLE_DEVICES", g.to_string());
            }
        }
        cmd.spawn().map_err(ExecError::io(format!(
            "running {}",
            self.opts.exe.display()
        )))
    }

    /// A worker exited: record how its run ended, retry it if its worker
    /// died for a reason other than the search.
    async fn finished(
        &mut self,
        slot: usize,
        status: std::io::Result<ExitStatus>,
    ) -> Result<(), ExecError> {
        let Some(act) = self.active[slot].take() else {
            return Ok(());
        };
        self.ui.ended(slot);
        let id = act.run.run_id;
        let how = match &status {
            Ok(s) => describe_exit(*s),
            Err(e) => format!("could not be waited for ({e})"),
        };
        let code = status.as_ref().ok().and_then(ExitStatus::code);
        let row = self.store.run(id).await?.ok_or(ExecError::Vanished(id))?;
        if row.status == RunStatus::Done {
            return self.done(act, &row).await;
        }
        if row.owner.as_deref() != Some(self.owner.as_str()) {
            self.ui.line(format!(
                "run {id} ({}) is held by {} now; watching it",
                act.run.label,
                row.owner.as_deref().unwrap_or("another owner")
            ));
            self.pending.push_back(act.run);
            return Ok(());
        }
        if code == Some(i32::from(EXIT_NO_SPACE)) {
            self.no_space(&act, &row).await;
            return Ok(());
        }
        if code == Some(i32::from(EXIT_SEARCH_FAILED)) || row.status == RunStatus::Failed {
            return Ok(self.failed(&act, &row, &how).await?);
        }
        if self.outcome.stopped.is_some() {
            return Ok(self.stopped(&act, &row, &how).await?);
        }
        Ok(self.retry_or_give_up(act, &row, &how).await?)
    }

    /// A worker whose run is done: count it, say so, and queue the train
    /// runs of the sweep's `evaluate:` for its cell.
    async fn done(&mut self, act: Active, row: &RunRow) -> Result<(), ExecError> {
        self.outcome.done += 1;
        let acc = match row.final_test_acc {
            Some(test) => format!("test acc {}", pct(Some(test))),
            None => format!("valid acc {}", pct(row.final_valid_acc)),
        };
        self.ui.line(format!(
            "run {} ({}) done: {acc} in {}",
            row.id,
            act.run.label,
            duration(act.started.elapsed().as_secs_f64())
        ));
        let queued =
            super::evaluate::evaluations(self.store, &self.opts.sweep, &self.opts.evaluate, row)
                .await?;
        for run in queued {
            // A cell two searches found is one train run: queued once.
            let known = self.pending.iter().any(|p| p.run_id == run.run_id)
                || self
                    .active
                    .iter()
                    .flatten()
                    .any(|a| a.run.run_id == run.run_id);
            if !known {
                self.ui.total += 1;
                self.pending.push_back(run);
            }
        }
        Ok(())
    }

    /// A worker whose run failed (it said so, or its row does): the run is
    /// `failed` with the worker's error, or the last error of its log.
    async fn failed(&mut self, act: &Active, row: &RunRow, how: &str) -> Result<(), StoreError> {
        let message = match row.error.clone() {
            Some(e) if row.status == RunStatus::Failed => e,
            _ => {
                let message = match last_error(&act.log) {
                    Some(error) => format!("worker {how}: {error}"),
                    None => format!("worker {how} without recording why; see its log"),
                };
                self.store
                    .fail_owned_run(row.id, &self.owner, &message)
                    .await?;
                message
            }
        };
        self.report_failure(act, &message);
        Ok(())
    }

    /// A worker ended while the orchestrator stops: its run stays
    /// resumable, and the line says who resumes it.
    async fn stopped(&mut self, act: &Active, row: &RunRow, how: &str) -> Result<(), StoreError> {
        if row.status == RunStatus::Running {
            let message = format!("stopped ({how}); resumes from its checkpoint");
            self.store
                .release_run(row.id, &self.owner, Some(&message))
                .await?;
        }
        self.outcome.interrupted += 1;
        let resumer = if self.opts.leave_when_idle {
            "the next pull worker (this task requeued, or another)"
        } else {
            "`ddsas sweep run` again"
        };
        self.ui.line(format!(
            "run {} ({}) interrupted at epoch {}/{}; {resumer} resumes it",
            row.id, act.run.label, row.epochs_done, row.epochs_total
        ));
        Ok(())
    }

    /// The worker died or stopped on its own: retry from the checkpoint,
    /// up to `max_retries` in this session, then fail the run.
    async fn retry_or_give_up(
        &mut self,
        act: Active,
        row: &RunRow,
        how: &str,
    ) -> Result<(), StoreError> {
        let id = row.id;
        let used = self.retries.entry(id).or_insert(0);
        *used += 1;
        let used = *used;
        let why = match (&act.kill_reason, last_error(&act.log)) {
            (Some(reason), _) => format!("{reason}: worker killed on attempt {}", act.attempt),
            (None, Some(error)) => format!("worker {how} on attempt {} ({error})", act.attempt),
            (None, None) => format!("worker {how} on attempt {}", act.attempt),
        };
        if used > self.opts.max_retries {
            let message = format!("gave up after {used} attempt(s) in this session: {why}");
            self.store.fail_owned_run(id, &self.owner, &message).await?;
            self.report_failure(&act, &message);
            return Ok(());
        }
        if row.status == RunStatus::Running {
            self.store.release_run(id, &self.owner, Some(&why)).await?;
        }
        self.outcome.retries += 1;
        self.ui.line(format!(
            "run {id} ({}): {why}; retrying from epoch {} (retry {used}/{})\n{}",
            act.run.label,
            row.epochs_done,
            self.opts.max_retries,
            tail(&act.log)
        ));
        self.pending.push_front(act.run);
        Ok(())
    }

    /// A worker found a disk full: its run is `interrupted` (resumable);
    /// launch nothing more on this database, and say why.
    async fn no_space(&mut self, act: &Active, row: &RunRow) {
        let id = act.run.run_id;
        let why = last_error(&act.log).unwrap_or_else(|| "a disk is full".into());
        if row.status == RunStatus::Running {
            // With the database's own disk full this fails too; the next
            // orchestrator then takes the run over.
            if let Err(e) = self.store.release_run(id, &self.owner, Some(&why)).await {
                self.ui.line(format!("run {id}: cannot mark it interrupted ({e:#}); the next `sweep run` takes it over"));
            }
        }
        self.outcome.interrupted += 1;
        self.ui.line(format!(
            "run {id} ({}) stopped at epoch {}/{}: {why}",
            act.run.label, row.epochs_done, row.epochs_total
        ));
        self.outcome.no_space.get_or_insert(why);
        self.stop(StopReason::NoSpace);
    }

    /// Says why `run` is not run by this orchestrator (it has no worker,
    /// so no log) and counts it among the failures.
    fn not_run_here(&mut self, run: &SweepRun, message: String) {
        self.ui
            .line(format!("run {} ({}): {message}", run.run_id, run.label));
        self.outcome.failed.push(Failure {
            run_id: run.run_id,
            label: run.label.clone(),
            message,
            log: None,
        });
    }

    fn report_failure(&mut self, act: &Active, message: &str) {
        self.ui.line(format!(
            "run {} ({}) FAILED: {message}\n{}",
            act.run.run_id,
            act.run.label,
            tail(&act.log)
        ));
        self.outcome.failed.push(Failure {
            run_id: act.run.run_id,
            label: act.run.label.clone(),
            message: message.to_owned(),
            log: Some(act.log.clone()),
        });
    }

    /// First stop: no more launches, SIGINT to the workers. A second
    /// Ctrl-C: SIGKILL them.
    fn stop(&mut self, reason: StopReason) {
        let running = self.active.iter().flatten().count();
        if self.outcome.stopped.is_none() {
            self.outcome.stopped = Some(reason);
            let why = match reason {
                StopReason::Signal => "stop requested",
                StopReason::Cancelled => "sweep cancelled",
                StopReason::TimeLimit => "SIGUSR2 (Slurm: time limit or preemption near)",
                StopReason::NoSpace => {
                    // The running workers go on: space may be freed before
                    // they need it, and if not they stop the same way.
                    self.ui.line(format!(
                        "disk full: launching nothing more; {running} worker(s) go on while they can"
                    ));
                    return;
                }
            };
            self.ui.line(format!(
                "{why}: launching nothing more; {running} worker(s) stop at their next safe point (Ctrl-C again kills them)"
            ));
            self.signal_all(libc::SIGINT);
        } else if reason == StopReason::Signal && !self.kill_sent {
            self.kill_sent = true;
            self.ui.line(format!(
                "killing {running} worker(s); their runs resume from their last checkpoint"
            ));
            self.signal_all(libc::SIGKILL);
        }
    }

    /// Sends `sig` to every worker: a stop to the worker itself (the
    /// launcher of a training's ranks passes it on to them), SIGKILL to its
    /// whole process group, ranks included.
    fn signal_all(&self, sig: i32) {
        for act in self.active.iter().flatten() {
            if act.pid > 0 {
                let pid = act.pid as libc::pid_t;
                let target = if sig == libc::SIGKILL { -pid } else { pid };
                // SAFETY: kill only sends a signal to our own child (not yet
                // reaped, so its pid cannot have been reused), or to the
                // process group it leads (`process_group(0)`).
                unsafe {
                    libc::kill(target, sig);
                }
            }
        }
    }

    /// Reads the running runs' progress for the display.
    async fn progress(&mut self) -> Result<(), StoreError> {
        let ids: Vec<i64> = self.active.iter().flatten().map(|a| a.run.run_id).collect();
        if ids.is_empty() {
            return Ok(());
        }
        let rows = self.store.run_progress(&ids).await?;
        for slot in 0..self.active.len() {
            let Some(act) = self.active[slot].as_mut() else {
                continue;
            };
            let Some(p) = rows.iter().find(|p| p.id == act.run.run_id) else {
                continue;
            };
            let advanced = p.epochs_done != act.epochs_done;
            act.epochs_done = p.epochs_done;
            act.last_acc = p.last_valid_acc;
            act.last_test_acc = p.last_test_acc;
            act.mean_epoch_s = p.mean_epoch_s;
            if p.steps_done != act.steps {
                if act.steps.is_some() {
                    act.steps_moved = Instant::now();
                }
                act.steps = p.steps_done;
            }
            let act = act.clone();
            self.ui.progress(slot, &act, advanced);
            self.kill_if_hung(slot, p.heartbeat_at);
        }
        Ok(())
    }

    /// Kills the worker in `slot` when it shows no life: no heartbeat for
    /// `stale_after_s` (a stopped or frozen process), or heartbeats whose
    /// batch count has not moved for the stall limit (a deadlock, a stuck
    /// kernel, a hung file system). Its exit is then handled like any dead
    /// worker's: the run is retried from its checkpoint, the reason kept.
    fn kill_if_hung(&mut self, slot: usize, heartbeat_at: Option<f64>) {
        let Some(act) = self.active[slot].as_mut() else {
            return;
        };
        if act.kill_reason.is_some() || act.pid == 0 {
            return;
        }
        let now = self.store.now();
        let silent = now - heartbeat_at.unwrap_or(act.launched_at).max(act.launched_at);
        let still = act.steps_moved.elapsed().as_secs_f64();
        let busy = act
            .steps_moved
            .saturating_duration_since(act.started)
            .as_secs_f64();
        let limit = stall_limit(self.opts.stall_after_s, busy, act.steps.unwrap_or(0));
        let reason = if silent > self.opts.stale_after_s {
            format!("no heartbeat for {silent:.0} s")
        } else if still > limit {
            format!("no step for {}", duration(still))
        } else {
            return;
        };
        self.ui.line(format!(
            "run {} ({}): {reason}; killing its worker (pid {}) to retry it from its checkpoint",
            act.run.run_id, act.run.label, act.pid
        ));
        act.kill_reason = Some(reason);
        self.outcome.hung += 1;
        // SAFETY: the worker leads its own process group (`process_group(0)`)
        // and is our child, not yet reaped, so the group id is still its.
        // SIGKILL ends even a stopped process.
        unsafe {
            libc::kill(-(act.pid as libc::pid_t), libc::SIGKILL);
        }
    }
}

/// Kills the worker of a `running` run when it is a silent orphan: its
/// orchestrator, on this host, is gone, and it has not sent a heartbeat for
/// `stale_after_s` (stopped, frozen, deadlocked). Nobody else would ever
/// end it, and while it lives its run cannot be taken over (and, if it
/// froze inside a write, the database stays locked). The pid is checked to
/// be that run's `ddsas worker` before the signal. Returns what was done.
pub fn kill_orphan(row: &RunRow, stale_after_s: f64, now: f64) -> Option<String> {
    let Some(Owner::Orchestrator {
        host, pid: orch, ..
    }) = row.owner.as_deref().and_then(Owner::parse)
    else {
        return None;
    };
    let worker = row.pid?;
    let silent = now - row.heartbeat_at.or(row.started_at).unwrap_or(0.0);
    if host != hostname() || pid_alive(orch) || silent <= stale_after_s || !pid_alive(worker) {
        return None;
    }
    if !is_worker_of(worker, row.id) {
        return None;
    }
    // SAFETY: a plain kill(2) of a process just checked to be this run's
    // worker; SIGKILL ends even a stopped one.
    unsafe {
        libc::kill(worker as libc::pid_t, libc::SIGKILL);
    }
    Some(format!(
        "run {}: its orchestrator (pid {orch}) is gone and its worker (pid {worker}) sent no heartbeat for {silent:.0} s; killed the worker, the run resumes from its checkpoint",
        row.id
    ))
}

/// Whether process `pid` is `ddsas worker ... --run-id <run>` (its command
/// line, from /proc), so that a reused pid is never signalled.
fn is_worker_of(pid: i64, run: i64) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let run = run.to_string();
    args.iter().any(|a| *a == b"worker")
        && args
            .windows(2)
            .any(|w| w[0] == b"--run-id" && w[1] == run.as_bytes())
}

/// Kills the silent orphan workers of dead orchestrators of this host (see
/// [`kill_orphan`]) before a new orchestrator starts writing; returns a
/// line per worker killed.
pub async fn reap_orphans(store: &Store, stale_after_s: f64) -> Result<Vec<String>, StoreError> {
    let rows = store.running_runs().await?;
    let now = store.now();
    Ok(rows
        .iter()
        .filter_map(|row| kill_orphan(row, stale_after_s, now))
        .collect())
}

/// Counts for the header line.
#[derive(Debug, Clone, Copy)]
struct Counts {
    done: usize,
    running: usize,
    elsewhere: usize,
    queued: usize,
    failed: usize,
    stopping: Option<StopReason>,
}

impl Counts {
    fn text(&self, total: usize) -> String {
        let mut s = format!(
            "{}/{total} done, {} running, {} queued, {} failed",
            self.done, self.running, self.queued, self.failed
        );
        if self.elsewhere > 0 {
            s.push_str(&format!(", {} running elsewhere", self.elsewhere));
        }
        match self.stopping {
            Some(StopReason::Signal) => s.push_str(" — stopping"),
            Some(StopReason::Cancelled) => s.push_str(" — cancelled, stopping"),
            Some(StopReason::TimeLimit) => s.push_str(" — time limit near, stopping"),
            Some(StopReason::NoSpace) => s.push_str(" — disk full, launching nothing more"),
            None => {}
        }
        s
    }
}

/// The display: an indicatif header plus one bar per running run on a
/// terminal, else plain timestamped lines.
struct Ui {
    live: Option<Live>,
    start: Instant,
    total: usize,
    last_header: String,
}

struct Live {
    multi: MultiProgress,
    header: ProgressBar,
    bars: HashMap<usize, ProgressBar>,
}

impl Ui {
    fn new(live: bool, total: usize) -> Ui {
        let live = (live && std::io::stdout().is_terminal()).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
            let header = multi.add(ProgressBar::new_spinner());
            header.set_style(
                ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .expect("valid template"),
            );
            header.enable_steady_tick(Duration::from_millis(200));
            Live {
                multi,
                header,
                bars: HashMap::new(),
            }
        });
        Ui {
            live,
            start: Instant::now(),
            total,
            last_header: String::new(),
        }
    }

    fn line(&self, text: String) {
        match &self.live {
            Some(live) => {
                let _ = live.multi.println(text);
            }
            None => crate::outln!(
                "[{:>8}] {text}",
                duration(self.start.elapsed().as_secs_f64())
            ),
        }
    }

    fn header(&mut self, counts: Counts) {
        let text = counts.text(self.total);
        if text == self.last_header {
            return;
        }
        match &self.live {
            Some(live) => live.header.set_message(text.clone()),
            None => self.line(text.clone()),
        }
        self.last_header = text;
    }

    fn started(&mut self, slot: usize, act: &Active) {
        if let Some(live) = &mut self.live {
            let bar = live.multi.add(ProgressBar::new(u64::from(act.run.epochs)));
            bar.set_style(
                ProgressStyle::with_template("  {prefix:<40} [{bar:20}] epoch {pos}/{len}  {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(format!("run {} {}", act.run.run_id, act.run.label));
            bar.set_message(status_text(act));
            live.bars.insert(slot, bar);
        }
    }

    fn progress(&mut self, slot: usize, act: &Active, advanced: bool) {
        match &self.live {
            Some(live) => {
                if let Some(bar) = live.bars.get(&slot) {
                    bar.set_position(act.epochs_done.max(0) as u64);
                    bar.set_message(status_text(act));
                }
            }
            None if advanced => self.line(format!(
                "run {} ({}) epoch {}/{}  {}",
                act.run.run_id,
                act.run.label,
                act.epochs_done,
                act.run.epochs,
                status_text(act)
            )),
            None => {}
        }
    }

    fn ended(&mut self, slot: usize) {
        if let Some(live) = &mut self.live {
            if let Some(bar) = live.bars.remove(&slot) {
                bar.finish_and_clear();
                live.multi.remove(&bar);
            }
        }
    }

    fn finish(&mut self) {
        if let Some(live) = self.live.take() {
            for bar in live.bars.values() {
                bar.finish_and_clear();
            }
            live.header.finish_and_clear();
            let _ = live.multi.clear();
        }
    }
}

/// The GPUs of the slots of `group`, `0,1`, as CUDA_VISIBLE_DEVICES lists them.
fn gpu_list(slots: &[Slot], group: &[usize]) -> String {
    group
        .iter()
        .filter_map(|&s| match slots[s].device {
            SlotDevice::Gpu(g) => Some(g.to_string()),
            SlotDevice::Cpu => None,
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The worker's options for a training of `ranks` ranks over `backend`:
/// none for one process; `--nproc N`, and `--dist-backend` when the
/// `evaluate:` entry named one (the stored config leaves it out, since it
/// does not change what is trained).
fn rank_args(ranks: usize, backend: DistBackend) -> Vec<String> {
    if ranks <= 1 {
        return Vec::new();
    }
    let mut args = vec!["--nproc".to_owned(), ranks.to_string()];
    if backend != DistBackend::Auto {
        args.extend(["--dist-backend".to_owned(), backend.name().to_owned()]);
    }
    args
}

/// `valid 45.1%  ETA 1m20s` for a running run.
fn status_text(act: &Active) -> String {
    let acc = match (act.last_test_acc, act.last_acc) {
        (Some(t), _) => format!("test {:.1}%", 100.0 * t),
        (None, Some(v)) => format!("valid {:.1}%", 100.0 * v),
        (None, None) => "acc -".to_owned(),
    };
    let left = i64::from(act.run.epochs) - act.epochs_done;
    let eta = match act.mean_epoch_s {
        Some(s) if left > 0 => format!("ETA {}", duration(s * left as f64)),
        _ if left <= 0 => "finishing".to_owned(),
        _ => "ETA ?".to_owned(),
    };
    format!("{acc}  {eta}")
}

/// `exited with status 1` / `was killed by signal 9 (SIGKILL)`.
fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return match u8::try_from(code) {
            Ok(EXIT_INTERRUPTED) => "stopped at a safe point (exit status 130)".into(),
            _ => format!("exited with status {code}"),
        };
    }
    match status.signal() {
        Some(sig) => format!("was killed by signal {sig} ({})", signal_name(sig)),
        None => "ended for an unknown reason".into(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        _ => "signal",
    }
}

/// The last lines of a worker log, indented, for failure messages.
/// The last `error: ...` line a worker wrote to its log: why it exited,
/// for `runs.error` (the log itself may be on another machine later).
fn last_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .map(|l| l.trim().to_owned())
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(LOG_TAIL_LINES);
    let mut out = format!("  --- last lines of {} ---", log.display());
    for line in &lines[from..] {
        out.push_str("\n  | ");
        out.push_str(line);
    }
    out
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |a| format!("{:.2}%", 100.0 * a))
}

/// `4.2s`, `3m05s`, `2h03m`.
fn duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "?".into();
    }
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A training's ranks are told their count and, when the entry named
    /// one, their backend; one process is told neither.
    #[test]
    fn a_workers_rank_options_carry_an_explicit_backend_only() {
        assert!(rank_args(1, DistBackend::Gloo).is_empty());
        assert_eq!(rank_args(2, DistBackend::Auto), ["--nproc", "2"]);
        assert_eq!(
            rank_args(4, DistBackend::Gloo),
            ["--nproc", "4", "--dist-backend", "gloo"]
        );
        assert_eq!(
            rank_args(2, DistBackend::Nccl),
            ["--nproc", "2", "--dist-backend", "nccl"]
        );
    }

    /// A cut query is forgiven (the next tick tries again) until the
    /// outage is older than the store's own patience; other errors never.
    #[test]
    fn a_lost_connection_is_waited_out_for_a_while_and_other_errors_are_not() {
        let ui = Ui::new(false, 1);
        let lost = || {
            let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
            ExecError::Store(StoreError::Query {
                what: "listing the runs' progress".into(),
                source: sqlx::Error::Io(reset),
            })
        };
        let mut outage = Outage::default();
        assert!(outage.judge(Err(lost()), &ui).is_ok());
        assert!(outage.judge(Err(lost()), &ui).is_ok());
        assert!(outage.judge(Ok(()), &ui).is_ok());
        assert!(outage.since.is_none(), "a success ends the outage");
        assert!(outage.judge(Err(ExecError::NoSlots), &ui).is_err());
        assert!(outage.judge(Err(lost()), &ui).is_ok());
        outage.since = Some(Instant::now() - BUSY_TIMEOUT - Duration::from_secs(1));
        let err = outage.judge(Err(lost()), &ui).unwrap_err();
        let text = chain_text(&err);
        assert!(
            text.starts_with(
                "the database stayed out of reach for 30 s: listing the runs' progress failed"
            ),
            "{text}"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(4.21), "4.2s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(7380.0), "2h03m");
    }
}
