//! A train run as a [`Pipeline`]: its epochs in `train_epochs`, its size
//! stored once the network is built, its end a test accuracy.

use tokio::runtime::Runtime;

use super::pipeline::{execute_run, Pipeline};
use super::RunEnd;
use crate::arch::metrics::TrainEpoch;
use crate::config::train::ResolvedTrain;
use crate::nas::run::{Observer, RunError, RunOptions, Started};
use crate::nas::train::{self, TrainCheckpoint, TrainOutcome};
use crate::store::{EpochOf, RunKind, RunResult, Store, StoreError};

/// A train run the caller has claimed and wants executed.
pub type TrainJob<'a> = super::Job<'a, ResolvedTrain>;

/// How a train run ended; the database already says so too.
pub type TrainEnd = RunEnd<TrainOutcome>;

/// Runs a claimed train run to its end and records the end.
pub fn execute_train(
    rt: &Runtime,
    store: &Store,
    job: TrainJob<'_>,
) -> Result<TrainEnd, StoreError> {
    execute_run::<Train>(rt, store, job)
}

/// The train-run kind.
pub struct Train;

impl Pipeline for Train {
    type Cfg = ResolvedTrain;
    type Record = TrainEpoch;
    type Outcome = TrainOutcome;
    type Saved = TrainCheckpoint;
    const KIND: RunKind = RunKind::Train;
    const BAR: &'static str = "{prefix:>12} [{bar:30}] {pos}/{len} steps  ETA {eta}";

    fn of(_cfg: &ResolvedTrain) -> Self {
        Train
    }

    fn fingerprint(cfg: &ResolvedTrain) -> String {
        cfg.fingerprint()
    }

    fn run(
        cfg: &ResolvedTrain,
        opts: &RunOptions,
        observer: &mut dyn Observer<TrainEpoch>,
    ) -> Result<TrainOutcome, RunError> {
        train::run(cfg, opts, observer)
    }

    fn stored_epoch<'r>(&'r self, record: &'r TrainEpoch) -> EpochOf<'r> {
        EpochOf::Train(record)
    }

    fn stored_result(outcome: &TrainOutcome) -> RunResult<'_> {
        RunResult::Train {
            final_test_acc: outcome.final_test_acc,
            wall_s: outcome.wall_s,
        }
    }

    fn on_started(&self, rt: &Runtime, store: &Store, id: i64, at: &Started) {
        let stored = async {
            if let Some(params) = at.params {
                store.set_params(id, params).await?;
            }
            if let Some(madds) = at.madds {
                store.set_madds(id, madds).await?;
            }
            Ok::<_, StoreError>(())
        };
        if let Err(err) = rt.block_on(stored) {
            tracing::warn!("storing the size of run {id} failed: {err}");
        }
    }

    fn started_line(&self, id: i64, at: &Started) -> Option<String> {
        let what = if at.first_epoch > 0 || at.first_step > 0 {
            super::resuming_at(at.first_epoch, at.first_step, at.epochs)
        } else {
            format!("{} epochs", at.epochs)
        };
        Some(format!(
            "train run {id}: {:.3} M parameters (without the auxiliary head), {what}",
            at.params.unwrap_or(0) as f64 / 1e6
        ))
    }

    fn epoch_line(&self, id: i64, epochs: u32, r: &TrainEpoch) -> String {
        let top5 = match (r.train_top5, r.test_top5) {
            (Some(train), Some(test)) => {
                format!("  top-5 {:5.1}% / {:5.1}%", 100.0 * train, 100.0 * test)
            }
            _ => String::new(),
        };
        let skipped = match r.skipped_images {
            Some(n) if n > 0 => format!("  {n} unreadable image(s) skipped"),
            _ => String::new(),
        };
        format!(
            "train run {id} epoch {:>3}/{epochs}  train {:5.1}% ({:.3})  test {:5.1}% ({:.3}){top5}  lr {:.4}  drop path {:.3}  {:6.1} s  {:7.0} img/s{skipped}",
            r.epoch + 1,
            100.0 * r.train_acc,
            r.train_loss,
            100.0 * r.test_acc,
            r.test_loss,
            r.lr,
            r.drop_path_prob,
            r.wall_s,
            r.images_per_s
        )
    }
}
