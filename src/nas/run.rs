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

use crate::nas::checkpoint::{self, SavedState};
use crate::nas::search::{maybe_hang, maybe_hold, seed_torch_for_step, FaultStops};

pub use crate::nas::search::SearchError as RunError;

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
    fn epoch(&mut self, record: &R) -> anyhow::Result<()>;
    /// Polled between steps: true stops the run at this safe point.
    fn should_stop(&mut self) -> bool {
        false
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
    fn check_stopped(&self, ep: &Self::Epoch, epoch: u32, step: usize) -> Result<(), RunError>;
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
    });
    let mut stops = FaultStops::from_env();
    let clock = Clock {
        before,
        started: Instant::now(),
    };
    for epoch in first_epoch..plan.epochs {
        let mut ep = stage.begin_epoch(epoch);
        let first = K::steps_done(&ep);
        let batches = K::batches(data, plan.seed, epoch, first);
        for (i, batch) in (first..plan.steps).zip(batches) {
            let global = stage.global_step(epoch, i, plan.steps);
            maybe_hold(global, plan.seed, || observer.should_stop());
            if observer.should_stop() || stops.stop_before(global) {
                return Err(stop_at(stage, &ep, (epoch, i), opts, &clock));
            }
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
    ep: &K::Epoch,
    (epoch, i): (u32, usize),
    opts: &RunOptions,
    clock: &Clock,
) -> RunError {
    if i == 0 {
        return RunError::Interrupted { epoch, step: None };
    }
    let saved = stage
        .check_stopped(ep, epoch, i)
        .and_then(|()| save(stage, opts, (epoch, Some(ep)), clock));
    match saved {
        Err(err) => err,
        Ok(()) => RunError::Interrupted {
            epoch,
            step: opts.checkpoint_dir.as_ref().map(|_| i as u32),
        },
    }
}

/// Checkpoints the stage after `epoch`, or within it (`ep`) at a stop,
/// when the run keeps checkpoints.
fn save<K: Stage>(
    stage: &K,
    opts: &RunOptions,
    (epoch, ep): (u32, Option<&K::Epoch>),
    clock: &Clock,
) -> Result<(), RunError> {
    if let Some(dir) = &opts.checkpoint_dir {
        let state = stage.saved(epoch, ep, clock.wall_s());
        checkpoint::save(dir, &state, &stage.tensors())?;
    }
    Ok(())
}
