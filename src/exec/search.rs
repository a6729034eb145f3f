//! A search as a [`Pipeline`]: its epochs in `epochs` and the tables
//! hanging off it, its end a genotype and a valid accuracy.

use super::pipeline::Pipeline;
use super::{epoch_line, resuming_at};
use crate::arch::metrics::EpochRecord;
use crate::arch::space::SearchSpace;
use crate::config::ResolvedConfig;
use crate::nas::checkpoint::CheckpointState;
use crate::nas::run::{Observer, RunError, RunOptions, Started};
use crate::nas::search::{self, SearchOutcome};
use crate::store::{EpochOf, RunKind, RunResult};

/// The search kind, with what its records and lines need of the config.
pub struct Search {
    /// Its space: epoch records name cells, edges and ops by it.
    space: SearchSpace,
    /// Its batch size: a step consumes one batch from each half.
    batch: f64,
}

impl Pipeline for Search {
    type Cfg = ResolvedConfig;
    type Record = EpochRecord;
    type Outcome = SearchOutcome;
    type Saved = CheckpointState;
    const KIND: RunKind = RunKind::Search;
    const BAR: &'static str = "{prefix:>12} [{bar:30}] {pos}/{len} steps  {msg}  ETA {eta}";
    const LOG_FIRST_STEP: bool = true;

    fn of(cfg: &ResolvedConfig) -> Self {
        Search {
            space: SearchSpace::new(cfg.config().space),
            batch: f64::from(cfg.config().batch_size),
        }
    }

    fn fingerprint(cfg: &ResolvedConfig) -> String {
        cfg.fingerprint()
    }

    fn run(
        cfg: &ResolvedConfig,
        opts: &RunOptions,
        observer: &mut dyn Observer<EpochRecord>,
    ) -> Result<SearchOutcome, RunError> {
        search::run(cfg, opts, observer)
    }

    fn stored_epoch<'r>(&'r self, record: &'r EpochRecord) -> EpochOf<'r> {
        EpochOf::Search(&self.space, record)
    }

    fn stored_result(outcome: &SearchOutcome) -> RunResult<'_> {
        RunResult::Search {
            genotype: &outcome.genotype,
            final_valid_acc: outcome.final_valid_acc,
            wall_s: outcome.wall_s,
        }
    }

    fn started_line(&self, id: i64, at: &Started) -> Option<String> {
        (at.first_epoch > 0 || at.first_step > 0).then(|| {
            format!(
                "run {id}: {}",
                resuming_at(at.first_epoch, at.first_step, at.epochs)
            )
        })
    }

    fn running_message(&self, loss: f64, acc: f64, steps_per_s: f64) -> Option<String> {
        // Each step consumes one batch from each half.
        let images_per_s = 2.0 * self.batch * steps_per_s;
        Some(format!(
            "loss {loss:.3} acc {:.1}% {images_per_s:.0} img/s",
            100.0 * acc
        ))
    }

    fn epoch_line(&self, id: i64, epochs: u32, record: &EpochRecord) -> String {
        epoch_line(id, epochs, record)
    }
}
