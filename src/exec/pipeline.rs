//! One way to execute a claimed run of any kind (a search, a train run,
//! and the kinds to come): from its row to `done`, `failed` or
//! `interrupted`, its epochs stored as they finish, under one set of
//! rules: records before checkpoints, a resume drops the epochs its
//! checkpoint does not know, a libtorch panic fails the run instead of
//! leaving it `running`.
//!
//! What differs per kind at the store and on the screen is a
//! [`Pipeline`]; the order of things is [`execute_run`]'s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::runtime::Runtime;

use super::{prepare, run_guarded, unfinished, Display, Job, RunEnd};
use crate::nas::checkpoint::SavedState;
use crate::nas::run::{Observer, RecordError, RunError, RunOptions, Started};
use crate::store::{EpochOf, RunKind, RunResult, Store, StoreError};

/// The parts of executing a run that differ per kind: how it runs, what
/// the store keeps of it, and the lines it shows. A value of it carries
/// what the kind needs of the config while the run goes (a search's
/// space, for instance).
pub trait Pipeline: Sized {
    /// The resolved config of a run.
    type Cfg;
    /// What a finished epoch records.
    type Record;
    /// What a finished run produced.
    type Outcome;
    /// The non-tensor part of its checkpoints.
    type Saved: SavedState;
    /// The kind of run, as the store keeps it.
    const KIND: RunKind;
    /// The progress bar's template.
    const BAR: &'static str;
    /// Whether `Display::Lines` logs when the first step of the process
    /// is done (a sweep worker's start-up overhead is measured by it).
    const LOG_FIRST_STEP: bool = false;

    /// What the kind keeps of `cfg` while the run goes.
    fn of(cfg: &Self::Cfg) -> Self;
    /// Fingerprint of the run of `cfg` (its checkpoints carry it).
    fn fingerprint(cfg: &Self::Cfg) -> String;
    /// Runs (or resumes) the run of `cfg`.
    fn run(
        cfg: &Self::Cfg,
        opts: &RunOptions,
        observer: &mut dyn Observer<Self::Record>,
    ) -> Result<Self::Outcome, RunError>;
    /// The epoch as the store writes it.
    fn stored_epoch<'r>(&'r self, record: &'r Self::Record) -> EpochOf<'r>;
    /// The end of a finished run as the store writes it.
    fn stored_result(outcome: &Self::Outcome) -> RunResult<'_>;
    /// Stores what the run tells when it starts (nothing, by default).
    fn on_started(&self, _rt: &Runtime, _store: &Store, _id: i64, _at: &Started) {}
    /// The line shown when the run starts, if any.
    fn started_line(&self, id: i64, at: &Started) -> Option<String>;
    /// The progress bar's message for a running loss and accuracy, at
    /// `steps_per_s`.
    fn running_message(&self, _loss: f64, _acc: f64, _steps_per_s: f64) -> Option<String> {
        None
    }
    /// The line shown for a finished epoch.
    fn epoch_line(&self, id: i64, epochs: u32, record: &Self::Record) -> String;
}

/// Runs a claimed run to its end and records the end in the database.
/// Errors are only the database's own; a failing run is `RunEnd::Failed`.
pub fn execute_run<P: Pipeline>(
    rt: &Runtime,
    store: &Store,
    job: Job<'_, P::Cfg>,
) -> Result<RunEnd<P::Outcome>, StoreError> {
    let id = job.run_id;
    if let Some(failed) = prepare::<P>(rt, store, &job, &P::fingerprint(job.cfg))? {
        return Ok(failed);
    }
    let kind = P::of(job.cfg);
    let mut observer = StoreObserver::new(rt, store, id, kind, job.stop.clone(), job.display);
    let opts = RunOptions {
        device: job.device,
        checkpoint_dir: Some(job.checkpoint_dir.clone()),
        resume: job.resume,
    };
    let result = run_guarded(store, id, || P::run(job.cfg, &opts, &mut observer));
    observer.bar.finish_and_clear();
    match result {
        Ok(outcome) => {
            rt.block_on(store.finish_run(id, P::stored_result(&outcome)))?;
            Ok(RunEnd::Done(outcome))
        }
        Err(err) => unfinished(rt, store, id, err),
    }
}

