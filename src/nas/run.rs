//! The epoch loop every kind of run shares (a search, a train run, and the
//! kinds to come): resume from a checkpoint, steps with their stop points
//! and fault hooks, one record per epoch handed to an [`Observer`] (which
//! stores it) before the epoch's checkpoint is written.
//!
//! What differs per kind (its data, its step, its record, its checkpoint)
//! is a [`Stage`]; this loop owns the order of things, which is what makes
//! a resumed run record the numbers of an uninterrupted one: libtorch is
//! seeded before every step from (seed, epoch, step), and a stop part-way
//! through an epoch checkpoints the epoch's progress.

use std::path::PathBuf;
use std::time::Instant;

use tch::{Device, Tensor};

use crate::data::DataError;
use crate::nas::checkpoint::{self, CheckpointError, SavedState};
use crate::nas::faults::{maybe_hang, maybe_hold, FaultStops};

/// Why a run (of any kind) stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The loss became NaN or infinite.
    #[error("diverged: the training loss became {loss} at epoch {}, step {} of the epoch (weight step {global_step}); lower w_lr or arch_lr, or tighten grad_clip", .epoch + 1, .step + 1)]
    Diverged {
        /// Epoch (0-based, as stored; the message counts from 1 like the
        /// progress lines and `runs show`).
        epoch: u32,
        /// Step within the epoch (0-based; the message counts from 1).
        step: usize,
        /// Weight step over the run (1-based).
        global_step: u64,
        /// The bad value.
        loss: f64,
    },
    /// The dataset could not be loaded.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The observer failed to store an epoch.
    #[error("storing epoch {} failed: {source}", .epoch + 1)]
    Store {
        /// Epoch.
        epoch: u32,
        /// Why the observer could not keep it.
        source: RecordError,
    },
    /// The observer asked to stop (Ctrl-C, cancellation, Slurm's warning).
    #[error("{}", interrupted_text(*.epoch, *.step))]
    Interrupted {
        /// Epoch that was running (0-based).
        epoch: u32,
        /// Steps of it done and checkpointed, when a checkpoint was written
        /// at the stop: a resume goes on from there. None: it goes on from
        /// the last epoch checkpoint.
        step: Option<u32>,
    },
    /// A dataset too small for the batch size.
    #[error(
        "the search halves hold {images} images, fewer than one batch of {batch}; lower batch_size"
    )]
    TooSmall {
        /// Images in the smaller half.
        images: usize,
        /// Batch size.
        batch: i64,
    },
    /// A data-parallel peer stopped answering (it died, hung, or its
    /// host went away): the group's one line naming it. The run ends
    /// `interrupted`; a resume goes on from the last checkpoint.
    #[error("{0}")]
    PeerLost(String),
    /// libtorch failed (out of memory, an op it refuses); caught by the
    /// caller, which keeps the run from being left `running`.
    #[error("{0}")]
    Internal(String),
}

/// Why an [`Observer`] could not keep an epoch. The loop stops either way;
/// the caller tells a full disk (the run stays resumable once space is
/// freed) from any other failure (the run fails). The cause is the
/// observer's own error (the store's, in `exec`), which `nas` does not
/// name.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The disk of the records is full.
    #[error(transparent)]
    NoSpace(Box<dyn std::error::Error + Send + Sync>),
    /// Anything else.
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

/// Where a stopped run goes on from, in words (epochs counted from 1).
pub fn interrupted_text(epoch: u32, step: Option<u32>) -> String {
    match step {
        Some(step) => format!(
            "interrupted at step {step} of epoch {}, checkpointed there; a resume goes on from that step",
            epoch + 1
        ),
        None => format!(
            "interrupted before epoch {} finished; the last checkpoint is kept",
            epoch + 1
        ),
    }
}

impl RunError {
    /// The whole text behind the one-line message (libtorch's frames), for
    /// the run's log; None when the message is all there is.
    pub fn detail(&self) -> Option<&str> {
        match self {
            RunError::Checkpoint(e) => e.detail(),
            _ => None,
        }
    }
}

