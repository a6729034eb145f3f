//! GDAS: one op per edge drawn by hard Gumbel-softmax with a
//! straight-through gradient (docs/design.md §2, "Baselines").

use tch::{Device, Kind, Tensor};

use crate::arch::metrics::CellTable;
use crate::arch::space::{SearchSpace, SpaceKind};
use crate::nas::supernet::ExecPlan;

/// Hard one-hot weights `[cell, edge, op]` with straight-through gradient,
/// and the chosen op of every `[cell][edge]` (one host round trip: the ops
/// to run must be known on the host).
pub fn hard_sample(alpha: &Tensor, tau: f64) -> (Tensor, Vec<Vec<usize>>) {
    let uniform = alpha.rand_like().clamp(1e-10, 1.0 - 1e-7);
    let gumbel = -(-uniform.log()).log();
    let probs = ((alpha.log_softmax(-1, Kind::Float) + gumbel) / tau).softmax(-1, Kind::Float);
    let index = probs.argmax(-1, true);
    let one_hot = probs.zeros_like().scatter_value(-1, &index, 1.0);
    let hard = one_hot - probs.detach() + probs;
    (hard, chosen(&index))
}

/// The argmax op of every edge as one-hot weights (for evaluation).
pub fn argmax_sample(alpha: &Tensor) -> (Tensor, Vec<Vec<usize>>) {
    let index = alpha.argmax(-1, true);
    let hard = alpha.detach().zeros_like().scatter_value(-1, &index, 1.0);
    (hard, chosen(&index))
}

fn chosen(index: &Tensor) -> Vec<Vec<usize>> {
    let edges = index.size()[1] as usize;
    let flat: Vec<i64> =
        Vec::try_from(index.to_device(Device::Cpu).flatten(0, -1)).expect("indices convert");
    flat.chunks(edges)
        .map(|c| c.iter().map(|&k| k as usize).collect())
        .collect()
}

/// Plan of a training step: runs exactly the chosen op of each edge,
/// weighted by its hard weight, as GDAS's authors' code does in each space.
/// In NAS-Bench-201 their cell also adds every other op's hard weight
/// (value 0) to the node, so alpha's gradient on an edge has a part from
/// every op; their DARTS-space cell does not (`MixedOp.forward_gdas`
/// returns the picked op times its weight), so nor does ours.
pub fn train_plan(space: &SearchSpace, chosen: &[Vec<usize>], device: Device) -> ExecPlan {
    let picked = plan(space, chosen, device);
    match space.kind {
        SpaceKind::Nb201 => picked.with_unpicked(space, chosen, device),
        SpaceKind::Darts => picked,
    }
}

/// Plan running exactly the chosen op of each edge.
pub fn plan(space: &SearchSpace, chosen: &[Vec<usize>], device: Device) -> ExecPlan {
    let mask: CellTable<bool> = chosen
        .iter()
        .map(|cell| {
            cell.iter()
                .map(|&k| (0..space.num_ops()).map(|j| j == k).collect())
                .collect()
        })
        .collect();
    ExecPlan::from_mask(space, &mask, device)
}

