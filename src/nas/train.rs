//! Training a searched cell from scratch (appendix B.1, issue 12): the
//! evaluation network on the whole training set, tested on the test set
//! after every epoch, SGD with a cosine learning rate, drop path raised
//! linearly over the epochs, cutout on top of the dataset's augmentation,
//! and a checkpoint after every epoch.
//!
//! Every random source is seeded per epoch from the run's seed, and the
//! optimiser state is in the checkpoint, so on CPU a run resumed from any
//! epoch records the numbers of an uninterrupted one.

use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::config::train::ResolvedTrain;
use crate::data::{self, Augment, Loader};
use crate::nas::checkpoint::{self, SavedState};
use crate::nas::evalnet::{cross_entropy, EvalNetwork, EvalShape, Trainer};
use crate::nas::search::{derive_seed, peak_rss_bytes, SearchError};
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
    /// Training starts (or resumes) at `first_epoch` of `epochs`, with
    /// `steps` steps an epoch, on a network of `params` parameters.
    fn started(&mut self, first_epoch: u32, epochs: u32, steps: usize, params: i64);
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
    /// Last completed epoch.
    pub epoch: u32,
    /// Best test accuracy so far.
    pub best_test_acc: f64,
    /// Training wall seconds so far.
    pub wall_s: f64,
    /// File name of the tensors.
    pub tensors_file: String,
}

impl SavedState for TrainCheckpoint {
    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
    fn epoch(&self) -> u32 {
        self.epoch
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
    let shape = EvalShape {
        layers: i64::from(c.layers),
        channels: i64::from(c.init_channels),
        in_channels: dataset.channels,
        classes: dataset.classes,
        auxiliary: c.auxiliary_weight > 0.0,
    };
    let net = EvalNetwork::new(cfg.genotype(), shape, device);
    let params = net.params_without_aux();
    let mut trainer = Trainer::new(
        net,
        [c.momentum, c.weight_decay, c.grad_clip, c.auxiliary_weight],
    );
    let fingerprint = cfg.fingerprint();
    let mut first_epoch = 0;
    let mut best = f64::NEG_INFINITY;
    let mut wall_before = 0.0;
    if let (Some(dir), true) = (&opts.checkpoint_dir, opts.resume) {
        if let Some((state, tensors)) =
            checkpoint::load::<TrainCheckpoint>(dir, &fingerprint, device)?
        {
            trainer.restore(tensors);
            first_epoch = state.epoch + 1;
            best = state.best_test_acc;
            wall_before = state.wall_s;
        }
    }
    observer.started(first_epoch, c.epochs, steps, params);
    let started = Instant::now();
    let mut last_test_acc = f64::NAN;
    for epoch in first_epoch..c.epochs {
        let epoch_start = Instant::now();
        tch::manual_seed(derive_seed(c.seed, epoch, 1) as i64);
        let lr = learning_rate(cfg, epoch);
        let drop = drop_path_prob(cfg, epoch);
        let mut loss_sum = Tensor::zeros([], (Kind::Double, device));
        let mut correct = Tensor::zeros([], (Kind::Int64, device));
        let mut seen = 0i64;
        let batches = train_loader.epoch(derive_seed(c.seed, epoch, 3));
        for (i, (x, y)) in batches.take(steps).enumerate() {
            if observer.should_stop() {
                return Err(SearchError::Interrupted { epoch });
            }
            let x = cutout(&x, i64::from(c.cutout));
            let (loss, logits) = trainer.step(&x, &y, lr, drop);
            let n = x.size()[0];
            seen += n;
            loss_sum += loss.to_kind(Kind::Double) * (n as f64);
            correct += logits.argmax(-1, false).eq_tensor(&y).sum(Kind::Int64);
            crate::nas::progress::tick();
            observer.step(epoch, i + 1);
        }
        let train_loss = f64::try_from(&loss_sum).unwrap_or(f64::NAN) / seen as f64;
        if !train_loss.is_finite() {
            return Err(SearchError::Diverged {
                epoch,
                step: steps - 1,
                global_step: u64::from(epoch + 1) * steps as u64,
                loss: train_loss,
            });
        }
        let train_acc = i64::try_from(&correct).unwrap_or(0) as f64 / seen as f64;
        let (test_acc, test_loss) = evaluate(&trainer.net, &test_loader);
        let train_s = epoch_start.elapsed().as_secs_f64();
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
            images_per_s: seen as f64 / train_s.max(1e-9),
            peak_mem_bytes: peak_rss_bytes().unwrap_or(0),
        };
        observer
            .epoch(&rec)
            .map_err(|source| SearchError::Store { epoch, source })?;
        if let Some(dir) = &opts.checkpoint_dir {
            let state = TrainCheckpoint {
                fingerprint: fingerprint.clone(),
                epoch,
                best_test_acc: best,
                wall_s: wall_before + started.elapsed().as_secs_f64(),
                tensors_file: String::new(),
            };
            checkpoint::save(dir, &state, &trainer.checkpoint_tensors())?;
        }
    }
    Ok(TrainOutcome {
        final_test_acc: last_test_acc,
        best_test_acc: best,
        params,
        wall_s: wall_before + started.elapsed().as_secs_f64(),
    })
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
