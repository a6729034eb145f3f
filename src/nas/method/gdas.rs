//! GDAS: one op per edge drawn by hard Gumbel-softmax with a
//! straight-through gradient (docs/design.md §2, "Baselines").

use tch::{Device, Kind, Tensor};

use crate::nas::metrics::CellTable;
use crate::nas::space::SearchSpace;
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

/// Plan of a training step: runs exactly the chosen op of each edge and
/// adds the other ops' hard weights (value 0) to the nodes, as GDAS's
/// authors do, so that alpha's gradient on an edge has a part from every op.
pub fn train_plan(space: &SearchSpace, chosen: &[Vec<usize>], device: Device) -> ExecPlan {
    plan(space, chosen, device).with_unpicked(space, chosen, device)
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
    use crate::nas::space::SpaceKind;

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

    /// GDAS's own form: the unpicked ops' hard weights enter the node sum,
    /// so their gradient (and through it alpha's) is not zero, while the
    /// forward value is the picked op's alone.
    #[test]
    fn unpicked_ops_pass_a_gradient_to_alpha() {
        use crate::nas::supernet::{per_cell, Supernet, SupernetShape};
        let space = SearchSpace::new(SpaceKind::Nb201);
        tch::manual_seed(4);
        let net = Supernet::new(
            SupernetShape {
                space: SpaceKind::Nb201,
                layers: 1,
                channels: 4,
                in_channels: 1,
                classes: 10,
            },
            Device::Cpu,
        );
        let x = Tensor::randn([2, 1, 8, 8], (Kind::Float, Device::Cpu));
        let alpha =
            (Tensor::randn([1, 6, 5], (Kind::Float, Device::Cpu)) * 1e-3).set_requires_grad(true);
        let (hard, chosen) = hard_sample(&alpha, 5.0);
        let picked_only = plan(&space, &chosen, Device::Cpu);
        let with_unpicked = train_plan(&space, &chosen, Device::Cpu);
        let grads = |p: &ExecPlan| {
            let logits = net.forward_t(&x, &per_cell(&hard), p, true);
            let g = Tensor::run_backward(&[logits.sum(Kind::Float)], &[&hard, &alpha], true, false);
            let hard_grad: Vec<f32> = Vec::try_from(g[0].flatten(0, -1)).unwrap();
            (logits.detach(), hard_grad, g[1].copy())
        };
        let (logits_a, hard_a, alpha_a) = grads(&picked_only);
        let (logits_b, hard_b, alpha_b) = grads(&with_unpicked);
        let same = f64::try_from((&logits_a - &logits_b).abs().max()).unwrap();
        assert!(
            same < 1e-6,
            "the unpicked terms add zero to the value: {same}"
        );
        for (e, &k) in chosen[0].iter().enumerate() {
            for j in (0..5).filter(|&j| j != k) {
                assert_eq!(hard_a[e * 5 + j], 0.0, "picked-only: edge {e} op {j}");
                // Edges 3-5 end in the cell's output node, which always
                // reaches the logits (an inner node may feed only `none`).
                if e >= 3 {
                    assert!(hard_b[e * 5 + j] != 0.0, "GDAS form: edge {e} op {j}");
                }
            }
        }
        let moved = f64::try_from((alpha_a - alpha_b).abs().max()).unwrap();
        assert!(
            moved > 0.0,
            "alpha's gradient has a part from the unpicked ops"
        );
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
