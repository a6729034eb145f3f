//! DDSAS (docs/design.md §2): mixture weights of both modes and the UCB sampler
//! of subspaces.
//!
//! The sampler's state (`UcbState`) is plain data, saved whole in every
//! checkpoint, so a resumed search draws exactly the subspaces an
//! uninterrupted one would.

use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::arch::metrics::{add_ratios, combinations, CellTable, SubspaceRecord};
use crate::arch::space::{SearchSpace, NONE};
use crate::config::ResolvedConfig;

/// Normalisation guard of both modes (docs/design.md §2).
const EPS: f64 = 1e-14;

/// Mixture weights `[cell, edge, op]` of a subspace `z` (bool, same shape).
///
/// With the approximation (paper Eq. 7): `w = q * p`; without (normalized
/// Eq. 9): `w = q * prod_l P_l`, `P = p` in `z` and `1 - p` outside. Both are
/// normalised per edge by the L1 norm + 1e-14. `q` is the softmax of alpha
/// over the ops of the edge in `z`, `p = sigmoid(beta)`. Returns the
/// normalised and the un-normalised weights.
pub fn mixture_weights(
    alpha: &Tensor,
    beta: &Tensor,
    z: &Tensor,
    approximation: bool,
) -> (Tensor, Tensor) {
    let q = alpha
        .masked_fill(&z.logical_not(), f64::NEG_INFINITY)
        .softmax(-1, Kind::Float);
    let p = beta.sigmoid();
    let raw = if approximation {
        &q * &p
    } else {
        let factors = p.where_self(z, &(1.0 - &p));
        &q * factors.prod_dim_int(-1, true, Kind::Float)
    };
    let norm = raw.abs().sum_dim_intlist(-1, true, Kind::Float) + EPS;
    (&raw / norm, raw)
}

/// The sampler's state per cell type (docs/design.md §2, "Subspace sampling").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UcbState {
    /// `n[e,k]`: times op k on edge e was in a subspace, from 1.
    pub n: CellTable<f64>,
    /// `N`: subspace updates so far, from 1.
    pub updates: Vec<f64>,
    /// Running mean of each op's un-normalised weight while in a subspace.
    pub saliency: CellTable<f64>,
    /// Ops the elastic schedule currently allows.
    pub available: CellTable<bool>,
    /// The current subspace Z.
    pub subspace: CellTable<bool>,
    /// Subspaces drawn so far (the next one's iteration number).
    pub iteration: u64,
    /// Cumulative count of subspaces containing each op (Fig. 9).
    pub sampling_counts: CellTable<u64>,
    /// Cumulative ratio histogram per cell type (Fig. 12 b).
    pub ratio_hist: Vec<[u64; 5]>,
}

/// DDSAS settings taken from the resolved config.
#[derive(Debug, Clone)]
pub struct DdsasSettings {
    /// Counted ops per cell type.
    pub l: usize,
    /// Weight steps between subspace updates.
    pub m: u64,
    /// UCB exploration constant.
    pub c: f64,
    /// Epochs of random subspaces before UCB.
    pub begin: u32,
    /// Chance of a random subspace after `begin`.
    pub random_prob: f64,
    /// Eq. 7 (true) or normalized Eq. 9 (false).
    pub approximation: bool,
}

impl DdsasSettings {
    /// Reads the DDSAS knobs of a config.
    pub fn from_config(cfg: &ResolvedConfig) -> Self {
        let c = cfg.config();
        DdsasSettings {
            l: c.L as usize,
            m: u64::from(c.M),
            c: c.ucb_c,
            begin: c.begin,
            random_prob: c.random_prob,
            approximation: c.approximation,
        }
    }
}

