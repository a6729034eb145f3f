//! Training a searched cell from scratch (appendix B.1): the
//! evaluation network on the whole training set, tested on the test set
//! after every epoch, SGD with a cosine (or, after a warm-up, linear)
//! learning rate, label smoothing where the recipe asks, drop path raised
//! linearly over the epochs, cutout on top of the dataset's augmentation,
//! and a checkpoint after every epoch; a [`Stage`] of the run loop
//! ([`crate::nas::run`]).
//!
//! Every random source is seeded from the run's seed per epoch (the
//! loader) or per step (libtorch's, for cutout and drop path), and the
//! optimiser state and the epoch's running sums are in the checkpoint, so
//! on CPU a run resumed from any epoch, or from the step where it was
//! stopped, records the numbers of an uninterrupted one.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::arch::madds::multiply_adds;
use crate::arch::metrics::TrainEpoch;
use crate::arch::shape::EvalShape;
use crate::config::train::{LrSchedule, ResolvedTrain, TrainConfig};
use crate::data::imagenet::{self, ColorJitter, ImageNetLoader, Transforms, MEAN, STD};
use crate::data::{self, Augment, DatasetKind, Loader};
use crate::nas::checkpoint::{Position, SavedState};
use crate::nas::evalnet::{cross_entropy, EvalNetwork, Trainer};
use crate::nas::loss::{top_k_correct, TOP5};
use crate::nas::parallel::{self, Combine, SharedStop, World};
use crate::nas::run::{
    derive_seed, peak_rss_bytes, run_epochs, seed_torch_for_step, Observer, Plan, RunError,
    RunOptions, Stage,
};

/// Asks every rank to print a checksum of its trained parameters at the
/// end (the data-parallel tests compare them across ranks).
pub const CHECKSUM_ENV: &str = "DDSAS_PARAM_CHECKSUM";

/// How a finished training ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOutcome {
    /// Test accuracy after the last epoch.
    pub final_test_acc: f64,
    /// Best test accuracy over the epochs.
    pub best_test_acc: f64,
    /// Parameters without the auxiliary head.
    pub params: i64,
    /// Training wall seconds, resumed parts included.
    pub wall_s: f64,
}

/// The non-tensor part of a training checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainCheckpoint {
    /// Fingerprint of the train run.
    pub fingerprint: String,
    /// Last completed epoch; with `partial`, the epoch in progress.
    pub epoch: u32,
    /// Best test accuracy so far.
    pub best_test_acc: f64,
    /// Training wall seconds so far.
    pub wall_s: f64,
    /// File name of the tensors.
    pub tensors_file: String,
    /// The epoch's progress when the checkpoint was written part-way
    /// through it; absent after a whole epoch (and in older checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<TrainPartial>,
}

/// A training epoch's running sums at the step where it was stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainPartial {
    /// Steps of the epoch done.
    pub steps_done: u32,
    /// Sum of minibatch loss times minibatch size so far.
    pub loss_sum: f64,
    /// Correct predictions so far.
    pub correct: i64,
    /// Labels among the five largest logits so far; absent with fewer
    /// than five classes (and in checkpoints from before top-5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct5: Option<i64>,
    /// Images trained on so far.
    pub seen: i64,
    /// Training seconds of the epoch so far.
    pub train_s: f64,
    /// Unreadable images the epoch's training pass skipped so far, so
    /// that a resumed epoch records them all (0 in older checkpoints).
    #[serde(default)]
    pub skipped: i64,
}

impl SavedState for TrainCheckpoint {
    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
    fn position(&self) -> Position {
        match &self.partial {
            None => Position::finished(self.epoch),
            Some(p) => Position::within(self.epoch, p.steps_done),
        }
    }
    fn tensors_file(&self) -> &str {
        &self.tensors_file
    }
    fn with_tensors_file(&self, name: String) -> Self {
        TrainCheckpoint {
            tensors_file: name,
            ..self.clone()
        }
    }
}

/// The learning rate of `epoch` under the config's schedule.
pub fn learning_rate(cfg: &ResolvedTrain, epoch: u32) -> f64 {
    let c = cfg.config();
    let schedule = Schedule {
        lr: c.lr(),
        lr_min: c.lr_min,
        epochs: c.epochs(),
        warmup: c.warmup_epochs(),
        kind: c.lr_schedule(),
    };
    schedule.at(epoch)
}

