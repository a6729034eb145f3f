//! The supernets of both spaces (docs/design.md §2) and the execution plan that
//! says which ops run.
//!
//! A forward pass takes the mixture weights (`[cell type][edge * op]`,
//! computed by the method) and an [`ExecPlan`]; only the planned ops run, so
//! a DDSAS subspace or a GDAS sample costs what it contains. Each node's
//! incoming op outputs are stacked and mixed with one matrix product.

use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::arch::metrics::CellTable;
use crate::arch::space::SpaceKind;
use crate::arch::space::{SearchSpace, NONE};
use crate::nas::ops::{
    bn, cat_channels, conv, global_avg_pool, global_avg_pool_cat, is_channels_last,
    to_channels_last, BatchNorm, FactorizedReduce, Op, ReluConvBn,
};

/// The ops of one node of one cell type, and where their weights sit in the
/// flattened `edge * op` weight vector.
#[derive(Debug)]
pub struct NodePlan {
    /// `(edge, op)` pairs to run, `none` excluded.
    pub ops: Vec<(usize, usize)>,
    /// Flat indices `edge * num_ops + op`, on the device.
    index: Tensor,
    /// GDAS: flat indices of the ops not picked on the node's edges. Their
    /// hard weights (value 0) are added to the node as they are, so that,
    /// as in GDAS's own straight-through form, alpha receives a gradient
    /// through every op's weight and not only the picked one's.
    unpicked: Option<Tensor>,
}

/// Which ops run, per cell type and node.
#[derive(Debug)]
pub struct ExecPlan {
    /// Per cell type, per intermediate node.
    pub cells: Vec<Vec<NodePlan>>,
}

impl ExecPlan {
    /// Plan that runs every op marked in `mask` (`none` never runs).
    pub fn from_mask(space: &SearchSpace, mask: &CellTable<bool>, device: Device) -> ExecPlan {
        let nodes = space.edge_nodes();
        let first = nodes[0].0;
        let last = nodes.last().expect("spaces have edges").0;
        let k = space.num_ops();
        let cells = mask
            .iter()
            .map(|cell| {
                (first..=last)
                    .map(|to| {
                        let ops: Vec<(usize, usize)> = nodes
                            .iter()
                            .enumerate()
                            .filter(|(_, &(t, _))| t == to)
                            .flat_map(|(e, _)| {
                                (0..k)
                                    .filter(move |&op| op != NONE && cell[e][op])
                                    .map(move |op| (e, op))
                            })
                            .collect();
                        let flat: Vec<i64> =
                            ops.iter().map(|&(e, op)| (e * k + op) as i64).collect();
                        NodePlan {
                            index: Tensor::from_slice(&flat).to_device(device),
                            ops,
                            unpicked: None,
                        }
                    })
                    .collect()
            })
            .collect();
        ExecPlan { cells }
    }

    /// Adds GDAS's straight-through terms: on every edge, the weights of
    /// the ops other than `chosen[cell][edge]` join the node's sum as they
    /// are (their value is 0; their gradient reaches alpha).
    pub fn with_unpicked(
        mut self,
        space: &SearchSpace,
        chosen: &[Vec<usize>],
        device: Device,
    ) -> ExecPlan {
        let nodes = space.edge_nodes();
        let first = nodes[0].0;
        let k = space.num_ops();
        for (cell, picks) in self.cells.iter_mut().zip(chosen) {
            for (i, node) in cell.iter_mut().enumerate() {
                let flat: Vec<i64> = nodes
                    .iter()
                    .enumerate()
                    .filter(|(_, &(to, _))| to == first + i)
                    .flat_map(|(e, _)| {
                        (0..k)
                            .filter(move |&op| op != picks[e])
                            .map(move |op| (e * k + op) as i64)
                    })
                    .collect();
                node.unpicked = Some(Tensor::from_slice(&flat).to_device(device));
            }
        }
        self
    }

