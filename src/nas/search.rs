//! The search (docs/design.md §2 "Optimisation", §3), a [`Stage`] of the
//! run loop ([`crate::nas::run`]): per step one architecture step (Adam on
//! alpha/beta, second half) then one weight step (SGD, first half); per
//! epoch one [`EpochRecord`] handed to an [`Observer`] (which stores it),
//! then a checkpoint.
//!
//! Every random source is re-seeded at each epoch start from (seed, epoch)
//! (libtorch's at each step), and a checkpoint written at a stop part-way
//! through an epoch holds the epoch's generator position and running sums,
//! so resuming from any checkpoint reproduces an uninterrupted run.

use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use crate::arch::metrics::{cosine_distance, EpochRecord, StepRecord, SubspaceRecord};
use crate::arch::space::SearchSpace;
use crate::config::ResolvedConfig;
use crate::data::{self, Augment, Loader};
use crate::nas::checkpoint::{CheckpointState, PartialEpoch};
use crate::nas::method::{ArchParams, MethodState};
use crate::nas::optim::{clip_grad_norm, Adam, Sgd};
use crate::nas::run::{
    derive_seed, peak_rss_bytes, run_epochs, Observer, Plan, RunError, RunOptions, Stage,
};
use crate::nas::supernet::{Supernet, SupernetShape};

/// Environment variable that poisons the loss of one weight step (global
/// step number, from 1) with NaN: a test hook for divergence handling.
pub const FAULT_NAN_STEP: &str = "DDSAS_FAULT_NAN_AT_STEP";

/// The result of a finished search.
#[derive(Debug, Clone)]
pub struct SearchOutcome {
    /// Final derived genotype text.
    pub genotype: String,
    /// Valid accuracy of the last epoch.
    pub final_valid_acc: f64,
    /// Epochs run by this call (fewer than the config's after a resume).
    pub epochs_run: u32,
    /// Wall seconds of the whole search, resumed parts included.
    pub wall_s: f64,
}

/// Cosine-annealed weight learning rate of an epoch (stepped per epoch).
pub fn learning_rate(cfg: &ResolvedConfig, epoch: u32) -> f64 {
    let c = cfg.config();
    let t = f64::from(epoch) / f64::from(c.epochs);
    c.w_lr_min + (c.w_lr - c.w_lr_min) * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0
}

/// Supernet, parameters, method state and optimisers: one search step's
/// worth of state, shared by the search loop and `ddsas bench step`.
pub struct Searcher {
    /// The config.
    pub cfg: ResolvedConfig,
    /// The supernet's weights.
    pub net: Supernet,
    /// Architecture and space parameters.
    pub arch: ArchParams,
    /// The method (DDSAS sampler, GDAS temperature, ...).
    pub method: MethodState,
    names: Vec<String>,
    params: Vec<Tensor>,
    sgd: Sgd,
    adam: Adam,
    /// Weight steps done over the whole run.
    pub step: u64,
    fault_step: Option<u64>,
    /// The kept freed pages, purged at a step's end when they pile up.
    pages: crate::exec::memory::StepPages,
}

impl Searcher {
    /// A fresh searcher; initialisation is seeded by the config's seed.
    pub fn new(cfg: &ResolvedConfig, in_channels: i64, classes: i64, device: Device) -> Self {
        let c = cfg.config();
        tch::manual_seed(derive_seed(c.seed, 0, 0) as i64);
        let space = SearchSpace::new(c.space);
        let cells = space.cell_types().len();
        let net = Supernet::new(
            SupernetShape {
                space: c.space,
                layers: i64::from(cfg.layers()),
                channels: i64::from(c.init_channels),
                in_channels,
                classes,
            },
            device,
        );
        let arch = ArchParams::new(&space, cells, device);
        let method = MethodState::new(cfg, &space, cells, device);
        let (names, params): (Vec<String>, Vec<Tensor>) = net.weight_params().into_iter().unzip();
        let sgd = Sgd::new(params.len(), c.w_momentum, c.w_weight_decay);
        let adam = Adam::new(
            &method.arch_tensors(&arch),
            c.arch_lr,
            c.arch_betas,
            c.arch_weight_decay,
        );
        Searcher {
            cfg: cfg.clone(),
            net,
            arch,
            method,
            names,
            params,
            sgd,
            adam,
            step: 0,
            fault_step: std::env::var(FAULT_NAN_STEP)
                .ok()
                .and_then(|v| v.parse().ok()),
            pages: crate::exec::memory::StepPages::default(),
        }
    }