/// A learning-rate schedule, set per epoch as DARTS-family code sets it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// The rate after the warm-up.
    pub lr: f64,
    /// The rate the fall ends at (after the last epoch).
    pub lr_min: f64,
    /// Epochs of the run.
    pub epochs: u32,
    /// Warm-up epochs (fewer than `epochs`).
    pub warmup: u32,
    /// The fall after the warm-up.
    pub kind: LrSchedule,
}

impl Schedule {
    /// The rate of `epoch`: during the warm-up, linear from lr/5 at its
    /// first epoch to lr at its last (with 5 epochs, lr·(epoch+1)/5, as
    /// DARTS-family ImageNet code has it); then from lr at the first epoch
    /// after it, cosine-annealed (DARTS's scheduler; without warm-up
    /// exactly the rate of the CIFAR recipe) or falling linearly, towards
    /// lr_min after the last epoch.
    pub fn at(&self, epoch: u32) -> f64 {
        if epoch < self.warmup {
            let ramp = if self.warmup > 1 {
                f64::from(epoch) / f64::from(self.warmup - 1)
            } else {
                0.0
            };
            return self.lr * (0.2 + 0.8 * ramp);
        }
        let t = f64::from(epoch - self.warmup) / f64::from(self.epochs - self.warmup);
        match self.kind {
            LrSchedule::Cosine => {
                self.lr_min
                    + (self.lr - self.lr_min) * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0
            }
            LrSchedule::Linear => self.lr_min + (self.lr - self.lr_min) * (1.0 - t),
        }
    }
}

/// The drop-path probability of `epoch`: raised linearly from 0.
pub fn drop_path_prob(cfg: &ResolvedTrain, epoch: u32) -> f64 {
    let c = cfg.config();
    c.drop_path_prob() * f64::from(epoch) / f64::from(c.epochs())
}

/// Zeroes a `length` x `length` square of every image at a uniformly
/// drawn centre, clipped at the borders (DeVries and Taylor's cutout, as
/// DARTS applies it).
pub fn cutout(x: &Tensor, length: i64) -> Tensor {
    if length <= 0 {
        return x.shallow_clone();
    }
    let size = x.size();
    let (n, h, w) = (size[0], size[2], size[3]);
    let options = (Kind::Int64, x.device());
    let cy = Tensor::randint(h, [n, 1, 1, 1], options);
    let cx = Tensor::randint(w, [n, 1, 1, 1], options);
    let half = length / 2;
    let rows = Tensor::arange(h, options).view([1, 1, h, 1]);
    let cols = Tensor::arange(w, options).view([1, 1, 1, w]);
    let in_rows = rows
        .ge_tensor(&(&cy - half))
        .logical_and(&rows.lt_tensor(&(&cy + half)));
    let in_cols = cols
        .ge_tensor(&(&cx - half))
        .logical_and(&cols.lt_tensor(&(&cx + half)));
    x.masked_fill(&in_rows.logical_and(&in_cols), 0.0)
}

/// Trains (or resumes) the run of `cfg`.
pub fn run(
    cfg: &ResolvedTrain,
    opts: &RunOptions,
    observer: &mut dyn Observer<TrainEpoch>,
) -> Result<TrainOutcome, RunError> {
    let c = cfg.config();
    let device = opts.device;
    let (loaders, classes) = TrainData::open(cfg, device)?;
    let mut steps = loaders.batches_per_epoch();
    if let Some(cap) = c.steps_per_epoch {
        steps = steps.min(cap as usize);
    }
    if steps == 0 {
        return Err(RunError::TooSmall {
            images: loaders.train_images(),
            batch: i64::from(c.batch_size()),
        });
    }
    tch::manual_seed(c.seed as i64);
    let shape = EvalShape {
        classes,
        ..c.eval_shape()
    };
    let world = parallel::world();
    let global_batch = i64::from(c.batch_size()).min(loaders.train_images() as i64);
    if global_batch < 2 * world.size as i64 {
        return Err(RunError::Internal(format!(
            "a global batch of {global_batch} cannot be split into {} shards of 2 images or more; raise batch_size or lower --nproc",
            world.size
        )));
    }
    parallel::set_sync_batch_norm(c.sync_bn && world.size > 1);
    let net = EvalNetwork::new(cfg.genotype(), shape, device);
    parallel::combine(&mut sorted_variables(&net, |_| true), Combine::FromRankZero)?;
    let params = net.params_without_aux();
    let madds = multiply_adds(cfg.genotype(), &shape);
    let trainer = Trainer::new(
        net,
        [
            c.momentum,
            c.weight_decay(),
            c.grad_clip,
            c.auxiliary_weight,
        ],
    )
    .with_label_smoothing(c.label_smoothing());
    let mut stage = TrainStage {
        cfg: cfg.clone(),
        trainer,
        params,
        madds,
        steps,
        device,
        best: f64::NEG_INFINITY,
        last_test_acc: f64::NAN,
        resumed: None,
        world,
        global_batch,
        top5: classes >= TOP5,
    };
    // One process too: its stop is its own observer's or the time limit's.
    let mut shared = SharedStop {
        inner: observer,
        lost: None,
    };
    let result = run_epochs(&mut stage, &loaders, opts, &mut shared);
    match (result, shared.lost) {
        (Err(RunError::Interrupted { .. }), Some(lost)) => Err(lost),
        (result, _) => result,
    }
}

