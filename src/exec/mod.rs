//! Executing runs: one claimed run from its database row to `done`,
//! `failed` or `interrupted` (shared by `ddsas search` and sweep workers),
//! with its epochs stored as they finish.

pub mod device;
pub mod evaluate;
pub mod guard;
pub mod orchestrator;
pub mod process;
pub mod slots;
pub mod train;
pub mod worker;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::runtime::Runtime;

use crate::config::ResolvedConfig;
use crate::nas::metrics::EpochRecord;
use crate::nas::search::{self, Observer, SearchError, SearchOptions, SearchOutcome};
use crate::nas::space::SearchSpace;
use crate::store::Store;

/// Exit status of a run stopped at a safe point (Ctrl-C, SIGTERM, SIGHUP,
/// cancel, its orchestrator gone): the run is `interrupted`, its checkpoint
/// kept. 128 + SIGINT, as shells expect; `search`, `sweep run` and workers
/// all use it.
pub const EXIT_INTERRUPTED: u8 = 130;

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

/// How a run ended; the database already says so too.
#[derive(Debug)]
pub enum RunEnd {
    /// Finished: status `done`.
    Done(SearchOutcome),
    /// Stopped at a safe point: status `interrupted`, checkpoint kept.
    Interrupted {
        /// Epoch that was running (0-based, as stored; messages add 1).
        epoch: u32,
    },
    /// Failed (divergence, bad data...): status `failed` with this message.
    Failed(String),
}

/// `checkpoints/<fingerprint>` in the database's folder.
pub fn default_checkpoint_dir(db: &Path, cfg: &ResolvedConfig) -> PathBuf {
    checkpoint_dir_of(db, &cfg.fingerprint())
}

/// `checkpoints/<fingerprint>` in the database's folder, for any run.
pub fn checkpoint_dir_of(db: &Path, fingerprint: &str) -> PathBuf {
    let parent = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parent.join("checkpoints").join(fingerprint)
}

/// Last epoch a checkpoint folder holds, if any (reads only state.json).
pub fn checkpoint_epoch(dir: &Path) -> Option<u32> {
    let text = std::fs::read(dir.join("state.json")).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&text).ok()?;
    value.get("epoch")?.as_u64().map(|e| e as u32)
}

/// Runs a claimed run to its end and records the end in the database.
/// Errors are only the database's own; a failing search is `RunEnd::Failed`.
pub fn execute(rt: &Runtime, store: &Store, job: Job<'_>) -> anyhow::Result<RunEnd> {
    let id = job.run_id;
    rt.block_on(store.set_checkpoint_path(id, &job.checkpoint_dir.display().to_string()))?;
    if job.resume {
        // The database may hold an epoch finished after the last checkpoint
        // (crash between the two writes): drop it, it is redone.
        rt.block_on(store.truncate_after(id, checkpoint_epoch(&job.checkpoint_dir)))?;
    } else {
        let _ = std::fs::remove_dir_all(&job.checkpoint_dir);
        rt.block_on(store.truncate_after(id, None))?;
    }
    let mut observer = StoreObserver::new(rt, store, id, job.cfg, job.stop.clone(), job.display);
    let opts = SearchOptions {
        device: job.device,
        checkpoint_dir: Some(job.checkpoint_dir.clone()),
        resume: job.resume,
    };
    let result = guard::catch(|| search::run(job.cfg, &opts, &mut observer))
        .unwrap_or_else(|message| Err(SearchError::Internal(message)));
    observer.bar.finish_and_clear();
    Ok(match result {
        Ok(outcome) => {
            rt.block_on(store.finish_run(
                id,
                &outcome.genotype,
                outcome.final_valid_acc,
                outcome.wall_s,
            ))?;
            RunEnd::Done(outcome)
        }
        Err(SearchError::Interrupted { epoch }) => {
            rt.block_on(store.interrupt_run(id))?;
            RunEnd::Interrupted { epoch }
        }
        Err(err) => {
            let message = err.to_string();
            rt.block_on(store.fail_run(id, &message))?;
            RunEnd::Failed(message)
        }
    })
}

/// Stores each epoch (before the checkpoint is written), heartbeats, and
/// shows progress.
struct StoreObserver<'a> {
    rt: &'a Runtime,
    store: &'a Store,
    run_id: i64,
    batch: f64,
    space: SearchSpace,
    epochs: u32,
    bar: ProgressBar,
    stop: Arc<AtomicBool>,
    display: Display,
    /// Whether the first step of this process was logged (`Display::Lines`:
    /// a timestamp for measuring a sweep worker's start-up overhead).
    first_step_logged: bool,
}

impl<'a> StoreObserver<'a> {
    fn new(
        rt: &'a Runtime,
        store: &'a Store,
        run_id: i64,
        cfg: &ResolvedConfig,
        stop: Arc<AtomicBool>,
        display: Display,
    ) -> Self {
        let bar = if display == Display::Bar {
            ProgressBar::new(0)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {pos}/{len} steps  {msg}  ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        StoreObserver {
            rt,
            store,
            run_id,
            batch: f64::from(cfg.config().batch_size),
            space: SearchSpace::new(cfg.config().space),
            epochs: cfg.config().epochs,
            bar,
            stop,
            display,
            first_step_logged: false,
        }
    }
}

impl Observer for StoreObserver<'_> {
    fn started(&mut self, first_epoch: u32, epochs: u32, steps: usize) {
        if first_epoch > 0 && self.display != Display::Quiet {
            crate::errln!(
                "run {}: resuming at epoch {} of {epochs}",
                self.run_id,
                first_epoch + 1
            );
        }
        self.bar.set_length(steps as u64);
    }

    fn step(&mut self, epoch: u32, step: usize, running: Option<(f64, f64)>) {
        if step == 1 && !self.first_step_logged && self.display == Display::Lines {
            self.first_step_logged = true;
            let now = crate::store::unix_now();
            crate::outln!(
                "run {}: first step of epoch {} done at {now:.3}",
                self.run_id,
                epoch + 1
            );
        }
        if step == 1 {
            self.bar.reset();
            self.bar
                .set_prefix(format!("epoch {}/{}", epoch + 1, self.epochs));
            if let Err(err) = self.rt.block_on(self.store.heartbeat(self.run_id)) {
                tracing::warn!("heartbeat of run {} failed: {err}", self.run_id);
            }
        }
        if let Some((loss, acc)) = running {
            // Each step consumes one batch from each half.
            let images_per_s = 2.0 * self.batch * self.bar.per_sec();
            self.bar.set_message(format!(
                "loss {loss:.3} acc {:.1}% {images_per_s:.0} img/s",
                100.0 * acc
            ));
        }
        self.bar.set_position(step as u64);
    }

    fn epoch(&mut self, r: &EpochRecord) -> anyhow::Result<()> {
        self.rt
            .block_on(self.store.record_epoch(self.run_id, &self.space, r))?;
        if self.display != Display::Quiet {
            let line = epoch_line(self.run_id, self.epochs, r);
            self.bar.suspend(|| crate::outln!("{line}"));
        }
        Ok(())
    }

    fn should_stop(&mut self) -> bool {
        self.stop.load(Ordering::SeqCst)
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