    /// One architecture step on a batch of the second half.
    pub fn arch_step(&mut self, x: &Tensor, y: &Tensor) {
        let arch_params = self.method.arch_tensors(&self.arch);
        let (weights, plan) = self.method.train_weights(&self.arch, false);
        let loss = self
            .net
            .forward_t(x, &weights, plan, true)
            .cross_entropy_for_logits(y);
        let grads = Tensor::run_backward(&[loss], &arch_params, false, false);
        self.adam.step(&arch_params, &grads);
    }

    /// One weight step on a batch of the first half, the end of a search
    /// step (its temporaries freed, kept pages checked against their
    /// bound); returns the (detached) loss and the number of correct
    /// predictions, both on the device.
    pub fn weight_step(&mut self, x: &Tensor, y: &Tensor, lr: f64) -> (Tensor, Tensor) {
        let out = self.weight_step_tensors(x, y, lr);
        self.pages.step_done();
        out
    }

    fn weight_step_tensors(&mut self, x: &Tensor, y: &Tensor, lr: f64) -> (Tensor, Tensor) {
        let (weights, plan) = self.method.train_weights(&self.arch, true);
        let weights: Vec<Tensor> = weights.iter().map(Tensor::detach).collect();
        let logits = self.net.forward_t(x, &weights, plan, true);
        let mut loss = logits.cross_entropy_for_logits(y);
        self.step += 1;
        if self.fault_step == Some(self.step) {
            loss *= f64::NAN;
        }
        let grads = Tensor::run_backward(&[&loss], &self.params, false, false);
        clip_grad_norm(&grads, self.cfg.config().grad_clip);
        self.sgd.step(&self.params, &grads, lr);
        let correct = logits
            .detach()
            .argmax(-1, false)
            .eq_tensor(y)
            .sum(Kind::Int64);
        (loss.detach(), correct)
    }

    /// Mean loss and accuracy over `loader`'s ordered batches, no gradient.
    /// Batch norm uses batch statistics, as during the search, so that ops
    /// that ran rarely are not judged by stale running averages.
    pub fn evaluate(&mut self, loader: &Loader) -> (f64, f64) {
        tch::no_grad(|| {
            let (weights, plan) = self.method.eval_weights(&self.arch);
            let device = self.arch.alpha.device();
            let mut loss_sum = Tensor::zeros([], (Kind::Double, device));
            let mut correct = Tensor::zeros([], (Kind::Int64, device));
            let mut seen = 0i64;
            for (x, y) in loader.ordered() {
                crate::nas::progress::tick();
                let n = x.size()[0];
                if n < 2 {
                    continue;
                }
                let logits = self.net.forward_t(&x, &weights, plan, true);
                loss_sum += logits.cross_entropy_for_logits(&y).to_kind(Kind::Double) * (n as f64);
                correct += logits.argmax(-1, false).eq_tensor(&y).sum(Kind::Int64);
                seen += n;
            }
            let seen = seen.max(1) as f64;
            (
                f64::try_from(loss_sum).unwrap_or(f64::NAN) / seen,
                i64::try_from(correct).unwrap_or(0) as f64 / seen,
            )
        })
    }