/// The network's variables whose `requires_grad` passes `keep`, ordered
/// by name: the same order on every rank (the store's map is not).
fn sorted_variables(net: &EvalNetwork, keep: impl Fn(bool) -> bool) -> Vec<Tensor> {
    let mut named: Vec<(String, Tensor)> = net
        .vs
        .variables()
        .into_iter()
        .filter(|(_, t)| keep(t.requires_grad()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named.into_iter().map(|(_, t)| t).collect()
}

/// The loaders of a train run: the training set, augmented, and the test
/// set; held in memory (digits, CIFAR) or streamed from ImageNet's folder.
pub enum TrainData {
    /// A dataset small enough to hold, batched where it lies.
    InMemory {
        /// The training set, augmented.
        train: Loader,
        /// The test set.
        test: Loader,
    },
    /// ImageNet: decoded on worker threads ahead of the step, on the CPU,
    /// moved to the device batch by batch.
    Folder {
        /// The training split, randomly resized, cropped and jittered.
        train: ImageNetLoader,
        /// The validation split, resized and centre-cropped.
        test: ImageNetLoader,
        /// Where the batches go.
        device: Device,
    },
}

/// Batches of one pass over a split.
type Batches<'d> = Box<dyn Iterator<Item = (Tensor, Tensor)> + 'd>;

impl TrainData {
    /// The loaders of the config's dataset, and its number of classes
    /// (ImageNet's: its class folders, so a small subset trains a small
    /// classifier).
    fn open(cfg: &ResolvedTrain, device: Device) -> Result<(TrainData, i64), RunError> {
        let c = cfg.config();
        let batch = i64::from(c.batch_size());
        if c.dataset != DatasetKind::ImageNet {
            let dataset = data::load(c.dataset, cfg.data_dir())?;
            let augment = Some(Augment::for_dataset(c.dataset));
            let classes = c.eval_shape().classes;
            let loaders = TrainData::InMemory {
                train: Loader::new(&dataset.train, &dataset, device, batch, augment),
                test: Loader::new(&dataset.test, &dataset, device, batch, None),
            };
            return Ok((loaders, classes));
        }
        let dir = cfg.data_dir().unwrap_or_else(|| Path::new("."));
        let folder = imagenet::Folder::open(dir)?;
        let crop = i64::from(c.crop_size().unwrap_or(imagenet::DEFAULT_CROP as u32));
        let threads = loader_threads();
        let transforms = imagenet_transforms(c);
        let classes = folder.classes.len() as i64;
        tracing::info!(
            "{}: {} training and {} validation images of {classes} classes, \
             {crop} px crops, {threads} loader threads, decoded by {}",
            dir.display(),
            folder.train.files.len(),
            folder.val.files.len(),
            imagenet::DECODER
        );
        let loaders = TrainData::Folder {
            train: ImageNetLoader::new(folder.train, crop, batch, threads)
                .with_transforms(transforms),
            test: ImageNetLoader::new(folder.val, crop, batch, threads).with_transforms(transforms),
            device,
        };
        Ok((loaders, classes))
    }

    /// Full training batches in an epoch.
    fn batches_per_epoch(&self) -> usize {
        match self {
            TrainData::InMemory { train, .. } => train.batches_per_epoch(),
            TrainData::Folder { train, .. } => train.batches_per_epoch(),
        }
    }

    /// Images of the training set.
    fn train_images(&self) -> usize {
        match self {
            TrainData::InMemory { train, .. } => train.len(),
            TrainData::Folder { train, .. } => train.len(),
        }
    }

    /// The shuffled, augmented training batches of an epoch from batch
    /// `first` on.
    /// A data-parallel rank takes its shard of every batch.
    fn epoch_from(&self, seed: u64, first: usize) -> Batches<'_> {
        let w = parallel::world();
        match self {
            TrainData::InMemory { train, .. } => {
                Box::new(train.epoch_shard_from(seed, first, (w.rank, w.size)))
            }
            TrainData::Folder { train, device, .. } => {
                let batches = train.epoch_from(seed, first);
                Box::new(on_device(shard_rows(batches, w), *device))
            }
        }
    }

    /// Every test image once, in order; a data-parallel rank takes every
    /// size-th batch, so that the ranks see every image once between them.
    fn test_batches(&self) -> Batches<'_> {
        let w = parallel::world();
        match self {
            TrainData::InMemory { test, .. } => Box::new(test.ordered_shard((w.rank, w.size))),
            TrainData::Folder { test, device, .. } => Box::new(on_device(
                test.ordered().skip(w.rank).step_by(w.size),
                *device,
            )),
        }
    }

    /// The training pass's part of [`TrainData::skipped`], taken at a stop.
    fn train_skipped(&self) -> i64 {
        match self {
            TrainData::InMemory { .. } => 0,
            TrainData::Folder { train, .. } => train.skipped() as i64,
        }
    }

    /// Images skipped as unreadable in the latest training epoch and test
    /// pass (a resumed epoch counts from where it resumed: the checkpoint
    /// carries the part before); `None` for the datasets held in memory,
    /// which have none to skip.
    fn skipped(&self) -> Option<i64> {
        match self {
            TrainData::InMemory { .. } => None,
            TrainData::Folder { train, test, .. } => {
                Some((train.skipped() + test.skipped()) as i64)
            }
        }
    }
}

