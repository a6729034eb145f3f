//! What a search and a training measure (docs/design.md §3): derived
//! genotypes, their one-hot encoding and cosine distance (appendix B.5),
//! subspace combinations and the ratio histogram (appendix B.8), and the
//! records an epoch of a search or of a training produces.
//!
//! Everything here is plain Rust over `f64`/`bool` so that it can be tested
//! by hand and used by the report code without libtorch.

use serde::{Deserialize, Serialize};

use crate::arch::space::SpaceKind;
use crate::arch::space::{SearchSpace, NONE};

/// Per cell type, per edge, per op values (`[cell][edge][op]`).
pub type CellTable<T> = Vec<Vec<Vec<T>>>;

/// The edges a derived cell keeps, each with its op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellGenotype {
    /// `(edge, op)` pairs, in edge order.
    pub edges: Vec<(usize, usize)>,
}

/// A derived architecture: one `CellGenotype` per cell type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genotype {
    /// Which space the indices refer to.
    pub space: SpaceKind,
    /// One per cell type, in `SearchSpace::cell_types` order.
    pub cells: Vec<CellGenotype>,
}

impl Genotype {
    /// Derives the architecture from per-op scores (docs/design.md §2).
    ///
    /// DARTS space: each intermediate node keeps the 2 incoming edges with the
    /// largest non-`none` score, each with its best non-`none` op.
    /// NB201: argmax over all ops on each edge (`none` can win).
    /// Ops marked unavailable are never chosen.
    pub fn derive(
        space: &SearchSpace,
        scores: &CellTable<f64>,
        available: &CellTable<bool>,
    ) -> Self {
        let cells = scores
            .iter()
            .zip(available)
            .map(|(cell, avail)| match space.kind {
                SpaceKind::Darts => derive_darts_cell(space, cell, avail),
                SpaceKind::Nb201 => derive_nb201_cell(cell, avail),
            })
            .collect();
        Genotype {
            space: space.kind,
            cells,
        }
    }

    /// How many kept edges of cell type `cell` are `skip_connect`.
    pub fn skip_count(&self, cell: usize) -> u32 {
        let space = SearchSpace::new(self.space);
        let skip = space
            .op_index("skip_connect")
            .expect("both spaces have skip_connect");
        self.cells.get(cell).map_or(0, |c| {
            c.edges.iter().filter(|&&(_, op)| op == skip).count() as u32
        })
    }

    /// One-hot encoding (appendix B.5): edges x ops per cell type, a one on
    /// each kept edge's op, flattened and concatenated normal then reduce.
    pub fn encoding(&self) -> Vec<f64> {
        let space = SearchSpace::new(self.space);
        let (e, k) = (space.edges(), space.num_ops());
        let mut code = vec![0.0; self.cells.len() * e * k];
        for (c, cell) in self.cells.iter().enumerate() {
            for &(edge, op) in &cell.edges {
                code[c * e * k + edge * k + op] = 1.0;
            }
        }
        code
    }