    /// Plan that runs every op of the space.
    pub fn all(space: &SearchSpace, cells: usize, device: Device) -> ExecPlan {
        let mask = vec![vec![vec![true; space.num_ops()]; space.edges()]; cells];
        Self::from_mask(space, &mask, device)
    }
}

/// The candidate ops of one edge (`None` for `none`).
#[derive(Debug)]
struct MixedEdge {
    ops: Vec<Option<Op>>,
}

impl MixedEdge {
    fn new(space: &SearchSpace, p: nn::Path, c: i64, stride: i64) -> Self {
        let ops = space
            .ops()
            .iter()
            .map(|name| Op::new(space.kind, name, &p / *name, c, stride))
            .collect();
        MixedEdge { ops }
    }
}

/// Runs a cell body: `states` holds the input nodes; intermediate nodes are
/// appended. `zero_like` gives the shape of a node none of whose ops runs.
fn run_nodes(
    space: &SearchSpace,
    edges: &[MixedEdge],
    states: &mut Vec<Tensor>,
    plan: &[NodePlan],
    weights: &Tensor,
    train: bool,
    zero_like: impl Fn(&Tensor) -> Tensor,
) {
    let nodes = space.edge_nodes();
    // ReLU of each state, computed once for all the ops that start with it.
    let mut relus: Vec<Option<Tensor>> = Vec::new();
    for node in plan {
        relus.resize_with(states.len(), || None);
        let outs: Vec<Tensor> = node
            .ops
            .iter()
            .map(|&(e, k)| {
                let op = edges[e].ops[k].as_ref().expect("plans never contain none");
                let from = nodes[e].1;
                let x = &states[from];
                let cached = &mut relus[from];
                op.forward_t(
                    x,
                    || cached.get_or_insert_with(|| x.relu()).shallow_clone(),
                    train,
                )
            })
            .collect();
        let w = weights.index_select(0, &node.index);
        let value = match outs.len() {
            0 => zero_like(&states[states.len() - 1]),
            1 => &outs[0] * w,
            _ => mix(&outs, &w),
        };
        let value = match &node.unpicked {
            Some(index) => value + weights.index_select(0, index).sum(weights.kind()),
            None => value,
        };
        states.push(value);
    }
}

/// `sum_k w[k] * outs[k]` as one matrix product over the stacked outputs,
/// in the layout of the outputs: channels-last ones are stacked as their
/// `[N, H, W, C]` views, so the result is channels-last too, and
/// channels-first ones as they are. A layout flipped here would make every
/// later op convert its input.
fn mix(outs: &[Tensor], w: &Tensor) -> Tensor {
    let channels_last = is_channels_last(&outs[0]);
    let parts: Vec<Tensor> = if channels_last {
        outs.iter().map(|t| t.permute([0, 2, 3, 1])).collect()
    } else {
        outs.iter().map(Tensor::shallow_clone).collect()
    };
    let stacked = Tensor::stack(&parts, 0);
    let shape = stacked.size();
    let mixed = w
        .unsqueeze(0)
        .matmul(&stacked.view([outs.len() as i64, -1]))
        .view(&shape[1..]);
    if channels_last {
        mixed.permute([0, 3, 1, 2])
    } else {
        mixed
    }
}

/// A DARTS-space cell.
#[derive(Debug)]
struct DartsCell {
    reduce: bool,
    pre0: Preprocess,
    pre1: ReluConvBn,
    edges: Vec<MixedEdge>,
}

#[derive(Debug)]
enum Preprocess {
    Reduce(FactorizedReduce),
    Conv(ReluConvBn),
}