/// The image transforms of an ImageNet config: its jitter, flip,
/// normalisation and evaluation resize, the recipe's where it is silent.
fn imagenet_transforms(c: &TrainConfig) -> Transforms {
    let f32s = |v: [f64; 3]| v.map(|x| x as f32);
    let (mean, std) = c
        .normalization()
        .map_or((MEAN, STD), |(m, s)| (f32s(m), f32s(s)));
    Transforms {
        jitter: c
            .jitter()
            .map(|[brightness, contrast, saturation, hue]| ColorJitter {
                brightness: brightness as f32,
                contrast: contrast as f32,
                saturation: saturation as f32,
                hue: hue as f32,
            }),
        flip: c.hflip().unwrap_or(true),
        mean,
        std,
        eval_resize: c.eval_resize().map(|s| s as usize),
    }
}

/// The rank's rows of streamed batches (ImageNet's loader decodes the
/// whole global batch on every rank: simple, and the step dominates).
fn shard_rows(
    batches: impl Iterator<Item = (Tensor, Tensor)>,
    w: World,
) -> impl Iterator<Item = (Tensor, Tensor)> {
    batches.map(move |(x, y)| {
        if w.size == 1 {
            return (x, y);
        }
        let rows: Vec<i64> = (0..x.size()[0]).collect();
        let rows = Tensor::from_slice(&w.shard(&rows));
        (x.index_select(0, &rows), y.index_select(0, &rows))
    })
}

/// Moves streamed CPU batches to `device` (a no-op on the CPU).
fn on_device(
    batches: impl Iterator<Item = (Tensor, Tensor)>,
    device: Device,
) -> impl Iterator<Item = (Tensor, Tensor)> {
    batches.map(move |(x, y)| (x.to_device(device), y.to_device(device)))
}

/// Decoding threads of the ImageNet loader: every core. They wait on a
/// bounded queue when they are ahead of the step, so on a GPU they keep it
/// fed and on a CPU they take the cores only while the step waits for
/// data.
fn loader_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A train run as a [`Stage`] of the run loop.
pub struct TrainStage {
    cfg: ResolvedTrain,
    trainer: Trainer,
    params: i64,
    madds: i64,
    steps: usize,
    device: Device,
    best: f64,
    last_test_acc: f64,
    resumed: Option<TrainPartial>,
    /// This process's rank and the run's world size.
    world: World,
    /// Images of every step over all ranks (the config's batch, or the
    /// training set when it is smaller).
    global_batch: i64,
    /// Whether the dataset has the five classes top-5 needs.
    top5: bool,
}