/// Derives an independent 64-bit seed from (seed, epoch, stream).
pub fn derive_seed(seed: u64, epoch: u32, stream: u64) -> u64 {
    let mut z = seed ^ (u64::from(epoch) << 32) ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// libtorch's generator is seeded before every step from (seed, epoch,
/// step): tch cannot read the generator's state back, so this is what lets
/// a run stopped at any step resume with the same random draws (GDAS's
/// Gumbel noise, cutout, drop path).
pub(crate) fn seed_torch_for_step(seed: u64, epoch: u32, step: usize) {
    tch::manual_seed(derive_seed(derive_seed(seed, epoch, 1), step as u32, 5) as i64);
}

/// Peak resident memory of this process, in bytes.
pub fn peak_rss_bytes() -> Option<i64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes into the struct we pass.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: getrusage succeeded, so the struct is initialised.
    let usage = unsafe { usage.assume_init() };
    Some(usage.ru_maxrss * 1024)
}

/// Where and how a run goes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Device to train on.
    pub device: Device,
    /// Folder of the checkpoints (None: no checkpoints).
    pub checkpoint_dir: Option<PathBuf>,
    /// Continue from the checkpoint in `checkpoint_dir` if there is one.
    pub resume: bool,
}

/// Where a run starts (or resumes), told to the observer once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Started {
    /// First epoch to run (0-based).
    pub first_epoch: u32,
    /// First step of it (0 unless resumed part-way through it).
    pub first_step: usize,
    /// Epochs of the whole run.
    pub epochs: u32,
    /// Steps per epoch.
    pub steps: usize,
    /// Parameters of the network trained, for kinds that report it.
    pub params: Option<i64>,
    /// Multiply-adds of its forward pass for one image, likewise.
    pub madds: Option<i64>,
}

/// What a run tells the outside world; `epoch` must persist the record
/// before returning (the checkpoint is written after it).
pub trait Observer<R> {
    /// The run is about to go on from `at`.
    fn started(&mut self, _at: &Started) {}
    /// Progress within an epoch (`step` counted from 1); `running` carries
    /// the mean loss and accuracy so far when the kind read them.
    fn step(&mut self, _epoch: u32, _step: usize, _running: Option<(f64, f64)>) {}
    /// A finished epoch, to be stored.
    fn epoch(&mut self, record: &R) -> Result<(), RecordError>;
    /// Polled between steps: true stops the run at this safe point.
    fn should_stop(&mut self) -> bool {
        false
    }
    /// Whether a stop was asked of this process itself, polled by a test
    /// hook's wait: [`should_stop`](Self::should_stop), except where that
    /// agrees with other processes (a data-parallel rank's is a
    /// collective, which a rank waiting alone must not enter).
    fn stop_asked_here(&mut self) -> bool {
        self.should_stop()
    }
}

/// The fixed shape of a run, read once by the loop.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Epochs of the whole run.
    pub epochs: u32,
    /// Steps per epoch.
    pub steps: usize,
    /// The run's seed (fault hooks, per-step seeding).
    pub seed: u64,
    /// Fingerprint its checkpoints carry.
    pub fingerprint: String,
}

/// The parts of a run that differ per kind; [`run_epochs`] calls them in
/// its fixed order.
pub trait Stage {
    /// What the batches are drawn from (the loaders), kept apart from the
    /// stage so that an epoch's batches can borrow it while a step changes
    /// the stage.
    type Data;
    /// What one step consumes.
    type Batch;
    /// One epoch's running state (sums, generators), checkpointed at a
    /// stop part-way through it.
    type Epoch;
    /// What a finished epoch records.
    type Record;
    /// The non-tensor part of the kind's checkpoint.
    type Saved: SavedState;
    /// What a finished run produced.
    type Outcome;