/// Adds one sample to the cumulative counts.
pub fn add_counts(counts: &mut CellTable<u64>, chosen: &[Vec<usize>]) {
    for (cell, edges) in counts.iter_mut().zip(chosen) {
        for (edge, &k) in cell.iter_mut().zip(edges) {
            edge[k] += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_op_per_edge_with_straight_through_gradient() {
        tch::manual_seed(1);
        let space = SearchSpace::new(SpaceKind::Nb201);
        let alpha =
            (Tensor::randn([1, 6, 5], (Kind::Float, Device::Cpu)) * 1e-3).set_requires_grad(true);
        let (hard, chosen) = hard_sample(&alpha, 5.0);
        let values: Vec<f32> = Vec::try_from(hard.detach().flatten(0, -1)).unwrap();
        for (e, row) in values.chunks(5).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                let want = if k == chosen[0][e] { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-6);
            }
        }
        let p = plan(&space, &chosen, Device::Cpu);
        let executed: usize = p.cells[0].iter().map(|n| n.ops.len()).sum();
        let non_none = chosen[0].iter().filter(|&&k| k != 0).count();
        assert_eq!(
            executed, non_none,
            "exactly one op per edge runs (none never runs)"
        );
        // The straight-through estimator passes a gradient to alpha.
        let target = Tensor::randn([1, 6, 5], (Kind::Float, Device::Cpu));
        let g = Tensor::run_backward(&[(hard * target).sum(Kind::Float)], &[&alpha], false, false);
        assert!(f64::try_from(g[0].norm()).unwrap() > 0.0);
    }

    /// The gradient of the loss with respect to the hard weights, with
    /// the picked-only plan and with the training plan, in `kind`'s space
    /// (a one-cell-per-type supernet, 8x8 grey images), with the logits of
    /// both and the picks; and alpha's gradient under each.
    fn hard_gradients(kind: SpaceKind) -> GdasGradients {
        use crate::nas::supernet::{per_cell, Supernet, SupernetShape};
        let space = SearchSpace::new(kind);
        tch::manual_seed(4);
        let layers = if kind == SpaceKind::Darts { 3 } else { 1 };
        let net = Supernet::new(
            SupernetShape {
                space: kind,
                layers,
                channels: 4,
                in_channels: 1,
                classes: 10,
            },
            Device::Cpu,
        );
        let x = Tensor::randn([2, 1, 8, 8], (Kind::Float, Device::Cpu));
        let cells = if kind == SpaceKind::Darts { 2 } else { 1 };
        let (edges, ops) = (space.edges() as i64, space.num_ops() as i64);
        let alpha = (Tensor::randn([cells, edges, ops], (Kind::Float, Device::Cpu)) * 1e-3)
            .set_requires_grad(true);
        let (hard, chosen) = hard_sample(&alpha, 5.0);
        let run = |p: &ExecPlan| {
            let logits = net.forward_t(&x, &per_cell(&hard), p, true);
            let g = Tensor::run_backward(&[logits.sum(Kind::Float)], &[&hard, &alpha], true, false);
            let hard_grad: Vec<f32> = Vec::try_from(g[0].flatten(0, -1)).unwrap();
            (logits.detach(), hard_grad, g[1].copy())
        };
        GdasGradients {
            picked_only: run(&plan(&space, &chosen, Device::Cpu)),
            training: run(&train_plan(&space, &chosen, Device::Cpu)),
            chosen,
            ops: ops as usize,
            edges: edges as usize,
        }
    }

    struct GdasGradients {
        /// Logits, gradient of the hard weights (flat), alpha's gradient.
        picked_only: (Tensor, Vec<f32>, Tensor),
        training: (Tensor, Vec<f32>, Tensor),
        chosen: Vec<Vec<usize>>,
        ops: usize,
        edges: usize,
    }

    /// NAS-Bench-201, GDAS's authors' form there (`NAS201SearchCell.
    /// forward_gdas`): the unpicked ops' hard weights enter the node sum,
    /// so their gradient (and through it alpha's) is not zero, while the
    /// forward value is the picked op's alone.
    #[test]
    fn in_nb201_unpicked_ops_pass_a_gradient_to_alpha() {
        let g = hard_gradients(SpaceKind::Nb201);
        let (logits_a, hard_a, alpha_a) = &g.picked_only;
        let (logits_b, hard_b, alpha_b) = &g.training;
        let same = f64::try_from((logits_a - logits_b).abs().max()).unwrap();
        assert!(
            same < 1e-6,
            "the unpicked terms add zero to the value: {same}"
        );
        for (e, &k) in g.chosen[0].iter().enumerate() {
            for j in (0..g.ops).filter(|&j| j != k) {
                assert_eq!(hard_a[e * g.ops + j], 0.0, "picked-only: edge {e} op {j}");
                // Edges 3-5 end in the cell's output node, which always
                // reaches the logits (an inner node may feed only `none`).
                if e >= 3 {
                    assert!(hard_b[e * g.ops + j] != 0.0, "GDAS form: edge {e} op {j}");
                }
            }
        }
        let moved = f64::try_from((alpha_a - alpha_b).abs().max()).unwrap();
        assert!(
            moved > 0.0,
            "alpha's gradient has a part from the unpicked ops"
        );
    }

    /// The DARTS space, GDAS's authors' form there (`MixedOp.forward_gdas`
    /// of their NASNet search cell returns `op[index](x) * w[index]`): a
    /// node is the sum of the picked ops times their weights and nothing
    /// else, so only the picked ops' weights get a gradient, and the
    /// training forward is exactly the picked-only plan, gradients included.
    #[test]
    fn in_the_darts_space_only_the_picked_ops_weights_get_a_gradient() {
        let g = hard_gradients(SpaceKind::Darts);
        let (logits_a, hard_a, alpha_a) = &g.picked_only;
        let (logits_b, hard_b, alpha_b) = &g.training;
        assert_eq!(
            f64::try_from((logits_a - logits_b).abs().max()).unwrap(),
            0.0
        );
        assert_eq!(hard_a, hard_b, "the same gradient as the picked-only plan");
        assert_eq!(f64::try_from((alpha_a - alpha_b).abs().max()).unwrap(), 0.0);
        let mut picked_with_gradient = 0;
        for (c, picks) in g.chosen.iter().enumerate() {
            for (e, &k) in picks.iter().enumerate() {
                for j in 0..g.ops {
                    let grad = hard_b[(c * g.edges + e) * g.ops + j];
                    if j != k {
                        assert_eq!(grad, 0.0, "cell {c} edge {e}: unpicked op {j}");
                    } else if grad != 0.0 {
                        picked_with_gradient += 1;
                    }
                }
            }
        }
        assert!(
            picked_with_gradient > 0,
            "the picked ops' weights carry the gradient"
        );
        assert!(f64::try_from(alpha_b.abs().max()).unwrap() > 0.0);
    }

    #[test]
    fn sampling_follows_alpha() {
        tch::manual_seed(2);
        let alpha = Tensor::zeros([1, 6, 5], (Kind::Float, Device::Cpu));
        let _ = alpha.narrow(2, 3, 1).fill_(5.0);
        let mut counts = vec![vec![vec![0u64; 5]; 6]; 1];
        for _ in 0..200 {
            let (_, chosen) = hard_sample(&alpha, 1.0);
            add_counts(&mut counts, &chosen);
        }
        for edge in &counts[0] {
            assert_eq!(edge.iter().sum::<u64>(), 200);
            assert!(edge[3] > 180, "{edge:?}");
        }
    }
}