/// One training epoch under way.
pub struct TrainEpochRun {
    lr: f64,
    drop: f64,
    sums: TrainSums,
    start: Instant,
}

impl Stage for TrainStage {
    type Data = TrainData;
    type Batch = (Tensor, Tensor);
    type Epoch = TrainEpochRun;
    type Record = TrainEpoch;
    type Saved = TrainCheckpoint;
    type Outcome = TrainOutcome;

    fn plan(&self) -> Plan {
        let c = self.cfg.config();
        Plan {
            epochs: c.epochs(),
            steps: self.steps,
            seed: c.seed,
            fingerprint: self.cfg.fingerprint(),
        }
    }

    fn params(&self) -> Option<i64> {
        Some(self.params)
    }

    fn madds(&self) -> Option<i64> {
        Some(self.madds)
    }

    fn batches<'d>(
        data: &'d TrainData,
        seed: u64,
        epoch: u32,
        first: usize,
    ) -> impl Iterator<Item = Self::Batch> + 'd {
        data.epoch_from(derive_seed(seed, epoch, 3), first)
    }

    fn restore(&mut self, state: TrainCheckpoint, tensors: Vec<(String, Tensor)>) -> f64 {
        self.trainer.restore(tensors);
        self.best = state.best_test_acc;
        self.resumed = state.partial;
        state.wall_s
    }

    fn begin_epoch(&mut self, epoch: u32) -> TrainEpochRun {
        let start = Instant::now();
        TrainEpochRun {
            lr: learning_rate(&self.cfg, epoch),
            drop: drop_path_prob(&self.cfg, epoch),
            sums: TrainSums::new(self.resumed.take(), self.device, self.world),
            start,
        }
    }

    fn steps_done(ep: &TrainEpochRun) -> usize {
        ep.sums.steps_done
    }

    fn step(
        &mut self,
        ep: &mut TrainEpochRun,
        (x, y): Self::Batch,
        epoch: u32,
        step: usize,
    ) -> Result<Option<(f64, f64)>, RunError> {
        crate::nas::faults::maybe_die(self.world.rank, step);
        crate::nas::faults::maybe_hang_rank(self.world.rank, step);
        if self.world.rank > 0 {
            // Each rank draws its own cutout squares and drop-path masks,
            // as its own process would, reproducibly at every step.
            let seed = derive_seed(self.cfg.config().seed, self.world.rank as u32, 11);
            seed_torch_for_step(seed, epoch, step);
        }
        let x = cutout(&x, i64::from(self.cfg.config().cutout()));
        let (loss, logits) = if self.world.size == 1 {
            self.trainer.step(&x, &y, ep.lr, ep.drop)
        } else {
            self.parallel_step(&x, &y, ep)?
        };
        ep.sums.add(&loss, &logits, &y, x.size()[0]);
        Ok(None)
    }

    fn check_stopped(
        &self,
        ep: &mut TrainEpochRun,
        data: &TrainData,
        epoch: u32,
        i: usize,
    ) -> Result<(), RunError> {
        ep.sums.skipped_since_resume = data.train_skipped();
        ep.sums.combine(self.world)?;
        let loss_sum = f64::try_from(&ep.sums.loss_sum).unwrap_or(f64::NAN);
        if loss_sum.is_finite() {
            return Ok(());
        }
        Err(RunError::Diverged {
            epoch,
            step: i - 1,
            global_step: self.steps as u64 * u64::from(epoch) + i as u64,
            loss: loss_sum / ep.sums.seen.max(1) as f64,
        })
    }

    fn end_epoch(
        &mut self,
        mut ep: TrainEpochRun,
        data: &TrainData,
        epoch: u32,
    ) -> Result<TrainEpoch, RunError> {
        ep.sums.combine(self.world)?;
        let sums = &ep.sums;
        let seen = sums.seen as f64;
        let train_loss = f64::try_from(&sums.loss_sum).unwrap_or(f64::NAN) / seen;
        if !train_loss.is_finite() {
            return Err(RunError::Diverged {
                epoch,
                step: self.steps - 1,
                global_step: u64::from(epoch + 1) * self.steps as u64,
                loss: train_loss,
            });
        }
        let train_acc = i64::try_from(&sums.correct).unwrap_or(0) as f64 / seen;
        let train_top5 = sums
            .correct5
            .as_ref()
            .map(|c| i64::try_from(c).unwrap_or(0) as f64 / seen);
        // Batch norm runs per rank, as in DDP; its running statistics are
        // rank 0's everywhere before the ranks evaluate their shards.
        let mut buffers = sorted_variables(&self.trainer.net, |grad| !grad);
        parallel::combine(&mut buffers, Combine::FromRankZero)?;
        let test = evaluate(&self.trainer.net, data.test_batches(), self.top5)?;
        let test_acc = test.acc;
        let train_s = sums.train_s_before + ep.start.elapsed().as_secs_f64();
        self.last_test_acc = test_acc;
        self.best = self.best.max(test_acc);
        Ok(TrainEpoch {
            epoch: i64::from(epoch),
            train_acc,
            train_loss,
            test_acc,
            test_loss: test.loss,
            train_top5,
            test_top5: test.top5,
            skipped_images: data.skipped().map(|s| s + sums.skipped_before),
            lr: ep.lr,
            drop_path_prob: ep.drop,
            wall_s: train_s,
            images_per_s: seen / train_s.max(1e-9),
            peak_mem_bytes: peak_rss_bytes().unwrap_or(0),
        })
    }

    fn saved(&self, epoch: u32, ep: Option<&TrainEpochRun>, wall_s: f64) -> TrainCheckpoint {
        TrainCheckpoint {
            fingerprint: self.cfg.fingerprint(),
            epoch,
            best_test_acc: self.best,
            wall_s,
            tensors_file: String::new(),
            partial: ep.map(|ep| ep.sums.saved(ep.start.elapsed().as_secs_f64())),
        }
    }

    fn tensors(&self) -> Vec<(String, Tensor)> {
        self.trainer.checkpoint_tensors()
    }

    fn outcome(&mut self, _epochs_run: u32, wall_s: f64) -> TrainOutcome {
        if std::env::var_os(CHECKSUM_ENV).is_some() {
            crate::errln!(
                "rank {} of {}: parameter checksum {:016x}",
                self.world.rank,
                self.world.size,
                parallel::checksum(self.trainer.params())
            );
        }
        TrainOutcome {
            final_test_acc: self.last_test_acc,
            best_test_acc: self.best,
            params: self.params,
            wall_s,
        }
    }
}

