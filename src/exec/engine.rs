//! One claimed run executed on libtorch (`engine` build only): its
//! checkpoint folder made ready, the run with libtorch's panics caught,
//! and how it ended recorded; [`pipeline`](super::pipeline) holds what is
//! generic over the kind of run.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio::runtime::Runtime;

use super::pipeline::{self, Pipeline};
use super::{error_log_of, guard};
use crate::arch::metrics::EpochRecord;
use crate::config::ResolvedConfig;
use crate::nas::checkpoint;
use crate::nas::run::{RecordError, RunError};
use crate::nas::search::SearchOutcome;
use crate::store::{Store, StoreError};

/// How a run shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// A progress bar per epoch plus one line per finished epoch.
    Bar,
    /// One line per finished epoch (logs, sweep workers).
    Lines,
    /// Nothing.
    Quiet,
}

/// A run that the caller has claimed and wants executed: a search
/// (`ResolvedConfig`) or a train run (`ResolvedTrain`).
pub struct Job<'a, C = ResolvedConfig> {
    /// Database id of the run.
    pub run_id: i64,
    /// Its resolved config.
    pub cfg: &'a C,
    /// Device to train on.
    pub device: tch::Device,
    /// Folder of its epoch checkpoints.
    pub checkpoint_dir: PathBuf,
    /// Continue from the checkpoint (else start over, dropping old epochs).
    pub resume: bool,
    /// Set to stop at the next safe point (Ctrl-C, cancel).
    pub stop: Arc<AtomicBool>,
    /// Progress display.
    pub display: Display,
}

/// How a run ended; the database already says so too. `O` is what a
/// finished run produced: a search's [`SearchOutcome`] or a train run's
/// outcome.
#[derive(Debug)]
pub enum RunEnd<O = SearchOutcome> {
    /// Finished: status `done`.
    Done(O),
    /// Stopped at a safe point: status `interrupted`, checkpoint kept.
    Interrupted {
        /// Epoch that was running (0-based, as stored; messages add 1).
        epoch: u32,
        /// Steps of it checkpointed at the stop, if a checkpoint was
        /// written there.
        step: Option<u32>,
    },
    /// The disk of the checkpoints or the database is full: status
    /// `interrupted` (resumable once space is freed), with this message.
    NoSpace(String),
    /// A data-parallel peer stopped answering: status `interrupted`
    /// (a resume goes on from the last checkpoint), with the group's line
    /// naming the rank.
    PeerLost(String),
    /// Failed (divergence, bad data...): status `failed` with this message.
    Failed(String),
}

/// Runs a claimed search to its end and records the end in the database.
/// Errors are only the database's own; a failing search is `RunEnd::Failed`.
pub fn execute(rt: &Runtime, store: &Store, job: Job<'_>) -> Result<RunEnd, StoreError> {
    pipeline::execute_run::<super::search::Search>(rt, store, job)
}

/// Gets a claimed run's records and checkpoint folder ready: when resuming,
/// finds the newest good checkpoint (saying in one line which newer ones
/// were damaged) and drops the records it does not know, which are redone;
/// else starts clean. A checkpoint folder of another run fails the run:
/// then the failure, already recorded, is returned.
pub(crate) fn prepare<P: Pipeline>(
    rt: &Runtime,
    store: &Store,
    job: &Job<'_, P::Cfg>,
    fingerprint: &str,
) -> Result<Option<RunEnd<P::Outcome>>, StoreError> {
    let id = job.run_id;
    let dir = &job.checkpoint_dir;
    rt.block_on(store.set_checkpoint_path(id, &dir.display().to_string()))?;
    let kept = if job.resume {
        let scan = match checkpoint::scan::<P::Saved>(dir, fingerprint) {
            Ok(scan) => scan,
            Err(err) => {
                let message = err.to_string();
                rt.block_on(store.fail_run(id, &message))?;
                return Ok(Some(RunEnd::Failed(message)));
            }
        };
        if let Some(report) = scan.damage_report() {
            crate::errln!("run {id}: {report}");
        }
        scan.last_finished_epoch()
    } else {
        let _ = std::fs::remove_dir_all(dir);
        None
    };
    rt.block_on(store.truncate_after(id, P::KIND, kept))?;
    Ok(None)
}