    /// Epochs, steps, seed and fingerprint.
    fn plan(&self) -> Plan;
    /// Parameters of the network, for kinds that report it.
    fn params(&self) -> Option<i64> {
        None
    }
    /// Multiply-adds of the network for one image, for kinds that report
    /// it.
    fn madds(&self) -> Option<i64> {
        None
    }
    /// The batches of `epoch` from step `first` on.
    fn batches<'d>(
        data: &'d Self::Data,
        seed: u64,
        epoch: u32,
        first: usize,
    ) -> impl Iterator<Item = Self::Batch> + 'd;
    /// Takes up a checkpoint's state; returns its wall seconds so far.
    fn restore(&mut self, saved: Self::Saved, tensors: Vec<(String, Tensor)>) -> f64;
    /// Starts `epoch`, or takes it up where the restored checkpoint
    /// stopped part-way through it.
    fn begin_epoch(&mut self, epoch: u32) -> Self::Epoch;
    /// Steps of the epoch already done (when it was resumed part-way).
    fn steps_done(ep: &Self::Epoch) -> usize;
    /// The 1-based number over the run of the weight step about to run
    /// as step `step` of `epoch` (what the fault hooks count).
    fn global_step(&self, epoch: u32, step: usize, steps: usize) -> u64 {
        steps as u64 * u64::from(epoch) + step as u64 + 1
    }
    /// One step; returns the running (loss, accuracy) when it read them.
    fn step(
        &mut self,
        ep: &mut Self::Epoch,
        batch: Self::Batch,
        epoch: u32,
        step: usize,
    ) -> Result<Option<(f64, f64)>, RunError>;
    /// At a stop after `step` steps of the epoch: fails if the steps since
    /// the last check diverged, so that no diverged state is checkpointed.
    /// A data-parallel stage also combines the ranks' running sums here,
    /// so that the checkpoint rank 0 writes holds the whole epoch's, and a
    /// stage takes from `data` what its pass so far counted (unreadable
    /// images skipped).
    fn check_stopped(
        &self,
        ep: &mut Self::Epoch,
        data: &Self::Data,
        epoch: u32,
        step: usize,
    ) -> Result<(), RunError>;
    /// Ends the epoch: evaluates and returns its record.
    fn end_epoch(
        &mut self,
        ep: Self::Epoch,
        data: &Self::Data,
        epoch: u32,
    ) -> Result<Self::Record, RunError>;
    /// The checkpoint state after `epoch`, or within it (`ep`) at a stop.
    fn saved(&self, epoch: u32, ep: Option<&Self::Epoch>, wall_s: f64) -> Self::Saved;
    /// Every tensor the checkpoint keeps, named.
    fn tensors(&self) -> Vec<(String, Tensor)>;
    /// The result of the finished run.
    fn outcome(&mut self, epochs_run: u32, wall_s: f64) -> Self::Outcome;
}

/// Wall seconds of a run, the parts before a resume included.
struct Clock {
    before: f64,
    started: Instant,
}

impl Clock {
    fn wall_s(&self) -> f64 {
        self.before + self.started.elapsed().as_secs_f64()
    }
}

/// Runs (or resumes) `stage` to its last epoch.
pub fn run_epochs<K: Stage>(
    stage: &mut K,
    data: &K::Data,
    opts: &RunOptions,
    observer: &mut dyn Observer<K::Record>,
) -> Result<K::Outcome, RunError> {
    let plan = stage.plan();
    let (first_epoch, first_step, before) = resume(stage, &plan, opts)?;
    observer.started(&Started {
        first_epoch,
        first_step,
        epochs: plan.epochs,
        steps: plan.steps,
        params: stage.params(),
        madds: stage.madds(),
    });
    let mut stops = FaultStops::from_env();
    let clock = Clock {
        before,
        started: Instant::now(),
    };
    for epoch in first_epoch..plan.epochs {
        let mut ep = stage.begin_epoch(epoch);
        let first = K::steps_done(&ep);
        let mut batches = K::batches(data, plan.seed, epoch, first);
        for i in first..plan.steps {
            let global = stage.global_step(epoch, i, plan.steps);
            maybe_hold(global, plan.seed, || observer.stop_asked_here());
            if observer.should_stop() || stops.stop_before(global) {
                return Err(stop_at(stage, &mut ep, data, (epoch, i), opts, &clock));
            }
            // Taken after the stop check: a stop before step i leaves
            // batch i to the resumed run (and its count of unreadable
            // images with it).
            let Some(batch) = batches.next() else {
                break;
            };
            crate::nas::progress::tick();
            maybe_hang(global);
            seed_torch_for_step(plan.seed, epoch, i);
            let running = stage.step(&mut ep, batch, epoch, i)?;
            observer.step(epoch, i + 1, running);
        }
        let record = stage.end_epoch(ep, data, epoch)?;
        observer
            .epoch(&record)
            .map_err(|source| RunError::Store { epoch, source })?;
        save(stage, opts, (epoch, None), &clock)?;
    }
    Ok(stage.outcome(plan.epochs - first_epoch, clock.wall_s()))
}