    /// The text stored in the database: NB201 arch string, or DARTS
    /// `normal=[(op,from),...] reduce=[...]` with edges grouped per node.
    pub fn to_text(&self) -> String {
        let space = SearchSpace::new(self.space);
        let ops = space.ops();
        let nodes = space.edge_nodes();
        match self.space {
            SpaceKind::Nb201 => {
                let cell = &self.cells[0];
                let mut out = String::from("|");
                let mut current = 1;
                for &(edge, op) in &cell.edges {
                    let (to, from) = nodes[edge];
                    if to != current {
                        out.push_str("+|");
                        current = to;
                    }
                    out.push_str(&format!("{}~{}|", ops[op], from));
                }
                out
            }
            SpaceKind::Darts => space
                .cell_types()
                .iter()
                .zip(&self.cells)
                .map(|(name, cell)| {
                    let parts: Vec<String> = cell
                        .edges
                        .iter()
                        .map(|&(edge, op)| format!("({},{})", ops[op], nodes[edge].1))
                        .collect();
                    format!("{name}=[{}]", parts.join(","))
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

fn best_op(scores: &[f64], avail: &[bool], allow_none: bool) -> Option<(usize, f64)> {
    scores
        .iter()
        .enumerate()
        .filter(|&(k, _)| avail[k] && (allow_none || k != NONE))
        .fold(None, |best: Option<(usize, f64)>, (k, &s)| match best {
            Some((_, b)) if b >= s => best,
            _ => Some((k, s)),
        })
}

fn derive_darts_cell(space: &SearchSpace, cell: &[Vec<f64>], avail: &[Vec<bool>]) -> CellGenotype {
    let nodes = space.edge_nodes();
    let mut edges = Vec::new();
    for to in 2..=5 {
        let mut candidates: Vec<(usize, usize, f64)> = nodes
            .iter()
            .enumerate()
            .filter(|(_, &(t, _))| t == to)
            .filter_map(|(e, _)| best_op(&cell[e], &avail[e], false).map(|(k, s)| (e, k, s)))
            .collect();
        // Stable sort: ties keep the earlier edge, so derivation is deterministic.
        candidates.sort_by(|a, b| b.2.partial_cmp(&a.2).unwrap_or(std::cmp::Ordering::Equal));
        let mut kept: Vec<(usize, usize)> =
            candidates.iter().take(2).map(|&(e, k, _)| (e, k)).collect();
        kept.sort();
        edges.extend(kept);
    }
    CellGenotype { edges }
}

fn derive_nb201_cell(cell: &[Vec<f64>], avail: &[Vec<bool>]) -> CellGenotype {
    let edges = cell
        .iter()
        .zip(avail)
        .enumerate()
        .map(|(e, (s, a))| (e, best_op(s, a, true).map_or(NONE, |(k, _)| k)))
        .collect();
    CellGenotype { edges }
}

/// Cosine distance `1 - <a,b>/(|a||b|)` (appendix B.5); 0 for two zero vectors.
pub fn cosine_distance(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        return if na == nb { 0.0 } else { 1.0 };
    }
    let distance = 1.0 - dot / (na * nb);
    // Identical architectures are exactly 0 apart, not a rounding error away.
    if distance.abs() < 1e-12 {
        0.0
    } else {
        distance
    }
}

/// Combinations of one sampled subspace of one cell type (appendix Eq. 14):
/// `sum_c y_c^2` with `y_c` the ops present on edge c, `none` included (so
/// `sum_c y_c = L`).
pub fn combinations(mask: &[Vec<bool>]) -> u64 {
    mask.iter()
        .map(|edge| {
            let y = edge.iter().filter(|&&m| m).count() as u64;
            y * y
        })
        .sum()
}

/// Bin labels of the ratio histogram (docs/design.md §3).
pub const RATIO_BINS: [&str; 5] = ["<0.8", "0.8-0.9", "0.9-1.1", "1.1-1.2", ">=1.2"];

/// Index into `RATIO_BINS` of a ratio `r = p[k1]/p[k2]`.
pub fn ratio_bin(r: f64) -> usize {
    if r < 0.8 {
        0
    } else if r < 0.9 {
        1
    } else if r <= 1.1 {
        2
    } else if r < 1.2 {
        3
    } else {
        4
    }
}

/// Adds to `hist` the ratio `p[k1]/p[k2]` of every ordered pair (with
/// replacement) of ops present on the same edge, `none` included (its
/// weight takes part in the normalisation like any op's); `space_prob` is
/// `[edge][op]`. Adds exactly `combinations(mask)` entries.
pub fn add_ratios(hist: &mut [u64; 5], mask: &[Vec<bool>], space_prob: &[Vec<f64>]) {
    for (edge, probs) in mask.iter().zip(space_prob) {
        let present: Vec<f64> = edge
            .iter()
            .zip(probs)
            .filter(|&(&m, _)| m)
            .map(|(_, &p)| p)
            .collect();
        for &p1 in &present {
            for &p2 in &present {
                hist[ratio_bin(p1 / p2)] += 1;
            }
        }
    }
}

/// Cumulative count of subspaces containing one (cell type, edge, op).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingCount {
    /// Cell type index.
    pub cell: usize,
    /// Edge index.
    pub edge: usize,
    /// Op index.
    pub op: usize,
    /// Subspaces (DDSAS) or sampled steps (GDAS) that contained it, so far.
    pub count: u64,
}

/// One sampled subspace of one cell type (Fig. 12 a/c).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubspaceRecord {
    /// Subspace number within the run, from 0.
    pub iteration: u64,
    /// Cell type index.
    pub cell: usize,
    /// Counted ops in the subspace (L, or fewer when the space is smaller).
    pub size: u32,
    /// `sum_c y_c^2`.
    pub combinations: u64,
}

/// Per-step measurements (Fig. 10), kept when `log_steps` is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Global step number, from 0.
    pub step: u64,
    /// Cosine distance to the previous step's derived architecture.
    pub cosine_distance: Option<f64>,
    /// Accuracy of the weight step's minibatch.
    pub minibatch_acc: f64,
}

/// Everything one epoch produces; written to the database in one transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number, from 0.
    pub epoch: u32,
    /// Training (weight half) accuracy, 0..1.
    pub train_acc: f64,
    /// Training loss.
    pub train_loss: f64,
    /// Accuracy on the architecture half, 0..1.
    pub valid_acc: f64,
    /// Loss on the architecture half.
    pub valid_loss: f64,
    /// Weight learning rate of the epoch.
    pub lr: f64,
    /// Gumbel temperature (GDAS only).
    pub tau: Option<f64>,
    /// Derived genotype text.
    pub genotype: String,
    /// `skip_connect` among the kept edges of the normal (or only) cell.
    pub skip_normal: u32,
    /// Same for the reduce cell (DARTS space).
    pub skip_reduce: Option<u32>,
    /// Cosine distance to the previous epoch's derived architecture.
    pub cosine_distance: Option<f64>,
    /// Wall seconds of the epoch.
    pub wall_s: f64,
    /// Images per second through search steps (both halves).
    pub images_per_s: f64,
    /// Peak resident host memory (RSS) of the process in bytes, if known;
    /// on CUDA too, since tch exposes no allocator statistics (NOTES.md).
    pub peak_mem_bytes: Option<i64>,
    /// Cumulative sampling counts (empty for DARTS).
    pub sampling_counts: Vec<SamplingCount>,
    /// Subspaces sampled during this epoch.
    pub subspaces: Vec<SubspaceRecord>,
    /// Cumulative ratio histogram per cell type (DDSAS only).
    pub ratio_hist: Vec<[u64; 5]>,
    /// Per-step records of this epoch (when `log_steps`).
    pub steps: Vec<StepRecord>,
}