/// Runs `f` (a search or a training) catching libtorch's panics: their
/// first line becomes the error, their whole text goes to the run's error
/// log, which the message names.
pub(crate) fn run_guarded<O>(
    store: &Store,
    run_id: i64,
    f: impl FnOnce() -> Result<O, RunError>,
) -> Result<O, RunError> {
    guard::catch(f).unwrap_or_else(|caught| {
        let message = with_detail(store, run_id, caught.message, &caught.detail);
        Err(RunError::Internal(message))
    })
}

/// Records how a run that did not finish ended: `interrupted` for a stop or
/// a full disk (both resume later), `failed` otherwise, with libtorch's
/// whole text in the run's error log.
pub(crate) fn unfinished<O>(
    rt: &Runtime,
    store: &Store,
    id: i64,
    err: RunError,
) -> Result<RunEnd<O>, StoreError> {
    match err {
        RunError::Interrupted { epoch, step } => {
            rt.block_on(store.interrupt_run(id))?;
            Ok(RunEnd::Interrupted { epoch, step })
        }
        RunError::PeerLost(message) => {
            rt.block_on(store.interrupt_run(id))?;
            Ok(RunEnd::PeerLost(message))
        }
        err if is_no_space(&err) => {
            // Best effort: with the database's own disk full this write
            // fails too, and the next orchestrator takes the run over.
            if let Err(e) = rt.block_on(store.interrupt_run(id)) {
                tracing::warn!("marking run {id} interrupted failed: {e}");
            }
            Ok(RunEnd::NoSpace(err.to_string()))
        }
        err => {
            let message = match err.detail() {
                Some(detail) => with_detail(store, id, err.to_string(), detail),
                None => err.to_string(),
            };
            rt.block_on(store.fail_run(id, &message))?;
            Ok(RunEnd::Failed(message))
        }
    }
}

/// Whether a search or training stopped because a disk is full: the
/// checkpoint's (checked before writing) or the database's.
fn is_no_space(err: &RunError) -> bool {
    match err {
        RunError::Checkpoint(e) => e.is_no_space(),
        RunError::Store {
            source: RecordError::NoSpace(_),
            ..
        } => true,
        _ => false,
    }
}

/// Appends `detail` to the run's error log and returns `message` naming
/// it (or `message` alone if the log cannot be written).
fn with_detail(store: &Store, run_id: i64, message: String, detail: &str) -> String {
    use std::io::Write;
    let path = error_log_of(store.location(), run_id);
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            writeln!(
                f,
                "--- at unix time {:.3}\n{message}\n{detail}\n",
                crate::store::unix_now()
            )
        });
    match written {
        Ok(()) => format!("{message} (full text in {})", path.display()),
        Err(_) => message,
    }
}

/// "resuming at epoch 3 of 10", or "at step 40 of epoch 3 of 10" for a
/// run stopped part-way through an epoch.
pub(crate) fn resuming_at(epoch: u32, step: usize, epochs: u32) -> String {
    match step {
        0 => format!("resuming at epoch {} of {epochs}", epoch + 1),
        step => format!("resuming at step {step} of epoch {} of {epochs}", epoch + 1),
    }
}

/// One human-readable line per finished epoch.
pub fn epoch_line(run_id: i64, epochs: u32, r: &EpochRecord) -> String {
    let skip = match r.skip_reduce {
        Some(reduce) => format!("{}/{}", r.skip_normal, reduce),
        None => r.skip_normal.to_string(),
    };
    format!(
        "run {run_id} epoch {:>3}/{epochs}  train {:5.1}% ({:.3})  valid {:5.1}% ({:.3})  lr {:.4}  skip {skip}  {:6.1} s  {:7.0} img/s",
        r.epoch + 1,
        100.0 * r.train_acc,
        r.train_loss,
        100.0 * r.valid_acc,
        r.valid_loss,
        r.lr,
        r.wall_s,
        r.images_per_s
    )
}