impl TrainStage {
    /// A data-parallel step of this rank on its shard of the global batch.
    fn parallel_step(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        ep: &TrainEpochRun,
    ) -> Result<(Tensor, Tensor), RunError> {
        let share = (x.size()[0] * self.world.size as i64) as f64 / self.global_batch as f64;
        data_parallel_step(&mut self.trainer, (x, y), ep.lr, ep.drop, share)
    }
}

/// A data-parallel step: this rank's gradients of its loss weighted by its
/// `share` of the global batch (its images times the world size over the
/// global batch: 1 when the batch splits evenly), averaged across the
/// ranks, then the same clipping and SGD step on every rank. Answers the
/// rank's main loss and logits.
fn data_parallel_step(
    trainer: &mut Trainer,
    (x, y): (&Tensor, &Tensor),
    lr: f64,
    drop: f64,
    share: f64,
) -> Result<(Tensor, Tensor), RunError> {
    // Each rank's loss is a mean over its shard; weighing the shards by
    // their size makes the average the global batch's mean gradient when
    // the batch does not split evenly.
    // The gradients are averaged across the ranks as the backward pass
    // makes them (each bucket's all-reduce overlaps the rest of the pass).
    let ((loss, logits), grads) = parallel::averaged_gradients(trainer.params(), || {
        let (loss, logits, grads) = trainer.scaled_gradients(x, y, drop, share);
        ((loss, logits), grads)
    })?;
    trainer.apply(&grads, lr);
    Ok((loss, logits))
}

/// A training epoch's running sums, kept on the device (read once at the
/// epoch's end), and carried over by a checkpoint at a stop.
struct TrainSums {
    steps_done: usize,
    loss_sum: Tensor,
    correct: Tensor,
    /// Top-5 correct; `None` with fewer than five classes, or when the
    /// epoch was resumed from a checkpoint that did not count them.
    correct5: Option<Tensor>,
    seen: i64,
    /// Training seconds of the epoch before this process took it up.
    train_s_before: f64,
    /// Unreadable images skipped in the epoch before this process took
    /// it up.
    skipped_before: i64,
    /// Those skipped since, as of the last stop.
    skipped_since_resume: i64,
}