/// What one training epoch measured; also a `train_epochs` row as the store
/// reads it back, hence `FromRow`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TrainEpoch {
    /// Epoch, from 0.
    pub epoch: i64,
    /// Accuracy on the training batches (0..1), as trained (augmented,
    /// drop path on).
    pub train_acc: f64,
    /// Mean loss on the training batches (without the auxiliary loss).
    pub train_loss: f64,
    /// Accuracy on the test set (0..1).
    pub test_acc: f64,
    /// Mean loss on the test set.
    pub test_loss: f64,
    /// Top-5 accuracy on the training batches (0..1); `None` with fewer
    /// than five classes, and in epochs recorded before top-5 was.
    pub train_top5: Option<f64>,
    /// Top-5 accuracy on the test set (0..1); `None` as `train_top5`.
    pub test_top5: Option<f64>,
    /// Training images the loader skipped as unreadable in this epoch
    /// (ImageNet's JPEGs); `None` for datasets read whole from memory.
    pub skipped_images: Option<i64>,
    /// Learning rate of the epoch.
    pub lr: f64,
    /// Drop-path probability of the epoch.
    pub drop_path_prob: f64,
    /// Seconds the epoch took (training and test).
    pub wall_s: f64,
    /// Training images per second.
    pub images_per_s: f64,
    /// Peak resident memory of the process so far, bytes.
    pub peak_mem_bytes: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appendix_b5_cosine_example_is_one_half() {
        let arch1 = [0.0, 1.0, 0.0, 1.0, 0.0, 0.0];
        let arch2 = [0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        assert!((cosine_distance(&arch1, &arch2) - 0.5).abs() < 1e-12);
        assert_eq!(cosine_distance(&arch1, &arch1), 0.0);
    }

    fn all(space: &SearchSpace, cells: usize) -> CellTable<bool> {
        vec![vec![vec![true; space.num_ops()]; space.edges()]; cells]
    }

    #[test]
    fn darts_genotype_keeps_top_two_non_none_edges() {
        let space = SearchSpace::new(SpaceKind::Darts);
        let mut scores = vec![vec![vec![0.0; 8]; 14]; 2];
        // node 2 (edges 0,1): none is huge but ignored.
        scores[0][0] = vec![9.0, 0.1, 0.1, 0.3, 0.2, 0.1, 0.1, 0.1];
        scores[0][1] = vec![0.0, 0.1, 0.1, 0.1, 0.5, 0.1, 0.1, 0.1];
        // node 3 (edges 2,3,4): edge 3 weakest.
        scores[0][2] = vec![0.0, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        scores[0][3] = vec![0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0, 0.0];
        scores[0][4] = vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.7];
        let g = Genotype::derive(&space, &scores, &all(&space, 2));
        assert_eq!(g.cells[0].edges[0..4], [(0, 3), (1, 4), (2, 1), (4, 7)]);
        assert_eq!(g.cells[0].edges.len(), 8);
        assert_eq!(g.skip_count(0), 1);
        assert!(g.to_text().starts_with(
            "normal=[(skip_connect,0),(sep_conv_3x3,1),(max_pool_3x3,0),(dil_conv_5x5,2)"
        ));
    }

    #[test]
    fn nb201_argmax_lets_none_win_and_formats_the_arch_string() {
        let space = SearchSpace::new(SpaceKind::Nb201);
        let mut scores = vec![vec![vec![0.0; 5]; 6]; 1];
        let winners = [3, 0, 1, 2, 4, 3];
        for (e, &k) in winners.iter().enumerate() {
            scores[0][e][k] = 1.0;
        }
        let g = Genotype::derive(&space, &scores, &all(&space, 1));
        assert_eq!(
            g.to_text(),
            "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|"
        );
        assert_eq!(g.skip_count(0), 1);
        assert_eq!(g.encoding().iter().sum::<f64>(), 6.0);
    }

    #[test]
    fn unavailable_ops_are_never_chosen() {
        let space = SearchSpace::new(SpaceKind::Nb201);
        let scores = vec![vec![vec![0.0, 0.1, 0.9, 0.2, 0.3]; 6]; 1];
        let mut avail = all(&space, 1);
        for edge in avail[0].iter_mut() {
            edge[2] = false;
        }
        let g = Genotype::derive(&space, &scores, &avail);
        assert!(g.cells[0].edges.iter().all(|&(_, k)| k == 4));
    }

    #[test]
    fn combinations_and_ratio_histogram_on_a_hand_made_subspace() {
        // Two edges: ops {1,2,3} and {none,4}: y = (3, 2), combinations 9 + 4.
        let mask = vec![
            vec![false, true, true, true, false],
            vec![true, false, false, false, true],
        ];
        assert_eq!(combinations(&mask), 13);
        let probs = vec![
            vec![0.5, 0.5, 0.5, 0.58, 0.5],
            vec![0.5, 0.5, 0.5, 0.5, 0.9],
        ];
        let mut hist = [0u64; 5];
        add_ratios(&mut hist, &mask, &probs);
        // Edge 0: ratio 1 five times (three self pairs, 0.5/0.5 twice),
        // 0.5/0.58 = 0.86 twice, 0.58/0.5 = 1.16 twice.
        // Edge 1: 0.5/0.5 and 0.9/0.9 = 1, 0.5/0.9 = 0.56, 0.9/0.5 = 1.8.
        assert_eq!(hist, [1, 2, 7, 2, 1]);
        assert_eq!(hist.iter().sum::<u64>(), combinations(&mask));
    }
}
