//! Executing a claimed train run: from its row to `done`,
//! `failed` or `interrupted`, its epochs stored as they finish, under the
//! same rules as a search (`exec::execute`): records before checkpoints,
//! resume drops epochs the checkpoint does not know, a libtorch panic
//! fails the run instead of leaving it `running`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::runtime::Runtime;

use super::{prepare, run_guarded, unfinished, Display, Records, RunEnd};
use crate::config::train::ResolvedTrain;
use crate::nas::train::{self, TrainCheckpoint, TrainObserver, TrainOptions, TrainOutcome};
use crate::store::{Store, TrainEpoch};

/// A train run the caller has claimed and wants executed.
pub type TrainJob<'a> = super::Job<'a, ResolvedTrain>;

/// How a train run ended; the database already says so too.
pub type TrainEnd = RunEnd<TrainOutcome>;

/// Runs a claimed train run to its end and records the end.
pub fn execute_train(rt: &Runtime, store: &Store, job: TrainJob<'_>) -> anyhow::Result<TrainEnd> {
    let id = job.run_id;
    let fingerprint = job.cfg.fingerprint();
    if let Some(failed) =
        prepare::<TrainCheckpoint, _, _>(rt, store, &job, &fingerprint, Records::Train)?
    {
        return Ok(failed);
    }
    let mut observer = StoreTrainObserver::new(rt, store, id, job.stop.clone(), job.display);
    let opts = TrainOptions {
        device: job.device,
        checkpoint_dir: Some(job.checkpoint_dir.clone()),
        resume: job.resume,
    };
    let result = run_guarded(store, id, || train::run(job.cfg, &opts, &mut observer));
    observer.bar.finish_and_clear();
    match result {
        Ok(outcome) => {
            rt.block_on(store.finish_train_run(id, outcome.final_test_acc, outcome.wall_s))?;
            Ok(RunEnd::Done(outcome))
        }
        Err(err) => unfinished(rt, store, id, err),
    }
}

/// Stores each epoch, heartbeats, and shows progress.
struct StoreTrainObserver<'a> {
    rt: &'a Runtime,
    store: &'a Store,
    run_id: i64,
    epochs: u32,
    /// The epoch the bar shows (a resumed epoch starts part-way).
    epoch_shown: Option<u32>,
    bar: ProgressBar,
    stop: Arc<AtomicBool>,
    display: Display,
}

impl<'a> StoreTrainObserver<'a> {
    fn new(
        rt: &'a Runtime,
        store: &'a Store,
        run_id: i64,
        stop: Arc<AtomicBool>,
        display: Display,
    ) -> Self {
        let bar = if display == Display::Bar {
            ProgressBar::new(0)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} steps  ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        StoreTrainObserver {
            rt,
            store,
            run_id,
            epochs: 0,
            epoch_shown: None,
            bar,
            stop,
            display,
        }
    }
}

impl TrainObserver for StoreTrainObserver<'_> {
    fn started(
        &mut self,
        (first_epoch, first_step): (u32, usize),
        epochs: u32,
        steps: usize,
        params: i64,
    ) {
        self.epochs = epochs;
        if let Err(err) = self.rt.block_on(self.store.set_params(self.run_id, params)) {
            tracing::warn!("storing the size of run {} failed: {err}", self.run_id);
        }
        if self.display != Display::Quiet {
            let what = if first_epoch > 0 || first_step > 0 {
                super::resuming_at(first_epoch, first_step, epochs)
            } else {
                format!("{epochs} epochs")
            };
            crate::errln!(
                "train run {}: {:.3} M parameters (without the auxiliary head), {what}",
                self.run_id,
                params as f64 / 1e6
            );
        }
        self.bar.set_length(steps as u64);
    }

    fn step(&mut self, epoch: u32, step: usize) {
        if self.epoch_shown != Some(epoch) {
            self.epoch_shown = Some(epoch);
            self.bar.reset();
            self.bar
                .set_prefix(format!("epoch {}/{}", epoch + 1, self.epochs));
            if let Err(err) = self.rt.block_on(self.store.heartbeat(self.run_id)) {
                tracing::warn!("heartbeat of run {} failed: {err}", self.run_id);
            }
        }
        self.bar.set_position(step as u64);
    }

    fn epoch(&mut self, r: &TrainEpoch) -> anyhow::Result<()> {
        self.rt
            .block_on(self.store.record_train_epoch(self.run_id, r))?;
        if self.display != Display::Quiet {
            let line = format!(
                "train run {} epoch {:>3}/{}  train {:5.1}% ({:.3})  test {:5.1}% ({:.3})  lr {:.4}  drop path {:.3}  {:6.1} s  {:7.0} img/s",
                self.run_id,
                r.epoch + 1,
                self.epochs,
                100.0 * r.train_acc,
                r.train_loss,
                100.0 * r.test_acc,
                r.test_loss,
                r.lr,
                r.drop_path_prob,
                r.wall_s,
                r.images_per_s
            );
            self.bar.suspend(|| crate::outln!("{line}"));
        }
        Ok(())
    }

    fn should_stop(&mut self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}