/// A failed epoch write, told apart by whether a disk is full (the run
/// then stops resumable rather than failing).
fn record_error(err: StoreError) -> RecordError {
    if is_disk_full(&err) {
        RecordError::NoSpace(Box::new(err))
    } else {
        RecordError::Failed(Box::new(err))
    }
}

/// Whether the database found its disk full: SQLite's own code, or the
/// system's answer to a write somewhere down the error's causes.
fn is_disk_full(err: &StoreError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    err.is_disk_full()
        || std::iter::from_fn(|| {
            let current = cause?;
            cause = current.source();
            Some(current)
        })
        .any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(crate::nas::checkpoint::is_no_space)
        })
}

/// Stores each epoch (before the checkpoint is written), heartbeats, and
/// shows progress.
struct StoreObserver<'a, P> {
    rt: &'a Runtime,
    store: &'a Store,
    run_id: i64,
    kind: P,
    epochs: u32,
    bar: ProgressBar,
    stop: Arc<AtomicBool>,
    display: Display,
    /// Whether the first step of this process was logged.
    first_step_logged: bool,
    /// The epoch the bar shows (a resumed epoch starts part-way).
    epoch_shown: Option<u32>,
}

impl<'a, P: Pipeline> StoreObserver<'a, P> {
    fn new(
        rt: &'a Runtime,
        store: &'a Store,
        run_id: i64,
        kind: P,
        stop: Arc<AtomicBool>,
        display: Display,
    ) -> Self {
        let bar = if display == Display::Bar {
            ProgressBar::new(0)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(P::BAR)
                .expect("valid template")
                .progress_chars("=> "),
        );
        StoreObserver {
            rt,
            store,
            run_id,
            kind,
            epochs: 0,
            bar,
            stop,
            display,
            first_step_logged: false,
            epoch_shown: None,
        }
    }

    /// Logs the first step of this process (`Display::Lines`).
    fn log_first_step(&mut self, epoch: u32) {
        if P::LOG_FIRST_STEP && !self.first_step_logged && self.display == Display::Lines {
            self.first_step_logged = true;
            let now = crate::store::unix_now();
            crate::outln!(
                "run {}: first step of epoch {} done at {now:.3}",
                self.run_id,
                epoch + 1
            );
        }
    }

    /// Shows a new epoch on the bar, heartbeating.
    fn show_epoch(&mut self, epoch: u32) {
        if self.epoch_shown == Some(epoch) {
            return;
        }
        self.epoch_shown = Some(epoch);
        self.bar.reset();
        self.bar
            .set_prefix(format!("epoch {}/{}", epoch + 1, self.epochs));
        if let Err(err) = self.rt.block_on(self.store.heartbeat(self.run_id)) {
            tracing::warn!("heartbeat of run {} failed: {err}", self.run_id);
        }
    }
}

impl<P: Pipeline> Observer<P::Record> for StoreObserver<'_, P> {
    fn started(&mut self, at: &Started) {
        self.epochs = at.epochs;
        self.kind.on_started(self.rt, self.store, self.run_id, at);
        if self.display != Display::Quiet {
            if let Some(line) = self.kind.started_line(self.run_id, at) {
                crate::errln!("{line}");
            }
        }
        self.bar.set_length(at.steps as u64);
    }

    fn step(&mut self, epoch: u32, step: usize, running: Option<(f64, f64)>) {
        self.log_first_step(epoch);
        self.show_epoch(epoch);
        let message = running
            .and_then(|(loss, acc)| self.kind.running_message(loss, acc, self.bar.per_sec()));
        if let Some(message) = message {
            self.bar.set_message(message);
        }
        self.bar.set_position(step as u64);
    }

    fn epoch(&mut self, record: &P::Record) -> Result<(), RecordError> {
        let epoch = self.kind.stored_epoch(record);
        self.rt
            .block_on(self.store.record_epoch(self.run_id, epoch))
            .map_err(record_error)?;
        if self.display != Display::Quiet {
            let line = self.kind.epoch_line(self.run_id, self.epochs, record);
            self.bar.suspend(|| crate::outln!("{line}"));
        }
        Ok(())
    }

    fn should_stop(&mut self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}