impl DartsCell {
    fn new(
        space: &SearchSpace,
        p: nn::Path,
        c_pp: i64,
        c_p: i64,
        c: i64,
        reduce: bool,
        reduce_prev: bool,
    ) -> Self {
        let pre0 = if reduce_prev {
            Preprocess::Reduce(FactorizedReduce::new(&p / "pre0", c_pp, c, false))
        } else {
            Preprocess::Conv(ReluConvBn::new(&p / "pre0", c_pp, c, 1, 1, 0, false))
        };
        let pre1 = ReluConvBn::new(&p / "pre1", c_p, c, 1, 1, 0, false);
        let edges = space
            .edge_nodes()
            .iter()
            .enumerate()
            .map(|(e, &(_, from))| {
                let stride = if reduce && from < 2 { 2 } else { 1 };
                MixedEdge::new(space, &p / format!("edge{e}"), c, stride)
            })
            .collect();
        DartsCell {
            reduce,
            pre0,
            pre1,
            edges,
        }
    }

    /// The cell's intermediate states, which its output concatenates.
    fn states_t(
        &self,
        space: &SearchSpace,
        s0: &Tensor,
        s1: &Tensor,
        plan: &[NodePlan],
        weights: &Tensor,
        train: bool,
    ) -> Vec<Tensor> {
        let s0 = match &self.pre0 {
            Preprocess::Reduce(r) => r.forward_t(s0, train),
            Preprocess::Conv(c) => c.forward_t(s0, train),
        };
        let s1 = self.pre1.forward_t(s1, train);
        let reduce = self.reduce;
        let template = s1.shallow_clone();
        let mut states = vec![s0, s1];
        run_nodes(
            space,
            &self.edges,
            &mut states,
            plan,
            weights,
            train,
            |_| {
                let mut shape = template.size();
                if reduce {
                    shape[2] = (shape[2] + 1) / 2;
                    shape[3] = (shape[3] + 1) / 2;
                }
                Tensor::zeros(&shape, (template.kind(), template.device()))
            },
        );
        states.split_off(2)
    }
}

/// NB201's residual reduction block between stages.
#[derive(Debug)]
struct ResBlock {
    a: ReluConvBn,
    b: ReluConvBn,
    shortcut: nn::Conv2D,
}

impl ResBlock {
    fn new(p: nn::Path, c_in: i64, c_out: i64) -> Self {
        ResBlock {
            a: ReluConvBn::new(&p / "a", c_in, c_out, 3, 2, 1, true),
            b: ReluConvBn::new(&p / "b", c_out, c_out, 3, 1, 1, true),
            shortcut: conv(&p / "shortcut", c_in, c_out, 1, 1, 0, 1, 1),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let y = self.b.forward_t(&self.a.forward_t(x, train), train);
        let s = x
            .avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None)
            .apply(&self.shortcut);
        y + s
    }
}

#[derive(Debug)]
enum Nb201Layer {
    Cell(Vec<MixedEdge>),
    Res(Box<ResBlock>),
}

/// The body of a supernet. One per supernet, so the size difference of the
/// variants costs nothing worth a box.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Body {
    Darts {
        stem_conv: nn::Conv2D,
        stem_bn: BatchNorm,
        cells: Vec<DartsCell>,
    },
    Nb201 {
        stem_conv: nn::Conv2D,
        stem_bn: BatchNorm,
        layers: Vec<Nb201Layer>,
        last_bn: BatchNorm,
    },
}

/// Shape of a supernet.
#[derive(Debug, Clone, Copy)]
pub struct SupernetShape {
    /// Which space.
    pub space: SpaceKind,
    /// DARTS: cells; NB201: cells per stage.
    pub layers: i64,
    /// Channels of the first stage.
    pub channels: i64,
    /// Image channels (1 for digits, 3 for CIFAR).
    pub in_channels: i64,
    /// Number of classes.
    pub classes: i64,
}

/// A supernet: weights in `vs`, architecture parameters kept by the method.
#[derive(Debug)]
pub struct Supernet {
    /// Weights and batch-norm statistics; what the weight optimiser updates.
    pub vs: nn::VarStore,
    /// The search space.
    pub space: SearchSpace,
    body: Body,
    classifier: nn::Linear,
    /// Feed the body channels-last images (see [`to_channels_last`]).
    channels_last: bool,
}

