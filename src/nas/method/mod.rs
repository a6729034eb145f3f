//! The three search methods behind one interface: which ops run, with what
//! mixture weights, which architecture parameters the Adam step updates, and
//! how the architecture is derived (docs/design.md §2).

pub mod ddsas;
pub mod gdas;

use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::arch::metrics::{CellTable, Genotype, SamplingCount, SubspaceRecord};
use crate::arch::space::SearchSpace;
use crate::config::{Method, ResolvedConfig};
use crate::nas::supernet::{per_cell, ExecPlan};

use ddsas::{mixture_weights, random_scores, DdsasSettings, UcbState};

/// Architecture parameters `alpha` and space parameters `beta`, both
/// `[cell type, edge, op]`.
#[derive(Debug)]
pub struct ArchParams {
    /// Architecture parameters (softmax over ops).
    pub alpha: Tensor,
    /// Space parameters (`p = sigmoid(beta)`, DDSAS only).
    pub beta: Tensor,
}

impl ArchParams {
    /// `1e-3 * N(0, 1)` initialisation, as in DARTS; draws from libtorch's
    /// global generator.
    pub fn new(space: &SearchSpace, cells: usize, device: Device) -> Self {
        let shape = [cells as i64, space.edges() as i64, space.num_ops() as i64];
        let init = || (Tensor::randn(shape, (Kind::Float, device)) * 1e-3).set_requires_grad(true);
        let alpha = init();
        let beta = init();
        ArchParams { alpha, beta }
    }
}

/// Copies a `[cell, edge, op]` tensor to the host.
pub fn to_table(t: &Tensor) -> CellTable<f64> {
    let size = t.size();
    let flat: Vec<f64> = Vec::try_from(
        t.detach()
            .to_kind(Kind::Double)
            .to_device(Device::Cpu)
            .flatten(0, -1),
    )
    .expect("a float tensor converts to Vec<f64>");
    let (e, k) = (size[1] as usize, size[2] as usize);
    flat.chunks(e * k)
        .map(|cell| cell.chunks(k).map(<[f64]>::to_vec).collect())
        .collect()
}

/// A cell table as a tensor of the same shape.
pub fn table_to_tensor(table: &CellTable<bool>, device: Device) -> Tensor {
    let (c, e, k) = (table.len(), table[0].len(), table[0][0].len());
    let flat: Vec<bool> = table.iter().flatten().flatten().copied().collect();
    Tensor::from_slice(&flat)
        .view([c as i64, e as i64, k as i64])
        .to_device(device)
}

/// What a checkpoint keeps of a method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SavedMethod {
    /// DARTS keeps nothing beyond its parameters.
    Darts,
    /// The UCB sampler.
    Ddsas(UcbState),
    /// Cumulative counts of sampled ops.
    Gdas(CellTable<u64>),
}

enum Inner {
    Darts,
    Ddsas {
        settings: DdsasSettings,
        ucb: UcbState,
        subspace: Tensor,
    },
    Gdas {
        tau: f64,
        tau_range: (f64, f64),
        counts: CellTable<u64>,
    },
}

/// A method's live state during a search.
pub struct MethodState {
    /// Which method.
    pub method: Method,
    space: SearchSpace,
    device: Device,
    epochs: u32,
    inner: Inner,
    plan: ExecPlan,
}

impl MethodState {
    /// Fresh state for a config.
    pub fn new(cfg: &ResolvedConfig, space: &SearchSpace, cells: usize, device: Device) -> Self {
        let saved = match cfg.config().method {
            Method::Darts => SavedMethod::Darts,
            Method::Ddsas => SavedMethod::Ddsas(UcbState::new(space, cells, cfg.initial_ops())),
            Method::Gdas => {
                SavedMethod::Gdas(vec![vec![vec![0; space.num_ops()]; space.edges()]; cells])
            }
        };
        Self::restore(cfg, space, cells, device, saved)
    }