/// The first epoch and step to run and the wall seconds before them: a
/// fresh start, or the newest good checkpoint taken up by `stage`.
fn resume<K: Stage>(
    stage: &mut K,
    plan: &Plan,
    opts: &RunOptions,
) -> Result<(u32, usize, f64), RunError> {
    let (Some(dir), true) = (&opts.checkpoint_dir, opts.resume) else {
        return Ok((0, 0, 0.0));
    };
    let Some((state, tensors)) = checkpoint::load::<K::Saved>(dir, &plan.fingerprint, opts.device)?
    else {
        return Ok((0, 0, 0.0));
    };
    let (epoch, step) = state.position().resume_at();
    let wall_before = stage.restore(state, tensors);
    Ok((epoch, step, wall_before))
}

/// The error a stop before step `i` of `epoch` ends the run with, after
/// checkpointing the epoch's progress (unless no step of it ran: then the
/// last epoch's checkpoint is where a resume goes on).
fn stop_at<K: Stage>(
    stage: &K,
    ep: &mut K::Epoch,
    data: &K::Data,
    (epoch, i): (u32, usize),
    opts: &RunOptions,
    clock: &Clock,
) -> RunError {
    if i == 0 {
        return RunError::Interrupted { epoch, step: None };
    }
    let saved = stage
        .check_stopped(ep, data, epoch, i)
        .and_then(|()| save(stage, opts, (epoch, Some(&*ep)), clock));
    match saved {
        Err(err) => err,
        Ok(()) => RunError::Interrupted {
            epoch,
            step: opts.checkpoint_dir.as_ref().map(|_| i as u32),
        },
    }
}