impl Supernet {
    /// Builds the supernet on `device`; initialisation draws from libtorch's
    /// global generator, so seed it first.
    pub fn new(shape: SupernetShape, device: Device) -> Supernet {
        let vs = nn::VarStore::new(device);
        let space = SearchSpace::new(shape.space);
        let root = vs.root();
        let (body, features) = match shape.space {
            SpaceKind::Darts => darts_body(&space, &root, shape),
            SpaceKind::Nb201 => nb201_body(&space, &root, shape),
        };
        let classifier = crate::nas::ops::linear(&root / "classifier", features, shape.classes);
        Supernet {
            vs,
            space,
            body,
            classifier,
            channels_last: device == Device::Cpu,
        }
    }

    /// Whether activations are channels-last. On by default on CPU, where
    /// it is measured to pay (BENCHMARKS.md); off on CUDA, where cuDNN's
    /// fp32 NHWC kernels have not been measured against NCHW yet.
    pub fn set_channels_last(&mut self, on: bool) {
        self.channels_last = on;
    }

    /// Logits for `x`; `weights[c]` holds cell type c's flattened mixture
    /// weights and `plan` which ops run.
    pub fn forward_t(
        &self,
        x: &Tensor,
        weights: &[Tensor],
        plan: &ExecPlan,
        train: bool,
    ) -> Tensor {
        let space = &self.space;
        let x = &if self.channels_last {
            to_channels_last(x)
        } else {
            x.shallow_clone()
        };
        let features = match &self.body {
            Body::Darts {
                stem_conv,
                stem_bn,
                cells,
            } => {
                let stem = stem_bn.forward_t(&x.apply(stem_conv), train);
                // The last cell's states are pooled one by one, not
                // concatenated first (`global_avg_pool_cat`).
                let (mut s0, mut s1) = (stem.shallow_clone(), vec![stem]);
                for cell in cells {
                    let t = usize::from(cell.reduce);
                    let input = cat_channels(&s1);
                    let out = cell.states_t(space, &s0, &input, &plan.cells[t], &weights[t], train);
                    s0 = input;
                    s1 = out;
                }
                global_avg_pool_cat(&s1)
            }
            Body::Nb201 {
                stem_conv,
                stem_bn,
                layers,
                last_bn,
            } => {
                let mut h = stem_bn.forward_t(&x.apply(stem_conv), train);
                for layer in layers {
                    h = match layer {
                        Nb201Layer::Res(r) => r.forward_t(&h, train),
                        Nb201Layer::Cell(edges) => {
                            let mut states = vec![h];
                            run_nodes(
                                space,
                                edges,
                                &mut states,
                                &plan.cells[0],
                                &weights[0],
                                train,
                                Tensor::zeros_like,
                            );
                            states.pop().expect("a cell has an output node")
                        }
                    };
                }
                global_avg_pool(&last_bn.forward_t(&h, train).relu())
            }
        };
        features.apply_t(&self.classifier, train)
    }