    /// State from a checkpoint.
    pub fn restore(
        cfg: &ResolvedConfig,
        space: &SearchSpace,
        cells: usize,
        device: Device,
        saved: SavedMethod,
    ) -> Self {
        let c = cfg.config();
        let inner = match saved {
            SavedMethod::Darts => Inner::Darts,
            SavedMethod::Ddsas(ucb) => Inner::Ddsas {
                settings: DdsasSettings::from_config(cfg),
                subspace: table_to_tensor(&ucb.subspace, device),
                ucb,
            },
            SavedMethod::Gdas(counts) => Inner::Gdas {
                tau: c.tau_max,
                tau_range: (c.tau_max, c.tau_min),
                counts,
            },
        };
        let plan = match &inner {
            Inner::Ddsas { ucb, .. } => ExecPlan::from_mask(space, &ucb.subspace, device),
            _ => ExecPlan::all(space, cells, device),
        };
        MethodState {
            method: c.method,
            space: space.clone(),
            device,
            epochs: c.epochs,
            inner,
            plan,
        }
    }

    /// What the checkpoint stores.
    pub fn saved(&self) -> SavedMethod {
        match &self.inner {
            Inner::Darts => SavedMethod::Darts,
            Inner::Ddsas { ucb, .. } => SavedMethod::Ddsas(ucb.clone()),
            Inner::Gdas { counts, .. } => SavedMethod::Gdas(counts.clone()),
        }
    }

    /// The parameters the architecture (Adam) step updates.
    pub fn arch_tensors(&self, arch: &ArchParams) -> Vec<Tensor> {
        match self.inner {
            Inner::Ddsas { .. } => vec![arch.alpha.shallow_clone(), arch.beta.shallow_clone()],
            _ => vec![arch.alpha.shallow_clone()],
        }
    }

    /// Gumbel temperature of the current epoch (GDAS only).
    pub fn tau(&self) -> Option<f64> {
        match self.inner {
            Inner::Gdas { tau, .. } => Some(tau),
            _ => None,
        }
    }