impl TrainSums {
    /// Zero, or where a stopped epoch left them: a checkpoint holds the
    /// sums of every rank, so rank 0 alone takes them up.
    fn new(partial: Option<TrainPartial>, device: Device, world: World) -> Self {
        let partial = partial.map(|p| {
            if world.rank == 0 {
                return p;
            }
            TrainPartial {
                loss_sum: 0.0,
                correct: 0,
                correct5: p.correct5.map(|_| 0),
                seen: 0,
                ..p
            }
        });
        let p = partial.unwrap_or(TrainPartial {
            steps_done: 0,
            loss_sum: 0.0,
            correct: 0,
            correct5: Some(0),
            seen: 0,
            train_s: 0.0,
            skipped: 0,
        });
        TrainSums {
            steps_done: p.steps_done as usize,
            loss_sum: Tensor::from(p.loss_sum).to_device(device),
            correct: Tensor::from(p.correct).to_device(device),
            correct5: p.correct5.map(|c| Tensor::from(c).to_device(device)),
            seen: p.seen,
            train_s_before: p.train_s,
            skipped_before: p.skipped,
            skipped_since_resume: 0,
        }
    }

    /// Adds one step's minibatch of `n` images.
    fn add(&mut self, loss: &Tensor, logits: &Tensor, y: &Tensor, n: i64) {
        self.steps_done += 1;
        self.seen += n;
        self.loss_sum += loss.to_kind(Kind::Double) * (n as f64);
        self.correct += logits.argmax(-1, false).eq_tensor(y).sum(Kind::Int64);
        self.correct5 = match (self.correct5.take(), top_k_correct(logits, y, TOP5)) {
            (Some(sum), Some(batch)) => Some(sum + batch),
            _ => None,
        };
    }

    /// Sums the ranks' sums, in place (nothing for one process); every
    /// rank then holds the whole epoch's.
    fn combine(&mut self, world: World) -> Result<(), RunError> {
        if world.size == 1 {
            return Ok(());
        }
        let mut sums = vec![
            self.loss_sum.reshape([1]),
            self.correct.reshape([1]),
            Tensor::from_slice(&[self.seen]).to_device(self.loss_sum.device()),
        ];
        if let Some(c5) = &self.correct5 {
            sums.push(c5.reshape([1]));
        }
        parallel::combine(&mut sums, Combine::Sum)?;
        self.loss_sum = sums[0].reshape([]);
        self.correct = sums[1].reshape([]);
        self.seen = sums[2].int64_value(&[0]);
        if self.correct5.is_some() {
            self.correct5 = Some(sums[3].reshape([]));
        }
        Ok(())
    }

    /// What a checkpoint at this step keeps of them.
    fn saved(&self, train_s: f64) -> TrainPartial {
        TrainPartial {
            steps_done: self.steps_done as u32,
            loss_sum: f64::try_from(&self.loss_sum).unwrap_or(f64::NAN),
            correct: i64::try_from(&self.correct).unwrap_or(0),
            correct5: self
                .correct5
                .as_ref()
                .map(|c| i64::try_from(c).unwrap_or(0)),
            seen: self.seen,
            train_s: self.train_s_before + train_s,
            skipped: self.skipped_before + self.skipped_since_resume,
        }
    }
}

/// What the test set measured.
struct Tested {
    /// Top-1 accuracy.
    acc: f64,
    /// Mean (unsmoothed) cross-entropy.
    loss: f64,
    /// Top-5 accuracy; `None` with fewer than five classes.
    top5: Option<f64>,
}