    /// Every tensor a checkpoint needs, named.
    fn checkpoint_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .net
            .vs
            .variables()
            .into_iter()
            .map(|(k, t)| (format!("w.{k}"), t))
            .collect();
        out.push(("alpha".into(), self.arch.alpha.shallow_clone()));
        out.push(("beta".into(), self.arch.beta.shallow_clone()));
        for (name, buf) in self.names.iter().zip(self.sgd.buffers()) {
            if let Some(b) = buf {
                out.push((format!("sgd.{name}"), b.shallow_clone()));
            }
        }
        for (i, (m, v)) in self.adam.m.iter().zip(&self.adam.v).enumerate() {
            out.push((format!("adam.m.{i}"), m.shallow_clone()));
            out.push((format!("adam.v.{i}"), v.shallow_clone()));
        }
        out
    }

    /// Loads tensors written by `checkpoint_tensors`.
    fn restore_tensors(&mut self, tensors: Vec<(String, Tensor)>) {
        let mut vars = self.net.vs.variables();
        let index: std::collections::HashMap<&str, usize> = self
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        tch::no_grad(|| {
            for (name, t) in tensors {
                if let Some(var) = name.strip_prefix("w.").and_then(|k| vars.get_mut(k)) {
                    var.copy_(&t);
                } else if let Some(&i) = name.strip_prefix("sgd.").and_then(|k| index.get(k)) {
                    self.sgd.set_buffer(i, t);
                } else if name == "alpha" {
                    self.arch.alpha.shallow_clone().copy_(&t);
                } else if name == "beta" {
                    self.arch.beta.shallow_clone().copy_(&t);
                } else if let Some(i) = name
                    .strip_prefix("adam.m.")
                    .and_then(|k| k.parse::<usize>().ok())
                {
                    self.adam.m[i].copy_(&t);
                } else if let Some(i) = name
                    .strip_prefix("adam.v.")
                    .and_then(|k| k.parse::<usize>().ok())
                {
                    self.adam.v[i].copy_(&t);
                }
            }
        });
    }
}

/// One epoch's running sums and records, which a stop part-way through
/// the epoch carries over in its checkpoint.
struct EpochProgress {
    steps_done: usize,
    loss_sum: Tensor,
    correct_sum: Tensor,
    seen: i64,
    subspaces: Vec<SubspaceRecord>,
    step_records: Vec<StepRecord>,
    /// Training seconds of the epoch before this process took it up.
    train_s_before: f64,
}

impl EpochProgress {
    fn fresh(subspaces: Vec<SubspaceRecord>, device: Device) -> Self {
        EpochProgress {
            steps_done: 0,
            loss_sum: Tensor::zeros([], (Kind::Double, device)),
            correct_sum: Tensor::zeros([], (Kind::Int64, device)),
            seen: 0,
            subspaces,
            step_records: Vec::new(),
            train_s_before: 0.0,
        }
    }

    fn restored(partial: PartialEpoch, device: Device) -> Self {
        EpochProgress {
            steps_done: partial.steps_done as usize,
            loss_sum: Tensor::from(partial.loss_sum).to_device(device),
            correct_sum: Tensor::from(partial.correct).to_device(device),
            seen: partial.seen,
            subspaces: partial.subspaces,
            step_records: partial.step_records,
            train_s_before: partial.train_s,
        }
    }

    fn saved(&self, rng: &ChaCha8Rng, train_s: f64) -> PartialEpoch {
        let words = rng.get_word_pos();
        PartialEpoch {
            steps_done: self.steps_done as u32,
            rng_word_pos: [(words >> 64) as u64, words as u64],
            loss_sum: f64::try_from(&self.loss_sum).unwrap_or(f64::NAN),
            correct: i64::try_from(&self.correct_sum).unwrap_or(0),
            seen: self.seen,
            subspaces: self.subspaces.clone(),
            step_records: self.step_records.clone(),
            train_s: self.train_s_before + train_s,
        }
    }
}