    /// Epoch start: GDAS sets its temperature; DDSAS applies the elastic
    /// schedule and draws the first subspace (or a new one when the
    /// schedule removed ops of the current one).
    pub fn start_epoch(
        &mut self,
        cfg: &ResolvedConfig,
        epoch: u32,
        arch: &ArchParams,
        rng: &mut impl Rng,
    ) -> Vec<SubspaceRecord> {
        self.resume_epoch(epoch);
        match &mut self.inner {
            Inner::Darts | Inner::Gdas { .. } => Vec::new(),
            Inner::Ddsas { ucb, .. } => {
                let schedule = &cfg.config().space_schedule;
                for step in schedule.shrink.iter().filter(|s| s.epoch == epoch) {
                    ucb.shrink(step.remove as usize);
                }
                for step in schedule.expand.iter().filter(|s| s.epoch == epoch) {
                    let ops: Vec<usize> = step
                        .ops
                        .iter()
                        .filter_map(|o| self.space.op_index(o))
                        .collect();
                    ucb.expand(&ops);
                }
                if ucb.subspace_outdated() {
                    self.draw(epoch, arch, rng)
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// What an epoch resumed part-way through needs of its start, without
    /// what `start_epoch` already did before the stop (the elastic
    /// schedule and draws, whose result the checkpoint holds): GDAS's
    /// temperature, which is a function of the epoch.
    pub fn resume_epoch(&mut self, epoch: u32) {
        let epochs = self.epochs;
        if let Inner::Gdas { tau, tau_range, .. } = &mut self.inner {
            let (max, min) = *tau_range;
            let progress = if epochs > 1 {
                f64::from(epoch) / f64::from(epochs - 1)
            } else {
                0.0
            };
            *tau = max - (max - min) * progress;
        }
    }

    /// Before a search step, with `steps_done` weight steps done over the
    /// whole run: every M steps DDSAS folds the current weights into the
    /// UCB state and draws a new subspace. Done before the step rather than
    /// after the M-th one so that an epoch never ends on a freshly drawn,
    /// untrained subspace (its accuracy would say nothing), and a resumed
    /// run draws at the same point with the same epoch's generator.
    pub fn before_step(
        &mut self,
        steps_done: u64,
        epoch: u32,
        arch: &ArchParams,
        rng: &mut impl Rng,
    ) -> Vec<SubspaceRecord> {
        let (m, approximation) = match &self.inner {
            Inner::Ddsas { settings, .. } => (settings.m, settings.approximation),
            _ => return Vec::new(),
        };
        if steps_done == 0 || !steps_done.is_multiple_of(m) {
            return Vec::new();
        }
        let raw = tch::no_grad(|| {
            let Inner::Ddsas { subspace, .. } = &self.inner else {
                unreachable!()
            };
            to_table(&mixture_weights(&arch.alpha, &arch.beta, subspace, approximation).1)
        });
        if let Inner::Ddsas { ucb, .. } = &mut self.inner {
            ucb.fold(&raw);
        }
        self.draw(epoch, arch, rng)
    }

    /// Replaces the DDSAS subspace by `mask` (which may include `none`),
    /// for `bench step --mask`: running exactly the reference's sampled
    /// ops makes the timing comparison like for like. False for the
    /// baselines, which have no subspace.
    pub fn set_subspace(&mut self, mask: &CellTable<bool>) -> bool {
        let Inner::Ddsas { ucb, subspace, .. } = &mut self.inner else {
            return false;
        };
        ucb.subspace = mask.clone();
        *subspace = table_to_tensor(mask, self.device);
        self.plan = ExecPlan::from_mask(&self.space, mask, self.device);
        true
    }

    fn draw(&mut self, epoch: u32, arch: &ArchParams, rng: &mut impl Rng) -> Vec<SubspaceRecord> {
        let Inner::Ddsas {
            settings,
            ucb,
            subspace,
        } = &mut self.inner
        else {
            return Vec::new();
        };
        let p = to_table(&arch.beta.detach().sigmoid());
        let random = epoch < settings.begin
            || (settings.random_prob > 0.0 && rng.gen::<f64>() < settings.random_prob);
        let scores = if random {
            random_scores(&p, rng)
        } else {
            ucb.ucb(&p, settings.c)
        };
        let records = ucb.draw(&scores, settings.l, &p);
        *subspace = table_to_tensor(&ucb.subspace, self.device);
        self.plan = ExecPlan::from_mask(&self.space, &ucb.subspace, self.device);
        records
    }

    /// Mixture weights (per cell type, flattened) and the plan of a training
    /// forward pass. GDAS draws a fresh Gumbel sample each call (`count`
    /// adds it to the sampling counts).
    pub fn train_weights(&mut self, arch: &ArchParams, count: bool) -> (Vec<Tensor>, &ExecPlan) {
        let weights = match &mut self.inner {
            Inner::Darts => arch.alpha.softmax(-1, Kind::Float),
            Inner::Ddsas {
                settings, subspace, ..
            } => mixture_weights(&arch.alpha, &arch.beta, subspace, settings.approximation).0,
            Inner::Gdas { tau, counts, .. } => {
                let (hard, chosen) = gdas::hard_sample(&arch.alpha, *tau);
                if count {
                    gdas::add_counts(counts, &chosen);
                }
                self.plan = gdas::train_plan(&self.space, &chosen, self.device);
                hard
            }
        };
        (per_cell(&weights), &self.plan)
    }

    /// Weights and plan for measuring accuracy: GDAS runs its argmax ops,
    /// the others what they train with.
    pub fn eval_weights(&mut self, arch: &ArchParams) -> (Vec<Tensor>, &ExecPlan) {
        if let Inner::Gdas { .. } = self.inner {
            let (hard, chosen) = gdas::argmax_sample(&arch.alpha);
            self.plan = gdas::plan(&self.space, &chosen, self.device);
            return (per_cell(&hard), &self.plan);
        }
        self.train_weights(arch, false)
    }

    /// The derived architecture: from saliency (DDSAS, available ops only)
    /// or from `softmax(alpha)` (DARTS, GDAS).
    ///
    /// DDSAS derives from the saliency *as if the current subspace were
    /// folded in now*, without touching the sampler: before the first
    /// update (M steps) saliency is all zero and would name an arbitrary
    /// architecture, and a run with M at least its length would never name
    /// a real one (NOTES.md).
    pub fn genotype(&self, arch: &ArchParams) -> Genotype {
        match &self.inner {
            Inner::Ddsas {
                ucb,
                subspace,
                settings,
            } => {
                let raw = tch::no_grad(|| {
                    let weights =
                        mixture_weights(&arch.alpha, &arch.beta, subspace, settings.approximation);
                    to_table(&weights.1)
                });
                let mut preview = ucb.clone();
                preview.fold(&raw);
                Genotype::derive(&self.space, &preview.saliency, &preview.available)
            }
            _ => {
                let scores = to_table(&arch.alpha.detach().softmax(-1, Kind::Float));
                let all = scores
                    .iter()
                    .map(|c| c.iter().map(|e| vec![true; e.len()]).collect())
                    .collect();
                Genotype::derive(&self.space, &scores, &all)
            }
        }
    }

    /// Cumulative sampling counts (empty for DARTS, which samples nothing).
    pub fn sampling_counts(&self) -> Vec<SamplingCount> {
        let table = match &self.inner {
            Inner::Darts => return Vec::new(),
            Inner::Ddsas { ucb, .. } => &ucb.sampling_counts,
            Inner::Gdas { counts, .. } => counts,
        };
        let mut out = Vec::new();
        for (cell, edges) in table.iter().enumerate() {
            for (edge, ops) in edges.iter().enumerate() {
                for (op, &count) in ops.iter().enumerate() {
                    out.push(SamplingCount {
                        cell,
                        edge,
                        op,
                        count,
                    });
                }
            }
        }
        out
    }

    /// Cumulative ratio histogram per cell type (DDSAS only).
    pub fn ratio_hist(&self) -> Vec<[u64; 5]> {
        match &self.inner {
            Inner::Ddsas { ucb, .. } => ucb.ratio_hist.clone(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::config::SearchConfig;

    /// Before the first subspace update every saliency is zero; the genotype
    /// must still name the ops the current subspace is training, not an
    /// arbitrary first op (which also is what a run with M at least its
    /// length would report for good).
    #[test]
    fn ddsas_genotype_follows_the_current_subspace_before_any_update() {
        let overrides = ["L=14".to_string(), "M=1000".to_string()];
        let cfg = SearchConfig::default()
            .with_overrides(&overrides)
            .unwrap()
            .resolve()
            .unwrap();
        let space = SearchSpace::new(cfg.config().space);
        tch::manual_seed(0);
        let arch = ArchParams::new(&space, 2, Device::Cpu);
        let mut method = MethodState::new(&cfg, &space, 2, Device::Cpu);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let _ = method.start_epoch(&cfg, 0, &arch, &mut rng);
        let Inner::Ddsas { ucb, .. } = &method.inner else {
            unreachable!()
        };
        assert!(ucb.saliency.iter().flatten().flatten().all(|&s| s == 0.0));
        let genotype = method.genotype(&arch);
        for (c, cell) in genotype.cells.iter().enumerate() {
            for &(edge, op) in &cell.edges {
                assert!(
                    ucb.subspace[c][edge][op],
                    "cell {c} edge {edge}: derived op {op} is not in the subspace"
                );
            }
        }
        assert_eq!(ucb.updates, vec![1.0, 1.0], "the sampler was not touched");
    }
}