    /// Trainable weights, sorted by name (a stable order for optimiser state).
    pub fn weight_params(&self) -> Vec<(String, Tensor)> {
        let mut vars: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// Number of trainable scalars.
    pub fn num_weights(&self) -> i64 {
        self.weight_params()
            .iter()
            .map(|(_, t)| t.numel() as i64)
            .sum()
    }
}

fn darts_body(space: &SearchSpace, root: &nn::Path, shape: SupernetShape) -> (Body, i64) {
    let c = shape.channels;
    let c_stem = 3 * c;
    let stem_conv = conv(
        root / "stem" / "conv",
        shape.in_channels,
        c_stem,
        3,
        1,
        1,
        1,
        1,
    );
    let stem_bn = bn(root / "stem" / "bn", c_stem, true);
    let (mut c_pp, mut c_p, mut c_cur) = (c_stem, c_stem, c);
    let mut reduce_prev = false;
    let mut cells = Vec::new();
    let layers = shape.layers;
    for i in 0..layers {
        let reduce = i == layers / 3 || i == 2 * layers / 3;
        if reduce {
            c_cur *= 2;
        }
        cells.push(DartsCell::new(
            space,
            root / "cells" / i,
            c_pp,
            c_p,
            c_cur,
            reduce,
            reduce_prev,
        ));
        reduce_prev = reduce;
        c_pp = c_p;
        c_p = 4 * c_cur;
    }
    (
        Body::Darts {
            stem_conv,
            stem_bn,
            cells,
        },
        c_p,
    )
}

fn nb201_body(space: &SearchSpace, root: &nn::Path, shape: SupernetShape) -> (Body, i64) {
    let c = shape.channels;
    let stem_conv = conv(root / "stem" / "conv", shape.in_channels, c, 3, 1, 1, 1, 1);
    let stem_bn = bn(root / "stem" / "bn", c, true);
    let mut layers = Vec::new();
    let mut c_cur = c;
    for stage in 0..3 {
        if stage > 0 {
            layers.push(Nb201Layer::Res(Box::new(ResBlock::new(
                root / "res" / stage,
                c_cur,
                2 * c_cur,
            ))));
            c_cur *= 2;
        }
        for i in 0..shape.layers {
            let p = root / "cells" / format!("{stage}_{i}");
            let edges = (0..space.edges())
                .map(|e| MixedEdge::new(space, &p / format!("edge{e}"), c_cur, 1))
                .collect();
            layers.push(Nb201Layer::Cell(edges));
        }
    }
    let last_bn = bn(root / "last_bn", c_cur, true);
    (
        Body::Nb201 {
            stem_conv,
            stem_bn,
            layers,
            last_bn,
        },
        c_cur,
    )
}

/// Flattens `[cell, edge, op]` mixture weights into one `edge * op` vector
/// per cell type, the form [`Supernet::forward_t`] takes.
pub fn per_cell(weights: &Tensor) -> Vec<Tensor> {
    let cells = weights.size()[0];
    let flat = weights.view([cells, -1]);
    (0..cells).map(|c| flat.get(c)).collect()
}

/// A random batch, for benchmarks and tests.
pub fn random_batch(
    batch: i64,
    channels: i64,
    size: i64,
    classes: i64,
    device: Device,
) -> (Tensor, Tensor) {
    (
        Tensor::randn([batch, channels, size, size], (Kind::Float, device)),
        Tensor::randint(classes, [batch], (Kind::Int64, device)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(space: SpaceKind, layers: i64) -> Supernet {
        tch::manual_seed(0);
        Supernet::new(
            SupernetShape {
                space,
                layers,
                channels: 4,
                in_channels: 1,
                classes: 10,
            },
            Device::Cpu,
        )
    }

    #[test]
    fn both_spaces_produce_logits_with_full_and_partial_plans() {
        for (kind, layers, cells) in [(SpaceKind::Darts, 3, 2), (SpaceKind::Nb201, 1, 1)] {
            let n = net(kind, layers);
            let space = SearchSpace::new(kind);
            let w = Tensor::ones(
                [cells, space.edges() as i64, space.num_ops() as i64],
                (Kind::Float, Device::Cpu),
            );
            let x = Tensor::randn([3, 1, 8, 8], (Kind::Float, Device::Cpu));
            let full = n.forward_t(
                &x,
                &per_cell(&w),
                &ExecPlan::all(&space, cells as usize, Device::Cpu),
                true,
            );
            assert_eq!(full.size(), vec![3, 10]);
            // Only `none` on every edge: nodes are zeros, the net still runs.
            let mut mask = vec![vec![vec![false; space.num_ops()]; space.edges()]; cells as usize];
            for cell in &mut mask {
                for edge in cell.iter_mut() {
                    edge[NONE] = true;
                }
            }
            let plan = ExecPlan::from_mask(&space, &mask, Device::Cpu);
            assert!(plan.cells.iter().flatten().all(|node| node.ops.is_empty()));
            let empty = n.forward_t(&x, &per_cell(&w), &plan, true);
            assert_eq!(empty.size(), vec![3, 10]);
        }
    }

    /// Channels-last (the CPU default) is a layout, not another function:
    /// both spaces give the same logits either way, with nodes that mix
    /// several ops, one op and none.
    #[test]
    fn channels_last_and_channels_first_agree() {
        for (kind, layers, cells) in [(SpaceKind::Darts, 3, 2), (SpaceKind::Nb201, 1, 1)] {
            let mut n = net(kind, layers);
            let space = SearchSpace::new(kind);
            let w = Tensor::rand(
                [cells, space.edges() as i64, space.num_ops() as i64],
                (Kind::Float, Device::Cpu),
            );
            let mut mask = vec![vec![vec![false; space.num_ops()]; space.edges()]; cells as usize];
            // Edge 0 alone feeds the first node: one op. Edges 1-4 run
            // nothing, which empties a node of both spaces; the last node
            // mixes several ops.
            for (e, edge) in mask[0].iter_mut().enumerate() {
                for (k, op) in edge.iter_mut().enumerate() {
                    *op = match e {
                        0 => k == 1,
                        1..=4 => false,
                        _ => (e + k) % 3 != 0,
                    };
                }
            }
            let plan = ExecPlan::from_mask(&space, &mask, Device::Cpu);
            let x = Tensor::randn([3, 1, 8, 8], (Kind::Float, Device::Cpu));
            let mut logits = Vec::new();
            for on in [true, false] {
                n.set_channels_last(on);
                logits.push(n.forward_t(&x, &per_cell(&w), &plan, true));
            }
            let diff = f64::try_from((&logits[0] - &logits[1]).abs().max()).unwrap();
            assert!(diff < 1e-4, "{kind:?}: {diff}");
        }
    }

    /// Mixing keeps the layout it is given, so a channels-first network
    /// (CUDA) is not turned channels-last at the first node, and sums right.
    #[test]
    fn mix_keeps_the_layout_and_sums() {
        let outs: Vec<Tensor> = (0..3)
            .map(|_| Tensor::randn([2, 4, 3, 3], (Kind::Float, Device::Cpu)))
            .collect();
        let w = Tensor::from_slice(&[0.5f32, -1.0, 2.0]);
        let want = &outs[0] * 0.5 - &outs[1] + &outs[2] * 2.0;
        let first = mix(&outs, &w);
        assert!(first.is_contiguous());
        let last: Vec<Tensor> = outs.iter().map(to_channels_last).collect();
        let mixed = mix(&last, &w);
        assert!(is_channels_last(&mixed));
        for got in [first, mixed] {
            let diff = f64::try_from((got - &want).abs().max()).unwrap();
            assert!(diff < 1e-5, "{diff}");
        }
    }

    #[test]
    fn weights_reach_only_executed_ops() {
        let n = net(SpaceKind::Nb201, 1);
        let space = SearchSpace::new(SpaceKind::Nb201);
        let mut mask = vec![vec![vec![false; 5]; 6]; 1];
        for edge in mask[0].iter_mut() {
            edge[3] = true; // nor_conv_3x3 only
        }
        let plan = ExecPlan::from_mask(&space, &mask, Device::Cpu);
        let w = Tensor::ones([1, 6, 5], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let x = Tensor::randn([4, 1, 8, 8], (Kind::Float, Device::Cpu));
        let loss = n.forward_t(&x, &per_cell(&w), &plan, true).sum(Kind::Float);
        let params: Vec<Tensor> = n.weight_params().into_iter().map(|(_, t)| t).collect();
        let grads = Tensor::run_backward(&[loss], &params, false, false);
        let names: Vec<String> = n.weight_params().into_iter().map(|(k, _)| k).collect();
        for (name, g) in names.iter().zip(&grads) {
            let executed = !name.contains("edge") || name.contains("nor_conv_3x3");
            assert_eq!(g.defined(), executed, "{name}");
        }
    }
}