/// The epoch's generator, positioned where a stopped epoch left it.
fn epoch_rng(seed: u64, epoch: u32, partial: Option<&PartialEpoch>) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, epoch, 2));
    if let Some(p) = partial {
        let [high, low] = p.rng_word_pos;
        rng.set_word_pos((u128::from(high) << 64) | u128::from(low));
    }
    rng
}

/// Runs (or resumes) one search.
pub fn run(
    cfg: &ResolvedConfig,
    opts: &RunOptions,
    observer: &mut dyn Observer<EpochRecord>,
) -> Result<SearchOutcome, RunError> {
    let c = cfg.config();
    let dataset = data::load(c.dataset, cfg.data_dir())?;
    let (weight_half, arch_half) = dataset.search_halves(c.train_portion);
    let batch = i64::from(c.batch_size);
    let smaller = weight_half.len().min(arch_half.len());
    if (smaller as i64) < batch {
        return Err(RunError::TooSmall {
            images: smaller,
            batch,
        });
    }
    let augment = Augment::for_dataset(c.dataset);
    let device = opts.device;
    let loaders = SearchData {
        weight: Loader::new(&weight_half, &dataset, device, batch, Some(augment)),
        arch: Loader::new(&arch_half, &dataset, device, batch, Some(augment)),
        valid: Loader::new(&arch_half, &dataset, device, batch, None),
    };
    let mut steps = loaders
        .weight
        .batches_per_epoch()
        .min(loaders.arch.batches_per_epoch());
    if let Some(cap) = c.steps_per_epoch {
        steps = steps.min(cap as usize);
    }
    let searcher = Searcher::new(cfg, dataset.channels, dataset.classes, device);
    let mut stage = SearchStage::new(searcher, steps, device);
    run_epochs(&mut stage, &loaders, opts, observer)
}

/// The loaders of a search: both halves of the training set, augmented,
/// and the second one plain for validation.
pub struct SearchData {
    weight: Loader,
    arch: Loader,
    valid: Loader,
}

/// A search as a [`Stage`] of the run loop: the searcher plus what the
/// epochs carry from one to the next (the previous genotype encodings for
/// the cosine distances) and the last epoch's result.
pub struct SearchStage {
    searcher: Searcher,
    steps: usize,
    device: Device,
    prev_encoding: Option<Vec<f64>>,
    prev_step_encoding: Option<Vec<f64>>,
    resumed: Option<PartialEpoch>,
    last_valid_acc: f64,
    genotype_text: String,
}

impl SearchStage {
    /// A stage of `steps` steps an epoch, starting fresh.
    pub fn new(searcher: Searcher, steps: usize, device: Device) -> Self {
        SearchStage {
            searcher,
            steps,
            device,
            prev_encoding: None,
            prev_step_encoding: None,
            resumed: None,
            last_valid_acc: f64::NAN,
            genotype_text: String::new(),
        }
    }
}

/// One search epoch under way: its generator, learning rate, running
/// sums and the losses not yet checked for divergence.
pub struct SearchEpoch {
    rng: ChaCha8Rng,
    lr: f64,
    progress: EpochProgress,
    pending_losses: Vec<Tensor>,
    start: Instant,
}

impl Stage for SearchStage {
    type Data = SearchData;
    type Batch = ((Tensor, Tensor), (Tensor, Tensor));
    type Epoch = SearchEpoch;
    type Record = EpochRecord;
    type Saved = CheckpointState;
    type Outcome = SearchOutcome;

    fn plan(&self) -> Plan {
        let c = self.searcher.cfg.config();
        Plan {
            epochs: c.epochs,
            steps: self.steps,
            seed: c.seed,
            fingerprint: self.searcher.cfg.fingerprint(),
        }
    }