impl UcbState {
    /// Fresh state: every count at 1, saliency 0, no subspace yet.
    pub fn new(space: &SearchSpace, cells: usize, initial_ops: &[bool]) -> Self {
        let (e, k) = (space.edges(), space.num_ops());
        UcbState {
            n: vec![vec![vec![1.0; k]; e]; cells],
            updates: vec![1.0; cells],
            saliency: vec![vec![vec![0.0; k]; e]; cells],
            available: vec![vec![initial_ops.to_vec(); e]; cells],
            subspace: vec![vec![vec![false; k]; e]; cells],
            iteration: 0,
            sampling_counts: vec![vec![vec![0; k]; e]; cells],
            ratio_hist: vec![[0; 5]; cells],
        }
    }

    /// Step 1 of an update: folds the un-normalised weights of the ops in
    /// the current subspace into their saliency, `n += 1`, then `N += 1`.
    pub fn fold(&mut self, raw_weights: &CellTable<f64>) {
        for (c, cell) in self.subspace.iter().enumerate() {
            for (e, edge) in cell.iter().enumerate() {
                for (k, &inside) in edge.iter().enumerate() {
                    if inside {
                        self.n[c][e][k] += 1.0;
                        let seen = self.n[c][e][k] - 1.0;
                        let s = &mut self.saliency[c][e][k];
                        *s += (raw_weights[c][e][k] - *s) / seen;
                    }
                }
            }
            self.updates[c] += 1.0;
        }
    }

    /// `UCB[e,k] = p[e,k] + c * sqrt(ln N / n[e,k])`.
    pub fn ucb(&self, space_prob: &CellTable<f64>, c: f64) -> CellTable<f64> {
        space_prob
            .iter()
            .enumerate()
            .map(|(t, cell)| {
                let ln_n = self.updates[t].ln();
                cell.iter()
                    .enumerate()
                    .map(|(e, edge)| {
                        edge.iter()
                            .enumerate()
                            .map(|(k, &p)| p + c * (ln_n / self.n[t][e][k]).sqrt())
                            .collect()
                    })
                    .collect()
            })
            .collect()
    }

    /// Steps 2–3: the new subspace from per-op scores (UCB, or uniform noise
    /// for a random subspace), then the Fig. 9 / Fig. 12 bookkeeping.
    /// Returns the subspace records of this draw.
    pub fn draw(
        &mut self,
        scores: &CellTable<f64>,
        l: usize,
        space_prob: &CellTable<f64>,
    ) -> Vec<SubspaceRecord> {
        let iteration = self.iteration;
        self.iteration += 1;
        let mut records = Vec::new();
        for (c, cell_scores) in scores.iter().enumerate() {
            let z = select(cell_scores, &self.available[c], l);
            for (e, edge) in z.iter().enumerate() {
                for (k, &inside) in edge.iter().enumerate() {
                    if inside {
                        self.sampling_counts[c][e][k] += 1;
                    }
                }
            }
            add_ratios(&mut self.ratio_hist[c], &z, &space_prob[c]);
            records.push(SubspaceRecord {
                iteration,
                cell: c,
                size: size(&z) as u32,
                combinations: combinations(&z),
            });
            self.subspace[c] = z;
        }
        records
    }

    /// Removes, per cell type, the `remove` available non-`none` ops with
    /// the lowest saliency, never the last one of an edge (elastic shrink).
    pub fn shrink(&mut self, remove: usize) {
        for c in 0..self.available.len() {
            let mut candidates: Vec<(usize, usize, f64)> = Vec::new();
            for (e, edge) in self.available[c].iter().enumerate() {
                for (k, &a) in edge.iter().enumerate() {
                    if a && k != NONE {
                        candidates.push((e, k, self.saliency[c][e][k]));
                    }
                }
            }
            candidates.sort_by(|a, b| a.2.partial_cmp(&b.2).unwrap_or(std::cmp::Ordering::Equal));
            let mut removed = 0;
            for (e, k, _) in candidates {
                if removed == remove {
                    break;
                }
                let left = self.available[c][e]
                    .iter()
                    .enumerate()
                    .filter(|&(j, &a)| a && j != NONE)
                    .count();
                if left > 1 {
                    self.available[c][e][k] = false;
                    removed += 1;
                }
            }
        }
    }

