//! Training a searched cell from scratch (appendix B.1): the
//! evaluation network on the whole training set, tested on the test set
//! after every epoch, SGD with a cosine learning rate, drop path raised
//! linearly over the epochs, cutout on top of the dataset's augmentation,
//! and a checkpoint after every epoch.
//!
//! Every random source is seeded from the run's seed per epoch (the
//! loader) or per step (libtorch's, for cutout and drop path), and the
//! optimiser state and the epoch's running sums are in the checkpoint, so
//! on CPU a run resumed from any epoch, or from the step where it was
//! stopped, records the numbers of an uninterrupted one.

use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::config::train::ResolvedTrain;
use crate::data::{self, Augment, Loader};
use crate::nas::checkpoint::{self, Position, SavedState};
use crate::nas::evalnet::{cross_entropy, EvalNetwork, Trainer};
use crate::nas::search::{
    derive_seed, maybe_hold, peak_rss_bytes, seed_torch_for_step, FaultStops, SearchError,
};
use crate::store::TrainEpoch;

/// Where and how to train.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Device.
    pub device: Device,
    /// Folder of the epoch checkpoints (none: no checkpoints).
    pub checkpoint_dir: Option<PathBuf>,
    /// Continue from the checkpoint if there is one.
    pub resume: bool,
}

/// What a training run reports as it goes.
pub trait TrainObserver {
    /// Training starts (or resumes) at step `first_step` of `first_epoch`
    /// of `epochs`, with `steps` steps an epoch, on a network of `params`
    /// parameters.
    fn started(&mut self, first: (u32, usize), epochs: u32, steps: usize, params: i64);
    /// A training step finished (1-based `step` of the epoch).
    fn step(&mut self, epoch: u32, step: usize);
    /// An epoch finished; stored before its checkpoint is written.
    fn epoch(&mut self, rec: &TrainEpoch) -> anyhow::Result<()>;
    /// Whether to stop at the next safe point.
    fn should_stop(&mut self) -> bool;
}

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
    /// Images trained on so far.
    pub seen: i64,
    /// Training seconds of the epoch so far.
    pub train_s: f64,
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

/// The cosine learning rate of `epoch` (as DARTS's scheduler sets it).
pub fn learning_rate(cfg: &ResolvedTrain, epoch: u32) -> f64 {
    let c = cfg.config();
    let t = f64::from(epoch) / f64::from(c.epochs);
    c.lr_min + (c.lr - c.lr_min) * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0
}