    fn batches<'d>(
        data: &'d SearchData,
        seed: u64,
        epoch: u32,
        first: usize,
    ) -> impl Iterator<Item = Self::Batch> + 'd {
        let weight = data.weight.epoch_from(derive_seed(seed, epoch, 3), first);
        let arch = data.arch.epoch_from(derive_seed(seed, epoch, 4), first);
        weight.zip(arch)
    }

    fn restore(&mut self, state: CheckpointState, tensors: Vec<(String, Tensor)>) -> f64 {
        let s = &mut self.searcher;
        let space = SearchSpace::new(s.cfg.config().space);
        s.restore_tensors(tensors);
        let cells = space.cell_types().len();
        s.method = MethodState::restore(&s.cfg, &space, cells, self.device, state.method);
        s.step = state.step;
        s.adam.steps = state.adam_steps;
        self.prev_encoding = state.prev_encoding;
        self.prev_step_encoding = state.prev_step_encoding;
        self.resumed = state.partial;
        state.wall_s
    }

    fn begin_epoch(&mut self, epoch: u32) -> SearchEpoch {
        let start = Instant::now();
        let s = &mut self.searcher;
        let mut rng = epoch_rng(s.cfg.config().seed, epoch, self.resumed.as_ref());
        let lr = learning_rate(&s.cfg, epoch);
        let progress = match self.resumed.take() {
            Some(partial) => {
                s.method.resume_epoch(epoch);
                EpochProgress::restored(partial, self.device)
            }
            None => {
                let subspaces = s.method.start_epoch(&s.cfg, epoch, &s.arch, &mut rng);
                EpochProgress::fresh(subspaces, self.device)
            }
        };
        SearchEpoch {
            rng,
            lr,
            progress,
            pending_losses: Vec::new(),
            start,
        }
    }

    fn steps_done(ep: &SearchEpoch) -> usize {
        ep.progress.steps_done
    }

    fn global_step(&self, _epoch: u32, _step: usize, _steps: usize) -> u64 {
        self.searcher.step + 1
    }

    fn step(
        &mut self,
        ep: &mut SearchEpoch,
        ((xw, yw), (xa, ya)): Self::Batch,
        epoch: u32,
        i: usize,
    ) -> Result<Option<(f64, f64)>, RunError> {
        let s = &mut self.searcher;
        let progress = &mut ep.progress;
        progress
            .subspaces
            .extend(s.method.before_step(s.step, epoch, &s.arch, &mut ep.rng));
        s.arch_step(&xa, &ya);
        let (loss, correct) = s.weight_step(&xw, &yw, ep.lr);
        let n = xw.size()[0];
        progress.steps_done = i + 1;
        progress.seen += n;
        progress.loss_sum += loss.to_kind(Kind::Double) * (n as f64);
        progress.correct_sum += &correct;
        ep.pending_losses.push(loss);
        if s.cfg.config().log_steps {
            let encoding = s.method.genotype(&s.arch).encoding();
            let distance = self
                .prev_step_encoding
                .as_ref()
                .map(|p: &Vec<f64>| cosine_distance(p, &encoding));
            self.prev_step_encoding = Some(encoding);
            progress.step_records.push(StepRecord {
                step: s.step,
                cosine_distance: distance,
                minibatch_acc: i64::try_from(&correct).unwrap_or(0) as f64 / n as f64,
            });
        }
        if ep.pending_losses.len() < 16 && i + 1 != self.steps {
            return Ok(None);
        }
        check_finite(&ep.pending_losses, epoch, i, s.step)?;
        ep.pending_losses.clear();
        let seen = progress.seen as f64;
        let mean_loss = f64::try_from(&progress.loss_sum).unwrap_or(f64::NAN) / seen;
        let acc = i64::try_from(&progress.correct_sum).unwrap_or(0) as f64 / seen;
        Ok(Some((mean_loss, acc)))
    }

    fn check_stopped(
        &self,
        ep: &mut SearchEpoch,
        _: &SearchData,
        epoch: u32,
        i: usize,
    ) -> Result<(), RunError> {
        check_finite(&ep.pending_losses, epoch, i - 1, self.searcher.step)
    }

    fn end_epoch(
        &mut self,
        ep: SearchEpoch,
        data: &SearchData,
        epoch: u32,
    ) -> Result<EpochRecord, RunError> {
        let progress = ep.progress;
        let train_s = progress.train_s_before + ep.start.elapsed().as_secs_f64();
        let s = &mut self.searcher;
        let (valid_loss, valid_acc) = s.evaluate(&data.valid);
        let genotype = s.method.genotype(&s.arch);
        let encoding = genotype.encoding();
        let cosine = self
            .prev_encoding
            .as_ref()
            .map(|p: &Vec<f64>| cosine_distance(p, &encoding));
        self.prev_encoding = Some(encoding);
        let seen_f = progress.seen.max(1) as f64;
        let record = EpochRecord {
            epoch,
            train_acc: i64::try_from(&progress.correct_sum).unwrap_or(0) as f64 / seen_f,
            train_loss: f64::try_from(&progress.loss_sum).unwrap_or(f64::NAN) / seen_f,
            valid_acc,
            valid_loss,
            lr: ep.lr,
            tau: s.method.tau(),
            genotype: genotype.to_text(),
            skip_normal: genotype.skip_count(0),
            skip_reduce: (genotype.cells.len() > 1).then(|| genotype.skip_count(1)),
            cosine_distance: cosine,
            wall_s: progress.train_s_before + ep.start.elapsed().as_secs_f64(),
            images_per_s: (2 * progress.seen) as f64 / train_s.max(1e-9),
            peak_mem_bytes: peak_rss_bytes(),
            sampling_counts: s.method.sampling_counts(),
            subspaces: progress.subspaces,
            ratio_hist: s.method.ratio_hist(),
            steps: progress.step_records,
        };
        self.last_valid_acc = valid_acc;
        self.genotype_text = record.genotype.clone();
        Ok(record)
    }

    fn saved(&self, epoch: u32, ep: Option<&SearchEpoch>, wall_s: f64) -> CheckpointState {
        let s = &self.searcher;
        CheckpointState {
            fingerprint: s.cfg.fingerprint(),
            epoch,
            step: s.step,
            adam_steps: s.adam.steps,
            method: s.method.saved(),
            prev_encoding: self.prev_encoding.clone(),
            prev_step_encoding: self.prev_step_encoding.clone(),
            wall_s,
            tensors_file: String::new(),
            partial: ep.map(|ep| ep.progress.saved(&ep.rng, ep.start.elapsed().as_secs_f64())),
        }
    }

    fn tensors(&self) -> Vec<(String, Tensor)> {
        self.searcher.checkpoint_tensors()
    }

    fn outcome(&mut self, epochs_run: u32, wall_s: f64) -> SearchOutcome {
        if self.genotype_text.is_empty() {
            let s = &self.searcher;
            self.genotype_text = s.method.genotype(&s.arch).to_text();
        }
        SearchOutcome {
            genotype: std::mem::take(&mut self.genotype_text),
            final_valid_acc: self.last_valid_acc,
            epochs_run,
            wall_s,
        }
    }
}
/// Reads the pending losses (one host round trip every few steps) and
/// reports the first non-finite one with its epoch and step.
fn check_finite(
    losses: &[Tensor],
    epoch: u32,
    last_step: usize,
    global_step: u64,
) -> Result<(), RunError> {
    let values: Vec<f64> = Vec::try_from(
        Tensor::stack(losses, 0)
            .to_kind(Kind::Double)
            .to_device(Device::Cpu),
    )
    .unwrap_or_default();
    let first = last_step + 1 - values.len();
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(RunError::Diverged {
            epoch,
            step: first + i,
            global_step: global_step + 1 + i as u64 - values.len() as u64,
            loss: values[i],
        }),
    }
}