    /// Makes ops available on every edge (elastic expand).
    pub fn expand(&mut self, ops: &[usize]) {
        for cell in &mut self.available {
            for edge in cell.iter_mut() {
                for &k in ops {
                    edge[k] = true;
                }
            }
        }
    }

    /// Whether the current subspace holds an op the schedule removed.
    pub fn subspace_outdated(&self) -> bool {
        self.subspace
            .iter()
            .flatten()
            .zip(self.available.iter().flatten())
            .any(|(z, a)| z.iter().zip(a).any(|(&z, &a)| z && !a))
            || self.iteration == 0
    }
}

/// Uniform random scores: a random subspace through the same selection rule.
pub fn random_scores(like: &CellTable<f64>, rng: &mut impl Rng) -> CellTable<f64> {
    like.iter()
        .map(|cell| {
            cell.iter()
                .map(|edge| edge.iter().map(|_| rng.gen::<f64>()).collect())
                .collect()
        })
        .collect()
}

/// Ops in a subspace of one cell type, `none` included: what L counts.
fn size(z: &[Vec<bool>]) -> usize {
    z.iter().flatten().filter(|&&m| m).count()
}

/// Selection rule of one cell type: on each edge the available non-`none`
/// op with the highest score (every edge runs at least one op); then ops by
/// descending score across edges, `none` like any other, until `l` ops are
/// in. Ties go to the lower edge, then the lower op, so the draw is
/// deterministic. With fewer than `l` ops available (an elastic schedule
/// removed some), every available op is in.
fn select(scores: &[Vec<f64>], available: &[Vec<bool>], l: usize) -> Vec<Vec<bool>> {
    let mut z: Vec<Vec<bool>> = scores.iter().map(|edge| vec![false; edge.len()]).collect();
    let mut count = 0;
    for (e, edge) in scores.iter().enumerate() {
        let best = edge
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != NONE && available[e][k])
            .fold(None, |best: Option<(usize, f64)>, (k, &s)| match best {
                Some((_, b)) if b >= s => best,
                _ => Some((k, s)),
            });
        if let Some((k, _)) = best {
            z[e][k] = true;
            count += 1;
        }
    }
    let mut rest: Vec<(usize, usize, f64)> = scores
        .iter()
        .enumerate()
        .flat_map(|(e, edge)| edge.iter().enumerate().map(move |(k, &s)| (e, k, s)))
        .filter(|&(e, k, _)| available[e][k] && !z[e][k])
        .collect();
    rest.sort_by(|a, b| b.2.partial_cmp(&a.2).unwrap_or(std::cmp::Ordering::Equal));
    for (e, k, _) in rest.into_iter().take(l.saturating_sub(count)) {
        z[e][k] = true;
    }
    z
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::space::SpaceKind;
    use rand::SeedableRng;

    fn darts() -> SearchSpace {
        SearchSpace::new(SpaceKind::Darts)
    }

    /// Checks the appendix's constraints (Eq. 14) on every cell type of the
    /// current subspace: `sum_c y_c = L`, `1 <= y_c <= 8`, a runnable op on
    /// every edge, nothing unavailable.
    fn assert_subspace(state: &UcbState, records: &[SubspaceRecord], l: usize) {
        for (c, z) in state.subspace.iter().enumerate() {
            assert_eq!(size(z), l, "cell {c}: L = {l} ops, none included");
            assert_eq!(records[c].size as usize, l);
            assert_eq!(records[c].combinations, combinations(z));
            for (e, edge) in z.iter().enumerate() {
                let y = edge.iter().filter(|&&m| m).count();
                assert!((1..=8).contains(&y), "edge {e}: y = {y}");
                assert!(edge.iter().enumerate().any(|(k, &m)| m && k != NONE));
                for (k, &m) in edge.iter().enumerate() {
                    assert!(!m || state.available[c][e][k], "unavailable op sampled");
                }
            }
        }
    }

    #[test]
    fn sampler_keeps_exactly_l_ops_counting_none() {
        let space = darts();
        let mut state = UcbState::new(&space, 2, &[true; 8]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let probs = random_scores(&state.n, &mut rng);
        for l in [14, 15, 28, 60, 84, 111, 112] {
            for _ in 0..20 {
                let scores = random_scores(&state.n, &mut rng);
                let records = state.draw(&scores, l, &probs);
                assert_subspace(&state, &records, l);
                state.fold(&probs);
            }
        }
    }

    #[test]
    fn none_is_drawn_and_counted_when_it_scores_high() {
        let space = darts();
        let mut state = UcbState::new(&space, 1, &[true; 8]);
        let mut scores = vec![vec![vec![0.0; 8]; 14]; 1];
        for edge in &mut scores[0] {
            edge[NONE] = 1.0;
            edge[3] = 0.5;
        }
        let probs = scores.clone();
        let records = state.draw(&scores, 28, &probs);
        assert_subspace(&state, &records, 28);
        // The runnable op first, then `none` on every edge: 2 ops each.
        for edge in &state.subspace[0] {
            assert!(edge[NONE] && edge[3]);
        }
    }

    #[test]
    fn l_15_gives_17_combinations_and_112_the_whole_space() {
        let space = darts();
        let mut state = UcbState::new(&space, 2, &[true; 8]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let probs = random_scores(&state.n, &mut rng);
        // 14 edges of one op and one edge of two: 13 * 1 + 2 * 2 = 17.
        let records = state.draw(&random_scores(&state.n, &mut rng), 15, &probs);
        assert!(records.iter().all(|r| r.combinations == 17), "{records:?}");
        let records = state.draw(&random_scores(&state.n, &mut rng), 112, &probs);
        assert!(state.subspace.iter().flatten().flatten().all(|&m| m));
        assert!(records
            .iter()
            .all(|r| r.size == 112 && r.combinations == 14 * 64));
    }

    #[test]
    fn unavailable_ops_cap_the_subspace() {
        let space = darts();
        let mut ops = vec![true; 8];
        ops[5] = false; // sep_conv_5x5 unavailable
        let mut state = UcbState::new(&space, 2, &ops);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let probs = random_scores(&state.n, &mut rng);
        for l in [28, 98] {
            let records = state.draw(&random_scores(&state.n, &mut rng), l, &probs);
            assert_subspace(&state, &records, l);
        }
        let records = state.draw(&random_scores(&state.n, &mut rng), 112, &probs);
        assert!(records.iter().all(|r| r.size == 98));
    }

    #[test]
    fn ucb_prefers_rarely_sampled_ops() {
        let space = SearchSpace::new(SpaceKind::Nb201);
        let mut state = UcbState::new(&space, 1, &[true; 5]);
        state.updates[0] = 10.0;
        state.n[0][0][1] = 9.0;
        let p = vec![vec![vec![0.5; 5]; 6]; 1];
        let u = state.ucb(&p, 1.44);
        assert!(u[0][0][2] > u[0][0][1]);
        let expected = 0.5 + 1.44 * (10f64.ln() / 9.0).sqrt();
        assert!((u[0][0][1] - expected).abs() < 1e-12);
    }

    #[test]
    fn fold_keeps_a_running_mean() {
        let space = SearchSpace::new(SpaceKind::Nb201);
        let mut state = UcbState::new(&space, 1, &[true; 5]);
        state.subspace[0][2][3] = true;
        let mut w = vec![vec![vec![0.0; 5]; 6]; 1];
        w[0][2][3] = 0.2;
        state.fold(&w);
        w[0][2][3] = 0.4;
        state.fold(&w);
        assert!((state.saliency[0][2][3] - 0.3).abs() < 1e-12);
        assert_eq!(state.n[0][2][3], 3.0);
        assert_eq!(state.updates[0], 3.0);
        assert_eq!(state.saliency[0][1][3], 0.0);
    }

    #[test]
    fn shrink_removes_lowest_saliency_but_keeps_an_op_per_edge() {
        let space = SearchSpace::new(SpaceKind::Nb201);
        let mut state = UcbState::new(&space, 1, &[true; 5]);
        for e in 0..6 {
            for k in 1..5 {
                state.saliency[0][e][k] = (e * 10 + k) as f64;
            }
        }
        state.shrink(5);
        // Edge 0 loses ops 1,2,3 (it must keep op 4); edge 1 loses ops 1,2.
        assert_eq!(state.available[0][0], vec![true, false, false, false, true]);
        assert_eq!(state.available[0][1], vec![true, false, false, true, true]);
        assert!(state.subspace_outdated());
    }

    /// Mixture weights of both modes against values computed by hand.
    #[test]
    fn mixture_weights_match_hand_computed_values() {
        // One cell, one edge, three ops; Z = {op 1, op 2}.
        let alpha = Tensor::from_slice(&[0.0f32, 0.0, (2.0f32).ln()]).view([1, 1, 3]);
        let p = [0.2f32, 0.6, 0.7];
        let beta = Tensor::from_slice(&p.map(|p| (p / (1.0 - p)).ln())).view([1, 1, 3]);
        let z = Tensor::from_slice(&[false, true, true]).view([1, 1, 3]);
        let values = |t: Tensor| -> Vec<f32> { t.flatten(0, -1).try_into().unwrap() };
        let close = |got: Vec<f32>, want: [f32; 3]| {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
            }
        };
        // q = (0, 1/3, 2/3). With the approximation: q * p = (0, 0.2, 0.4667).
        let (w, raw) = mixture_weights(&alpha, &beta, &z, true);
        close(values(raw), [0.0, 0.2, 1.4 / 3.0]);
        close(values(w), [0.0, 0.3, 0.7]);
        // Eq. 9: q * (1 - 0.2) * 0.6 * 0.7 = q * 0.336 on every op of the edge.
        let (w, raw) = mixture_weights(&alpha, &beta, &z, false);
        close(values(raw), [0.0, 0.336 / 3.0, 0.672 / 3.0]);
        // Normalised over the edge, the shared product cancels: w = q.
        close(values(w), [0.0, 1.0 / 3.0, 2.0 / 3.0]);
    }

    /// Seed Eq. 13 in its extreme form: normalising Eq. 9 over an edge
    /// cancels the subspace probability, so beta gets no gradient (up to
    /// float rounding) while the approximation's gradient is of order one.
    #[test]
    fn space_gradient_vanishes_without_the_approximation() {
        let grad_norm = |approximation: bool| {
            tch::manual_seed(3);
            let alpha = (Tensor::randn([1, 14, 8], (Kind::Float, tch::Device::Cpu)) * 0.1)
                .set_requires_grad(true);
            let beta = (Tensor::randn([1, 14, 8], (Kind::Float, tch::Device::Cpu)) * 0.1)
                .set_requires_grad(true);
            let pattern: Vec<bool> = (0..14 * 8)
                .map(|i| i % 8 == 1 || (i / 8 + i) % 3 == 0)
                .collect();
            let z = Tensor::from_slice(&pattern).view([1, 14, 8]);
            let target = Tensor::randn([1, 14, 8], (Kind::Float, tch::Device::Cpu));
            let (w, _) = mixture_weights(&alpha, &beta, &z, approximation);
            let loss = (w * target).sum(Kind::Float);
            let g = Tensor::run_backward(&[loss], &[&beta], false, false);
            f64::try_from(g[0].norm()).unwrap()
        };
        let with = grad_norm(true);
        let without = grad_norm(false);
        assert!(with > 0.1, "with the approximation: {with}");
        // Exactly 0 in real arithmetic; float32 rounding of the cancelled
        // product leaves at most a few ulps.
        assert!(
            without / with < 1e-6,
            "ratio {} (with {with}, without {without})",
            without / with
        );
    }
}