/// Accuracies and mean loss of `net` on every batch of `loader`, without
/// drop path or the auxiliary head, batch norm on its running statistics;
/// `top5` when the dataset has five classes. Sums stay on the device and
/// are read once at the end, summed over the ranks of a data-parallel run
/// (each evaluated its own batches), so every rank answers for the whole
/// test set.
fn evaluate(net: &EvalNetwork, batches: Batches<'_>, top5: bool) -> Result<Tested, RunError> {
    let device = net.vs.device();
    let mut sums = tch::no_grad(|| {
        let zero = |kind| Tensor::zeros([1], (kind, device));
        let mut loss = zero(Kind::Double);
        let mut correct = zero(Kind::Int64);
        let mut correct5 = zero(Kind::Int64);
        let mut seen = 0i64;
        for (x, y) in batches {
            crate::nas::progress::tick();
            let (logits, _) = net.forward_t(&x, 0.0, false);
            let n = x.size()[0];
            loss += cross_entropy(&logits, &y).to_kind(Kind::Double) * n as f64;
            correct += logits.argmax(-1, false).eq_tensor(&y).sum(Kind::Int64);
            if let Some(batch5) = top_k_correct(&logits, &y, TOP5) {
                correct5 += batch5;
            }
            seen += n;
        }
        vec![
            loss,
            correct,
            correct5,
            Tensor::from_slice(&[seen]).to_device(device),
        ]
    });
    parallel::combine(&mut sums, Combine::Sum)?;
    let seen = sums[3].int64_value(&[0]).max(1) as f64;
    let count = |c: &Tensor| c.int64_value(&[0]) as f64 / seen;
    Ok(Tested {
        acc: count(&sums[1]),
        loss: sums[0].double_value(&[0]) / seen,
        top5: top5.then(|| count(&sums[2])),
    })
}

#[cfg(all(test, feature = "dist"))]
mod parallel_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(warmup: u32, kind: LrSchedule) -> Schedule {
        Schedule {
            lr: 0.5,
            lr_min: 0.0,
            epochs: 15,
            warmup,
            kind,
        }
    }

    /// Without warm-up the cosine rate is the formula of DARTS's scheduler,
    /// bit for bit (CIFAR runs must not move).
    #[test]
    fn cosine_without_warmup_is_unchanged() {
        let s = Schedule {
            lr: 0.025,
            lr_min: 0.001,
            epochs: 600,
            warmup: 0,
            kind: LrSchedule::Cosine,
        };
        for epoch in [0, 1, 299, 599] {
            let t = f64::from(epoch) / 600.0;
            let old = 0.001 + (0.025 - 0.001) * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0;
            assert_eq!(s.at(epoch), old);
        }
        assert_eq!(s.at(0), 0.025);
    }

    /// Five warm-up epochs from lr/5 to lr, then linear to 0 after the last.
    #[test]
    fn warmup_then_linear_decay_to_zero() {
        let s = schedule(5, LrSchedule::Linear);
        let rates: Vec<f64> = (0..15).map(|e| s.at(e)).collect();
        for (e, r) in rates.iter().take(5).enumerate() {
            assert!((r - 0.5 * (e as f64 + 1.0) / 5.0).abs() < 1e-12, "{e}: {r}");
        }
        assert_eq!(rates[5], 0.5);
        assert!((rates[10] - 0.25).abs() < 1e-12, "{}", rates[10]);
        assert!((rates[14] - 0.05).abs() < 1e-12, "{}", rates[14]);
        assert!((s.at(15)).abs() < 1e-12);
        assert!(rates.windows(2).skip(5).all(|w| w[1] < w[0]));
        let one = schedule(1, LrSchedule::Linear);
        assert_eq!(one.at(0), 0.1);
        assert_eq!(one.at(1), 0.5);
        let cosine = schedule(5, LrSchedule::Cosine);
        assert_eq!(cosine.at(5), 0.5);
        assert!((cosine.at(10) - 0.25).abs() < 1e-12);
    }

    /// Cutout zeroes one square per image, clipped at the borders: at most
    /// length² pixels, at least the quarter that a corner centre leaves.
    #[test]
    fn cutout_zeroes_one_clipped_square_per_image() {
        tch::manual_seed(5);
        let x = Tensor::ones([64, 3, 12, 12], (Kind::Float, Device::Cpu));
        let y = cutout(&x, 4);
        let zeros: Vec<i64> = Vec::try_from(y.eq(0.0).sum_dim_intlist(
            &[1, 2, 3][..],
            false,
            Kind::Int64,
        ))
        .unwrap();
        for z in zeros {
            assert!(z % 3 == 0, "every channel alike: {z}");
            let pixels = z / 3;
            assert!((4..=16).contains(&pixels), "{pixels}");
        }
        assert_eq!(cutout(&x, 0).eq(0.0).sum(Kind::Int64).int64_value(&[]), 0);
    }
}