/// The drop-path probability of `epoch`: raised linearly from 0.
pub fn drop_path_prob(cfg: &ResolvedTrain, epoch: u32) -> f64 {
    let c = cfg.config();
    c.drop_path_prob * f64::from(epoch) / f64::from(c.epochs)
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
    opts: &TrainOptions,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome, SearchError> {
    let c = cfg.config();
    let device = opts.device;
    let dataset = data::load(c.dataset, cfg.data_dir())?;
    let batch = i64::from(c.batch_size);
    let train_loader = Loader::new(
        &dataset.train,
        &dataset,
        device,
        batch,
        Some(Augment::for_dataset(c.dataset)),
    );
    let test_loader = Loader::new(&dataset.test, &dataset, device, batch, None);
    let mut steps = train_loader.batches_per_epoch();
    if let Some(cap) = c.steps_per_epoch {
        steps = steps.min(cap as usize);
    }
    if steps == 0 {
        return Err(SearchError::TooSmall {
            images: dataset.train.len(),
            batch,
        });
    }
    tch::manual_seed(c.seed as i64);
    let net = EvalNetwork::new(cfg.genotype(), c.eval_shape(), device);
    let params = net.params_without_aux();
    let mut trainer = Trainer::new(
        net,
        [c.momentum, c.weight_decay, c.grad_clip, c.auxiliary_weight],
    );
    let fingerprint = cfg.fingerprint();
    let mut first_epoch = 0;
    let mut best = f64::NEG_INFINITY;
    let mut wall_before = 0.0;
    let mut resumed = None;
    if let (Some(dir), true) = (&opts.checkpoint_dir, opts.resume) {
        if let Some((state, tensors)) =
            checkpoint::load::<TrainCheckpoint>(dir, &fingerprint, device)?
        {
            trainer.restore(tensors);
            first_epoch = state.position().resume_at().0;
            best = state.best_test_acc;
            wall_before = state.wall_s;
            resumed = state.partial;
        }
    }
    let first_step = resumed.as_ref().map_or(0, |p| p.steps_done as usize);
    observer.started((first_epoch, first_step), c.epochs, steps, params);
    let mut stops = FaultStops::from_env();
    let started = Instant::now();
    let mut last_test_acc = f64::NAN;
    let checkpoint = |epoch, best, partial| TrainCheckpoint {
        fingerprint: fingerprint.clone(),
        epoch,
        best_test_acc: best,
        wall_s: wall_before + started.elapsed().as_secs_f64(),
        tensors_file: String::new(),
        partial,
    };
    for epoch in first_epoch..c.epochs {
        let epoch_start = Instant::now();
        let lr = learning_rate(cfg, epoch);
        let drop = drop_path_prob(cfg, epoch);
        let mut sums = TrainSums::new(resumed.take(), device);
        let first = sums.steps_done;
        let batches = train_loader.epoch_from(derive_seed(c.seed, epoch, 3), first);
        for (i, (x, y)) in (first..steps).zip(batches) {
            let step = steps as u64 * u64::from(epoch) + i as u64 + 1;
            maybe_hold(step, c.seed, || observer.should_stop());
            if observer.should_stop() || stops.stop_before(step) {
                if i == 0 {
                    return Err(SearchError::Interrupted { epoch, step: None });
                }
                if let Some(dir) = &opts.checkpoint_dir {
                    let partial = sums.saved(epoch_start.elapsed().as_secs_f64());
                    if !partial.loss_sum.is_finite() {
                        return Err(SearchError::Diverged {
                            epoch,
                            step: i - 1,
                            global_step: steps as u64 * u64::from(epoch) + i as u64,
                            loss: partial.loss_sum / partial.seen.max(1) as f64,
                        });
                    }
                    let state = checkpoint(epoch, best, Some(partial));
                    checkpoint::save(dir, &state, &trainer.checkpoint_tensors())?;
                }
                return Err(SearchError::Interrupted {
                    epoch,
                    step: opts.checkpoint_dir.as_ref().map(|_| i as u32),
                });
            }
            seed_torch_for_step(c.seed, epoch, i);
            let x = cutout(&x, i64::from(c.cutout));
            let (loss, logits) = trainer.step(&x, &y, lr, drop);
            sums.add(&loss, &logits, &y, x.size()[0]);
            crate::nas::progress::tick();
            observer.step(epoch, i + 1);
        }
        let seen = sums.seen as f64;
        let train_loss = f64::try_from(&sums.loss_sum).unwrap_or(f64::NAN) / seen;
        if !train_loss.is_finite() {
            return Err(SearchError::Diverged {
                epoch,
                step: steps - 1,
                global_step: u64::from(epoch + 1) * steps as u64,
                loss: train_loss,
            });
        }
        let train_acc = i64::try_from(&sums.correct).unwrap_or(0) as f64 / seen;
        let (test_acc, test_loss) = evaluate(&trainer.net, &test_loader);
        let train_s = sums.train_s_before + epoch_start.elapsed().as_secs_f64();
        last_test_acc = test_acc;
        best = best.max(test_acc);
        let rec = TrainEpoch {
            epoch: i64::from(epoch),
            train_acc,
            train_loss,
            test_acc,
            test_loss,
            lr,
            drop_path_prob: drop,
            wall_s: train_s,
            images_per_s: seen / train_s.max(1e-9),
            peak_mem_bytes: peak_rss_bytes().unwrap_or(0),
        };
        observer
            .epoch(&rec)
            .map_err(|source| SearchError::Store { epoch, source })?;
        if let Some(dir) = &opts.checkpoint_dir {
            checkpoint::save(
                dir,
                &checkpoint(epoch, best, None),
                &trainer.checkpoint_tensors(),
            )?;
        }
    }
    Ok(TrainOutcome {
        final_test_acc: last_test_acc,
        best_test_acc: best,
        params,
        wall_s: wall_before + started.elapsed().as_secs_f64(),
    })
}

/// A training epoch's running sums, kept on the device (read once at the
/// epoch's end), and carried over by a checkpoint at a stop.
struct TrainSums {
    steps_done: usize,
    loss_sum: Tensor,
    correct: Tensor,
    seen: i64,
    /// Training seconds of the epoch before this process took it up.
    train_s_before: f64,
}

impl TrainSums {
    /// Zero, or where a stopped epoch left them.
    fn new(partial: Option<TrainPartial>, device: Device) -> Self {
        let p = partial.unwrap_or(TrainPartial {
            steps_done: 0,
            loss_sum: 0.0,
            correct: 0,
            seen: 0,
            train_s: 0.0,
        });
        TrainSums {
            steps_done: p.steps_done as usize,
            loss_sum: Tensor::from(p.loss_sum).to_device(device),
            correct: Tensor::from(p.correct).to_device(device),
            seen: p.seen,
            train_s_before: p.train_s,
        }
    }

    /// Adds one step's minibatch of `n` images.
    fn add(&mut self, loss: &Tensor, logits: &Tensor, y: &Tensor, n: i64) {
        self.steps_done += 1;
        self.seen += n;
        self.loss_sum += loss.to_kind(Kind::Double) * (n as f64);
        self.correct += logits.argmax(-1, false).eq_tensor(y).sum(Kind::Int64);
    }

    /// What a checkpoint at this step keeps of them.
    fn saved(&self, train_s: f64) -> TrainPartial {
        TrainPartial {
            steps_done: self.steps_done as u32,
            loss_sum: f64::try_from(&self.loss_sum).unwrap_or(f64::NAN),
            correct: i64::try_from(&self.correct).unwrap_or(0),
            seen: self.seen,
            train_s: self.train_s_before + train_s,
        }
    }
}

/// Accuracy and mean loss of `net` on every batch of `loader`, without
/// drop path or the auxiliary head, batch norm on its running statistics.
/// Sums stay on the device and are read once at the end.
fn evaluate(net: &EvalNetwork, loader: &Loader) -> (f64, f64) {
    tch::no_grad(|| {
        let mut correct: Option<Tensor> = None;
        let mut loss: Option<Tensor> = None;
        let mut seen = 0i64;
        for (x, y) in loader.ordered() {
            crate::nas::progress::tick();
            let (logits, _) = net.forward_t(&x, 0.0, false);
            let n = x.size()[0];
            let batch_loss = cross_entropy(&logits, &y).to_kind(Kind::Double) * n as f64;
            let batch_correct = logits.argmax(-1, false).eq_tensor(&y).sum(Kind::Int64);
            loss = Some(loss.map_or(batch_loss.shallow_clone(), |l| l + &batch_loss));
            correct = Some(correct.map_or(batch_correct.shallow_clone(), |c| c + &batch_correct));
            seen += n;
        }
        let seen = seen.max(1) as f64;
        let correct = correct.map_or(0, |c| i64::try_from(c).unwrap_or(0));
        let loss = loss.map_or(f64::NAN, |l| f64::try_from(l).unwrap_or(f64::NAN));
        (correct as f64 / seen, loss / seen)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