/// Checkpoints the stage after `epoch`, or within it (`ep`) at a stop,
/// when the run keeps checkpoints; of a data-parallel run's ranks, which
/// hold the same state, rank 0 alone writes.
fn save<K: Stage>(
    stage: &K,
    opts: &RunOptions,
    (epoch, ep): (u32, Option<&K::Epoch>),
    clock: &Clock,
) -> Result<(), RunError> {
    if let Some(dir) = &opts.checkpoint_dir {
        let state = stage.saved(epoch, ep, clock.wall_s());
        if crate::nas::parallel::world().writes() {
            checkpoint::save(dir, &state, &stage.tensors())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::nas::checkpoint::Position;

    /// A stage that sums its batches, weighted by epoch: enough state to
    /// tell a resumed run from an uninterrupted one, with no network.
    struct Summing {
        sum: f64,
        resumed: Option<f64>,
    }

    /// Its checkpoint.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct SumState {
        fingerprint: String,
        epoch: u32,
        step: Option<u32>,
        epoch_sum: f64,
        wall_s: f64,
        tensors_file: String,
    }

    impl SavedState for SumState {
        fn fingerprint(&self) -> &str {
            &self.fingerprint
        }
        fn position(&self) -> Position {
            Position {
                epoch: self.epoch,
                step: self.step,
            }
        }
        fn tensors_file(&self) -> &str {
            &self.tensors_file
        }
        fn with_tensors_file(&self, name: String) -> Self {
            SumState {
                tensors_file: name,
                ..self.clone()
            }
        }
    }

    /// Steps done and the sum of one epoch.
    struct SumEpoch {
        steps_done: usize,
        sum: f64,
    }

    impl Stage for Summing {
        type Data = Vec<f64>;
        type Batch = f64;
        type Epoch = SumEpoch;
        type Record = (u32, f64);
        type Saved = SumState;
        type Outcome = f64;

        fn plan(&self) -> Plan {
            Plan {
                epochs: 3,
                steps: 4,
                seed: 1,
                fingerprint: "fp".into(),
            }
        }
        fn batches<'d>(
            data: &'d Vec<f64>,
            _seed: u64,
            _epoch: u32,
            first: usize,
        ) -> impl Iterator<Item = f64> + 'd {
            data.iter().copied().skip(first)
        }
        fn restore(&mut self, saved: SumState, tensors: Vec<(String, Tensor)>) -> f64 {
            self.sum = tensors[0].1.double_value(&[]);
            self.resumed = saved.step.map(|_| saved.epoch_sum);
            saved.wall_s
        }
        fn begin_epoch(&mut self, _epoch: u32) -> SumEpoch {
            let sum = self.resumed.take();
            SumEpoch {
                steps_done: sum.map_or(0, |_| 2),
                sum: sum.unwrap_or(0.0),
            }
        }
        fn steps_done(ep: &SumEpoch) -> usize {
            ep.steps_done
        }
        fn step(
            &mut self,
            ep: &mut SumEpoch,
            batch: f64,
            epoch: u32,
            step: usize,
        ) -> Result<Option<(f64, f64)>, RunError> {
            ep.steps_done = step + 1;
            ep.sum += batch * f64::from(epoch + 1);
            Ok(None)
        }
        fn check_stopped(
            &self,
            _: &mut SumEpoch,
            _: &Vec<f64>,
            _: u32,
            _: usize,
        ) -> Result<(), RunError> {
            Ok(())
        }
        fn end_epoch(
            &mut self,
            ep: SumEpoch,
            _: &Vec<f64>,
            epoch: u32,
        ) -> Result<(u32, f64), RunError> {
            self.sum += ep.sum;
            Ok((epoch, self.sum))
        }
        fn saved(&self, epoch: u32, ep: Option<&SumEpoch>, wall_s: f64) -> SumState {
            SumState {
                fingerprint: "fp".into(),
                epoch,
                step: ep.map(|ep| ep.steps_done as u32),
                epoch_sum: ep.map_or(0.0, |ep| ep.sum),
                wall_s,
                tensors_file: String::new(),
            }
        }
        fn tensors(&self) -> Vec<(String, Tensor)> {
            vec![("sum".into(), Tensor::from(self.sum))]
        }
        fn outcome(&mut self, _epochs_run: u32, _wall_s: f64) -> f64 {
            self.sum
        }
    }

    /// Keeps the records; stops before the `stop_at`-th step it sees.
    struct Keep {
        records: Vec<(u32, f64)>,
        steps: usize,
        stop_at: Option<usize>,
    }

    impl Observer<(u32, f64)> for Keep {
        fn step(&mut self, _: u32, _: usize, _: Option<(f64, f64)>) {
            self.steps += 1;
        }
        fn epoch(&mut self, record: &(u32, f64)) -> Result<(), RecordError> {
            self.records.push(*record);
            Ok(())
        }
        fn should_stop(&mut self) -> bool {
            self.stop_at == Some(self.steps)
        }
    }

    fn run(
        dir: &std::path::Path,
        resume: bool,
        stop_at: Option<usize>,
    ) -> (Keep, Result<f64, RunError>) {
        let opts = RunOptions {
            device: Device::Cpu,
            checkpoint_dir: Some(dir.to_owned()),
            resume,
        };
        let mut stage = Summing {
            sum: 0.0,
            resumed: None,
        };
        let mut keep = Keep {
            records: Vec::new(),
            steps: 0,
            stop_at,
        };
        let data = vec![1.0, 2.0, 3.0, 4.0];
        let result = run_epochs(&mut stage, &data, &opts, &mut keep);
        (keep, result)
    }

    /// A run stopped part-way through an epoch checkpoints that step, and
    /// its resume records what an uninterrupted run records.
    #[test]
    fn a_run_stopped_within_an_epoch_resumes_to_the_same_records() {
        let whole = tempfile::tempdir().unwrap();
        let (uninterrupted, outcome) = run(whole.path(), false, None);
        assert_eq!(outcome.unwrap(), 10.0 + 20.0 + 30.0);
        let dir = tempfile::tempdir().unwrap();
        let (first, stopped) = run(dir.path(), false, Some(6));
        assert!(matches!(
            stopped,
            Err(RunError::Interrupted {
                epoch: 1,
                step: Some(2)
            })
        ));
        let (rest, outcome) = run(dir.path(), true, None);
        assert_eq!(outcome.unwrap(), 60.0);
        let records: Vec<_> = first.records.into_iter().chain(rest.records).collect();
        assert_eq!(records, uninterrupted.records);
    }

    /// A stop before an epoch's first step writes nothing: the resume
    /// goes on from the last finished epoch.
    #[test]
    fn a_stop_before_an_epochs_first_step_keeps_the_epoch_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let (first, stopped) = run(dir.path(), false, Some(4));
        assert!(matches!(
            stopped,
            Err(RunError::Interrupted {
                epoch: 1,
                step: None
            })
        ));
        assert_eq!(first.records, [(0, 10.0)]);
        let (rest, outcome) = run(dir.path(), true, None);
        assert_eq!(outcome.unwrap(), 60.0);
        assert_eq!(rest.records, [(1, 30.0), (2, 60.0)]);
    }
}
