//! The evaluation network of the DARTS protocol (appendix B.1):
//! the searched cell stacked `layers` times and trained from scratch.
//!
//! A stem ([`Stem`]: CIFAR's 3·C conv 3x3 + BN, or the mobile-setting
//! ImageNet stem of three stride-2 convs), `layers` cells built from the
//! genotype with reductions (stride 2, channels doubled) at layers/3 and
//! 2·layers/3, an auxiliary classifier after cell 2·layers/3 (training
//! only), global average pooling (any image size) and a linear classifier.
//! Ops have affine BN and pools no BN ([`Op::evaluation`]); drop path
//! zeroes an op's output per sample with probability p (not on
//! identities), scaling the kept ones by 1/(1-p). A cell's output
//! concatenates the nodes its genotype lists (nodes 2-5 in the DARTS
//! space; cells from the literature list others).

use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

use crate::arch::shape::{EvalShape, Stem};
use crate::arch::trained::{TrainedCell, TrainedGenotype};
use crate::nas::ops::{
    bn, cat_channels, conv, global_avg_pool_cat, linear, to_channels_last, BatchNorm,
    FactorizedReduce, Op, PoolKind, ReluConvBn,
};

/// The network, its weights in `vs`.
#[derive(Debug)]
pub struct EvalNetwork {
    /// Every weight; the auxiliary head's under `aux`.
    pub vs: nn::VarStore,
    stem: StemLayers,
    cells: Vec<EvalCell>,
    aux: Option<AuxHead>,
    classifier: nn::Linear,
    channels_last: bool,
}

/// The conv + BN blocks of a [`Stem`]: CIFAR's one (conv 3x3 to 3·C,
/// whose output is both inputs of the first cell), or ImageNet's three:
/// `stem0` (conv 3x3 s2 to C/2, BN, ReLU, conv 3x3 s2 to C, BN) gives the
/// first cell's `s0`, `stem1` (ReLU, conv 3x3 s2, BN) its `s1`.
#[derive(Debug)]
struct StemLayers {
    blocks: Vec<(nn::Conv2D, BatchNorm)>,
}

impl StemLayers {
    /// The stem of `shape`, and the channels it gives the first cell.
    fn new(p: &nn::Path, shape: &EvalShape) -> (Self, i64) {
        let c = shape.channels;
        let block = |name: &str, c_in: i64, c_out: i64, stride: i64| {
            (
                conv(p / format!("{name}_conv"), c_in, c_out, 3, stride, 1, 1, 1),
                bn(p / format!("{name}_bn"), c_out, true),
            )
        };
        let (blocks, c_out) = match shape.stem {
            Stem::Cifar => (vec![block("stem", shape.in_channels, 3 * c, 1)], 3 * c),
            Stem::ImageNet => (
                vec![
                    block("stem0a", shape.in_channels, c / 2, 2),
                    block("stem0b", c / 2, c, 2),
                    block("stem1", c, c, 2),
                ],
                c,
            ),
        };
        (StemLayers { blocks }, c_out)
    }

    /// The first cell's `(s0, s1)`.
    fn forward_t(&self, x: &Tensor, train: bool) -> (CellOutput, CellOutput) {
        let block =
            |(conv, bn): &(nn::Conv2D, BatchNorm), x: &Tensor| bn.forward_t(&x.apply(conv), train);
        match self.blocks.as_slice() {
            [stem] => {
                // Both inputs of the first cell: its ReLU taken once for both.
                let mut s = CellOutput::single(block(stem, x));
                s.take_relu();
                (s.shallow_clone(), s)
            }
            [stem0a, stem0b, stem1] => {
                let mut s0 = CellOutput::single(block(stem0b, &block(stem0a, x).relu()));
                let s1 = CellOutput::single(block(stem1, &s0.relu()));
                (s0, s1)
            }
            blocks => unreachable!("a stem has 1 or 3 blocks, not {}", blocks.len()),
        }
    }
}

/// One cell: its two preprocessing blocks, the genotype's ops and the
/// nodes its output concatenates.
#[derive(Debug)]
struct EvalCell {
    pre0: Pre0,
    pre1: ReluConvBn,
    /// `(op, input state)`, two per intermediate node, in genotype order.
    ops: Vec<(Op, usize)>,
    /// The states concatenated into the output.
    concat: Vec<usize>,
}

#[derive(Debug)]
enum Pre0 {
    Reduce(FactorizedReduce),
    Conv(ReluConvBn),
}

/// DARTS's auxiliary head: ReLU, avg pool 5 (stride 3 for CIFAR's 8x8
/// maps, stride 2 for ImageNet's 7x7), conv 1x1 to 128, BN, ReLU, conv 2x2
/// to 768, BN (CIFAR only: DARTS's ImageNet head has none there), ReLU,
/// linear. Maps that this pooling would not bring to 2x2 (the 8x8 digits
/// end at 2x2, small ImageNet crops at 1x1 to 4x4) are pooled to 2x2
/// directly.
#[derive(Debug)]
struct AuxHead {
    stride: i64,
    conv1: nn::Conv2D,
    bn1: BatchNorm,
    conv2: nn::Conv2D,
    bn2: Option<BatchNorm>,
    linear: nn::Linear,
}

impl AuxHead {
    fn new(p: nn::Path, c: i64, classes: i64, stem: Stem) -> Self {
        let imagenet = stem == Stem::ImageNet;
        AuxHead {
            stride: if imagenet { 2 } else { 3 },
            conv1: conv(&p / "conv1", c, 128, 1, 1, 0, 1, 1),
            bn1: bn(&p / "bn1", 128, true),
            conv2: conv(&p / "conv2", 128, 768, 2, 1, 0, 1, 1),
            bn2: (!imagenet).then(|| bn(&p / "bn2", 768, true)),
            linear: linear(&p / "linear", 768, classes),
        }
    }

    /// The head on the ReLU of its input (shared with the next cells').
    fn forward_relu_t(&self, x: &Tensor, train: bool) -> Tensor {
        let pooled = |side: i64| side >= 5 && (side - 5) / self.stride + 1 == 2;
        let size = x.size();
        let x = if pooled(size[2]) && pooled(size[3]) {
            x.avg_pool2d([5, 5], [self.stride; 2], [0, 0], false, false, None)
        } else {
            x.adaptive_avg_pool2d([2, 2])
        };
        let x = self.bn1.forward_relu_t(&x.apply(&self.conv1), train);
        // The 2x2 conv on the 2x2 map is a product of matrices: the map's
        // 512 values against the weight's rows, which oneDNN's conv ran
        // 4-10x slower than the GEMM (4 ms of a 0.2 s CIFAR step).
        let weight = self.conv2.ws.flatten(1, -1);
        let x = x.flatten(1, -1).linear(&weight, None::<Tensor>);
        let x = match &self.bn2 {
            Some(bn2) => bn2.forward_features_t(&x, train),
            None => x,
        };
        x.relu().apply(&self.linear)
    }
}

impl EvalCell {
    fn new(
        p: nn::Path,
        cell: &TrainedCell,
        [c_pp, c_p, c]: [i64; 3],
        reduce: bool,
        reduce_prev: bool,
    ) -> Self {
        let pre0 = if reduce_prev {
            Pre0::Reduce(FactorizedReduce::new(&p / "pre0", c_pp, c, true))
        } else {
            Pre0::Conv(ReluConvBn::new(&p / "pre0", c_pp, c, 1, 1, 0, true))
        };
        let ops = cell
            .ops
            .iter()
            .enumerate()
            .map(|(j, (name, input))| {
                let stride = if reduce && *input < 2 { 2 } else { 1 };
                let op = Op::evaluation(name, &p / format!("op{j}"), c, stride)
                    .expect("parsed genotypes hold no `none`");
                (op, *input)
            })
            .collect();
        EvalCell {
            pre0,
            pre1: ReluConvBn::new(&p / "pre1", c_p, c, 1, 1, 0, true),
            ops,
            concat: cell.concat.clone(),
        }
    }

    fn forward_t(
        &self,
        s0: &mut CellOutput,
        s1: &mut CellOutput,
        drop_prob: f64,
        train: bool,
    ) -> CellOutput {
        let s0 = match &self.pre0 {
            Pre0::Reduce(r) => r.forward_relu_t(&s0.relu(), train),
            Pre0::Conv(c) => c.forward_relu_t(&s0.relu(), train),
        };
        let mut states = vec![s0, self.pre1.forward_relu_t(&s1.relu(), train)];
        // The ReLU of a state, taken once for every op that starts with it.
        let mut relus: Vec<Option<Tensor>> = Vec::new();
        // Pools of a state, each taken once however many ops ask for it.
        let mut pools: Vec<(PoolKey, Tensor)> = Vec::new();
        for pair in self.ops.chunks(2) {
            relus.resize_with(states.len(), || None);
            let mut terms = Vec::with_capacity(pair.len());
            for (op, input) in pair {
                let x = &states[*input];
                let cached = &mut relus[*input];
                let relu = || cached.get_or_insert_with(|| x.relu()).shallow_clone();
                let h = match op.parameter_free_key() {
                    Some((kind, stride)) => pooled_once(&mut pools, (kind, stride, *input), || {
                        op.forward_t(x, relu, train)
                    }),
                    None => op.forward_t(x, relu, train),
                };
                let dropped = train && drop_prob > 0.0 && !matches!(op, Op::Identity);
                let mask = dropped.then(|| drop_mask(&h, drop_prob));
                terms.push((h, mask));
            }
            states.push(node_sum(terms));
        }
        relus.resize_with(states.len(), || None);
        CellOutput {
            parts: self
                .concat
                .iter()
                .map(|&i| states[i].shallow_clone())
                .collect(),
            part_relus: self.concat.iter().map(|&i| relus[i].take()).collect(),
            relu: None,
        }
    }
}

/// A pool of one cell's state, keyed by pooling, stride and state: the
/// first op to ask computes it, the others reuse it (their outputs are
/// equal, and drop path masks each op's share apart).
type PoolKey = (PoolKind, i64, usize);

/// The pool `key` from `pools`, computed by `pool` and kept there at the
/// first call.
fn pooled_once(
    pools: &mut Vec<(PoolKey, Tensor)>,
    key: PoolKey,
    pool: impl FnOnce() -> Tensor,
) -> Tensor {
    if let Some((_, pooled)) = pools.iter().find(|(k, _)| *k == key) {
        return pooled.shallow_clone();
    }
    let pooled = pool();
    pools.push((key, pooled.shallow_clone()));
    pooled
}

/// What a cell (or the stem) hands on: the states its output concatenates,
/// kept apart until asked for. The next two cells' preprocessing and the
/// auxiliary head all start with its ReLU, taken here once for all of
/// them as the concatenation of its states' ReLUs (those the cell's own
/// ops took reused); only the last cell's output is wanted without it.
#[derive(Debug)]
struct CellOutput {
    parts: Vec<Tensor>,
    part_relus: Vec<Option<Tensor>>,
    relu: Option<Tensor>,
}

impl CellOutput {
    fn single(x: Tensor) -> Self {
        CellOutput {
            parts: vec![x],
            part_relus: vec![None],
            relu: None,
        }
    }

    /// The ReLU of the output, taken at the first call.
    fn relu(&mut self) -> Tensor {
        self.take_relu();
        self.relu.as_ref().expect("just taken").shallow_clone()
    }

    /// Takes the ReLU of the output unless it is taken.
    fn take_relu(&mut self) {
        if self.relu.is_none() {
            let relus: Vec<Tensor> = self
                .parts
                .iter()
                .zip(&mut self.part_relus)
                .map(|(x, r)| r.take().unwrap_or_else(|| x.relu()))
                .collect();
            self.relu = Some(cat_channels(&relus));
        }
    }

    /// The output itself.
    #[cfg(test)]
    fn raw(&self) -> Tensor {
        cat_channels(&self.parts)
    }

    /// The global average pool of the output, `[N, channels]`.
    fn pooled(&self) -> Tensor {
        global_avg_pool_cat(&self.parts)
    }

    fn shallow_clone(&self) -> Self {
        CellOutput {
            parts: self.parts.iter().map(Tensor::shallow_clone).collect(),
            part_relus: self
                .part_relus
                .iter()
                .map(|r| r.as_ref().map(Tensor::shallow_clone))
                .collect(),
            relu: self.relu.as_ref().map(Tensor::shallow_clone),
        }
    }
}

/// Drop path's per-sample factor for `x`: 0 with probability `p`, else
/// 1/(1-p), so the expected output is unchanged. The scale is in the
/// mask, so the full-size work is one product, not a division and a
/// product.
fn drop_mask(x: &Tensor, p: f64) -> Tensor {
    let keep = 1.0 - p;
    Tensor::empty([x.size()[0], 1, 1, 1], (x.kind(), x.device())).bernoulli_float_(keep) / keep
}

/// A node's sum of its ops' outputs, each times its drop-path mask if it
/// has one. A masked term is added with one fused multiply-add
/// (`addcmul`) rather than a product and a sum, so a node costs one
/// full-size pass less per masked term; unmasked terms go first.
fn node_sum(mut terms: Vec<(Tensor, Option<Tensor>)>) -> Tensor {
    terms.sort_by_key(|(_, mask)| mask.is_some());
    let mut terms = terms.into_iter();
    let (first, mask) = terms.next().expect("a node has ops");
    let mut sum = match mask {
        Some(m) => first * m,
        None => first,
    };
    for (h, mask) in terms {
        sum = match mask {
            Some(m) => sum.addcmul(&h, &m),
            None => sum + h,
        };
    }
    sum
}

impl EvalNetwork {
    /// Builds the network of `genotype` (a DARTS-space cell or one from
    /// the literature) in `shape`.
    pub fn new(genotype: &TrainedGenotype, shape: EvalShape, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let (stem, c_stem) = StemLayers::new(&root, &shape);
        let (mut c_pp, mut c_p, mut c) = (c_stem, c_stem, shape.channels);
        let mut cells = Vec::new();
        // The ImageNet stem's `s0` is twice the side of its `s1`.
        let mut reduce_prev = shape.stem == Stem::ImageNet;
        let mut aux_channels = c_p;
        for i in 0..shape.layers {
            let reduce = i == shape.layers / 3 || i == 2 * shape.layers / 3;
            if reduce {
                c *= 2;
            }
            let p = &root / format!("cell{i}");
            let cell = genotype.cells()[usize::from(reduce)];
            cells.push(EvalCell::new(p, cell, [c_pp, c_p, c], reduce, reduce_prev));
            reduce_prev = reduce;
            (c_pp, c_p) = (c_p, cell.concat.len() as i64 * c);
            if i == 2 * shape.layers / 3 {
                aux_channels = c_p;
            }
        }
        let aux = shape
            .auxiliary
            .then(|| AuxHead::new(&root / "aux", aux_channels, shape.classes, shape.stem));
        let classifier = linear(&root / "classifier", c_p, shape.classes);
        EvalNetwork {
            stem,
            cells,
            aux,
            classifier,
            channels_last: device == Device::Cpu,
            vs,
        }
    }

    /// Logits, and in training the auxiliary head's logits.
    pub fn forward_t(&self, x: &Tensor, drop_prob: f64, train: bool) -> (Tensor, Option<Tensor>) {
        let x = if self.channels_last {
            to_channels_last(x)
        } else {
            x.shallow_clone()
        };
        let (mut s0, mut s1) = self.stem.forward_t(&x, train);
        let aux_after = 2 * self.cells.len() / 3;
        let mut aux = None;
        for (i, cell) in self.cells.iter().enumerate() {
            let out = cell.forward_t(&mut s0, &mut s1, drop_prob, train);
            s0 = std::mem::replace(&mut s1, out);
            if i == aux_after && train {
                if let Some(head) = &self.aux {
                    aux = Some(head.forward_relu_t(&s1.relu(), train));
                }
            }
        }
        let logits = s1.pooled().apply(&self.classifier);
        (logits, aux)
    }

    /// Trainable parameters without the auxiliary head: what DARTS reports
    /// as the network's size.
    pub fn params_without_aux(&self) -> i64 {
        self.vs
            .variables()
            .iter()
            .filter(|(name, t)| t.requires_grad() && !name.starts_with("aux."))
            .map(|(_, t)| t.numel() as i64)
            .sum()
    }
}

/// The training step of the DARTS protocol for an evaluation network:
/// cross-entropy plus `auxiliary_weight` times the auxiliary head's, the
/// gradients clipped to norm `grad_clip`, then SGD with momentum and L2
/// weight decay (appendix B.1: 0.9, 3e-4, clip 5, auxiliary 0.4).
#[derive(Debug)]
pub struct Trainer {
    /// The network being trained.
    pub net: EvalNetwork,
    params: Vec<Tensor>,
    sgd: crate::nas::optim::Sgd,
    grad_clip: f64,
    auxiliary_weight: f64,
    label_smoothing: f64,
}

impl Trainer {
    /// A trainer of `net` with SGD `momentum` and `weight_decay`.
    pub fn new(
        net: EvalNetwork,
        [momentum, weight_decay, grad_clip, auxiliary_weight]: [f64; 4],
    ) -> Self {
        let params = net.vs.trainable_variables();
        Trainer {
            sgd: crate::nas::optim::Sgd::flat(&params, momentum, weight_decay),
            params,
            net,
            grad_clip,
            auxiliary_weight,
            label_smoothing: 0.0,
        }
    }

    /// The trainer with label smoothing `epsilon` in both losses, the
    /// main head's and the auxiliary head's (the ImageNet recipe).
    pub fn with_label_smoothing(self, epsilon: f64) -> Self {
        Trainer {
            label_smoothing: epsilon,
            ..self
        }
    }

    /// Every tensor a checkpoint needs: weights, batch-norm statistics and
    /// the SGD momentum buffers (`sgd.N`, in parameter order).
    pub fn checkpoint_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .net
            .vs
            .variables()
            .into_iter()
            .map(|(name, t)| (format!("net.{name}"), t))
            .collect();
        for (i, buffer) in self.sgd.buffers().iter().enumerate() {
            if let Some(b) = buffer {
                out.push((format!("sgd.{i}"), b.shallow_clone()));
            }
        }
        out
    }

    /// Puts back what [`checkpoint_tensors`](Self::checkpoint_tensors) saved.
    pub fn restore(&mut self, tensors: Vec<(String, Tensor)>) {
        let mut variables = self.net.vs.variables();
        tch::no_grad(|| {
            for (name, t) in tensors {
                if let Some(var) = name.strip_prefix("net.").and_then(|n| variables.get_mut(n)) {
                    var.copy_(&t);
                } else if let Some(i) = name
                    .strip_prefix("sgd.")
                    .and_then(|k| k.parse::<usize>().ok())
                {
                    self.sgd.set_buffer(i, t);
                }
            }
        });
    }

    /// One step on the batch `(x, y)` at learning rate `lr` and drop-path
    /// probability `drop_prob`; returns the main loss and the logits
    /// (detached), for the epoch's running accuracy.
    pub fn step(&mut self, x: &Tensor, y: &Tensor, lr: f64, drop_prob: f64) -> (Tensor, Tensor) {
        let (loss, logits, grads) = self.gradients(x, y, drop_prob);
        self.apply(&grads, lr);
        (loss, logits)
    }

    /// The forward and backward passes of [`step`](Self::step): the main
    /// loss and the logits (detached) and the gradients of the trainable
    /// parameters, in their order; a data-parallel step averages them
    /// across the ranks before [`apply`](Self::apply).
    pub fn gradients(
        &self,
        x: &Tensor,
        y: &Tensor,
        drop_prob: f64,
    ) -> (Tensor, Tensor, Vec<Tensor>) {
        self.scaled_gradients(x, y, drop_prob, 1.0)
    }

    /// [`gradients`](Self::gradients) of the loss times `scale` (the main
    /// loss answered unscaled): a data-parallel rank's share of the global
    /// batch. Scaling the loss, not the gradients, keeps it right when the
    /// gradients also flow through the other ranks' shards (synchronised
    /// batch norm).
    pub fn scaled_gradients(
        &self,
        x: &Tensor,
        y: &Tensor,
        drop_prob: f64,
        scale: f64,
    ) -> (Tensor, Tensor, Vec<Tensor>) {
        let (logits, aux) = self.net.forward_t(x, drop_prob, true);
        let smoothing = self.label_smoothing;
        let loss = crate::nas::loss::smoothed_cross_entropy(&logits, y, smoothing);
        let total = match aux {
            Some(aux) if self.auxiliary_weight > 0.0 => {
                &loss
                    + crate::nas::loss::smoothed_cross_entropy(&aux, y, smoothing)
                        * self.auxiliary_weight
            }
            _ => loss.shallow_clone(),
        };
        let total = if scale == 1.0 { total } else { total * scale };
        let grads = Tensor::run_backward(&[total], &self.params, false, false);
        (loss.detach(), logits.detach(), grads)
    }

    /// Clips `grads` (the whole batch's) and takes the SGD step at `lr`.
    pub fn apply(&mut self, grads: &[Tensor], lr: f64) {
        self.sgd
            .clip_and_step(&self.params, grads, lr, self.grad_clip);
    }

    /// The trainable parameters, in the order of the gradients.
    pub fn params(&self) -> &[Tensor] {
        &self.params
    }
}

/// Mean cross-entropy of `logits` against `labels`.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Tensor {
    logits.cross_entropy_for_logits(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ReLU of a cell's output, made from its states' ReLUs (some of
    /// them taken by the cell's ops), equals the ReLU of the output.
    #[test]
    fn a_cells_relu_is_the_relu_of_its_output() {
        tch::manual_seed(3);
        let parts: Vec<Tensor> = (0..3)
            .map(|_| Tensor::randn([2, 4, 3, 3], tch::kind::FLOAT_CPU))
            .collect();
        let mut out = CellOutput {
            part_relus: vec![None, Some(parts[1].relu()), None],
            parts,
            relu: None,
        };
        let expected = out.raw().relu();
        assert_eq!(out.relu(), expected);
        assert_eq!(out.shallow_clone().relu(), expected, "taken once, shared");
        assert_eq!(out.raw().size(), [2, 12, 3, 3]);
    }
    use crate::arch::genotype;
    use tch::Kind;

    fn shape(layers: i64, channels: i64, auxiliary: bool) -> EvalShape {
        EvalShape {
            layers,
            channels,
            in_channels: 3,
            classes: 10,
            auxiliary,
            stem: Stem::Cifar,
            image_size: 32,
        }
    }

    /// The mobile-setting ImageNet network's shape (DARTS: 14 cells, C 48,
    /// 1000 classes) at `image_size`.
    fn imagenet(layers: i64, channels: i64, image_size: i64) -> EvalShape {
        EvalShape {
            classes: 1000,
            stem: Stem::ImageNet,
            image_size,
            ..shape(layers, channels, true)
        }
    }

    fn trained(name: &str) -> TrainedGenotype {
        genotype::parse_trained(name).unwrap()
    }

    /// The auxiliary head's product of matrices is the 2x2 conv it
    /// replaces, and its features' batch norm the 2-d one of the 1x1 map.
    #[test]
    fn the_auxiliary_head_computes_darts_layers() {
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let head = AuxHead::new(vs.root() / "aux", 16, 10, Stem::Cifar);
        let x = to_channels_last(&Tensor::randn([4, 16, 8, 8], (Kind::Float, Device::Cpu))).relu();
        let bn2 = head.bn2.as_ref().expect("the CIFAR head has a second norm");
        for train in [false, true] {
            let pooled = x.avg_pool2d([5, 5], [3, 3], [0, 0], false, false, None);
            let h = head.bn1.forward_t(&pooled.apply(&head.conv1), train).relu();
            let h = bn2.forward_t(&h.apply(&head.conv2), train).relu();
            let want = h.flatten(1, -1).apply(&head.linear);
            let got = head.forward_relu_t(&x, train);
            let diff = f64::try_from((&got - &want).abs().max()).unwrap();
            assert!(diff < 1e-4, "train {train}: {diff}");
        }
    }

    /// DARTS reports 3.3 M for its cell at 20 cells and 36 channels; the
    /// PyTorch reference (`ref_train_step.py --params`) counts 3,349,342.
    #[test]
    fn darts_v2_at_the_papers_size_has_the_published_parameter_count() {
        let net = EvalNetwork::new(&trained("darts_v2"), shape(20, 36, true), Device::Cpu);
        assert_eq!(net.params_without_aux(), 3_349_342);
    }

    /// DARTS reports 4.7 M for its cell in the mobile setting; the PyTorch
    /// reference (`ref_train_step.py --imagenet --params`) counts
    /// 4,718,752.
    #[test]
    fn darts_v2_on_imagenet_has_the_published_parameter_count() {
        let net = EvalNetwork::new(&trained("darts_v2"), imagenet(14, 48, 224), Device::Cpu);
        assert_eq!(net.params_without_aux(), 4_718_752);
    }

    /// NASNet-A and AmoebaNet-A as DARTS's evaluation code builds them at
    /// 20 cells and 36 channels: the counts of `ref_train_step.py
    /// --genotype nasnet --params` and `--genotype amoebanet --params`.
    #[test]
    fn cells_from_the_literature_have_the_references_parameter_counts() {
        for (name, params) in [("nasnet", 3_830_950), ("amoebanet", 3_145_078)] {
            let net = EvalNetwork::new(&trained(name), shape(20, 36, true), Device::Cpu);
            assert_eq!(net.params_without_aux(), params, "{name}");
        }
    }

    /// Small ImageNet crops (multiples of 32, as every crop must be: the
    /// stem divides the side by 8 and each reduction halves it exactly) run forward and
    /// backward, the auxiliary head pooling what it cannot take as at
    /// 224 px, for the DARTS cell and the literature's (5 nodes, their
    /// concats, `sep_conv_7x7` and `conv_7x1_1x7` at both strides).
    #[test]
    fn an_imagenet_network_runs_at_small_crops() {
        tch::manual_seed(0);
        for (name, side) in [("darts_v2", 32), ("nasnet", 64), ("amoebanet", 32)] {
            let net = EvalNetwork::new(&trained(name), imagenet(5, 8, side), Device::Cpu);
            let x = Tensor::randn([2, 3, side, side], (Kind::Float, Device::Cpu));
            let (logits, aux) = net.forward_t(&x, 0.1, true);
            assert_eq!(logits.size(), [2, 1000], "{name}");
            let aux = aux.expect("training has the auxiliary head");
            assert_eq!(aux.size(), [2, 1000], "{name}");
            let loss = logits.mean(Kind::Float) + aux.mean(Kind::Float);
            let grads = Tensor::run_backward(&[loss], &net.vs.trainable_variables(), false, false);
            assert!(grads
                .iter()
                .all(|g| g.isfinite().all().int64_value(&[]) == 1));
        }
    }

    #[test]
    fn logits_and_auxiliary_logits_have_the_class_shape_and_learn() {
        tch::manual_seed(0);
        let net = EvalNetwork::new(&trained("darts_v1"), shape(5, 4, true), Device::Cpu);
        let x = Tensor::randn([4, 3, 16, 16], (Kind::Float, Device::Cpu));
        let (logits, aux) = net.forward_t(&x, 0.2, true);
        assert_eq!(logits.size(), [4, 10]);
        assert_eq!(
            aux.expect("training has the auxiliary head").size(),
            [4, 10]
        );
        let (logits, aux) = net.forward_t(&x, 0.2, false);
        assert_eq!(logits.size(), [4, 10]);
        assert!(aux.is_none(), "evaluation runs without the auxiliary head");
        let labels = Tensor::from_slice(&[1i64, 2, 3, 4]);
        let loss = cross_entropy(&net.forward_t(&x, 0.0, true).0, &labels);
        let grads = Tensor::run_backward(&[loss], &net.vs.trainable_variables(), false, false);
        assert!(grads
            .iter()
            .any(|g| f64::try_from(g.abs().sum(Kind::Float)).unwrap() > 0.0));
    }

    /// What clipping and SGD cost against the forward and backward passes
    /// of `bench train`'s evaluation network (darts_v2, 8 cells x 16
    /// channels, batch 32 at 32 px, drop path 0.3), in the flat layout
    /// the trainer uses and tensor by tensor, alternating step by step.
    /// Threads from `DDSAS_BENCH_THREADS` (default 1). Run with
    /// `cargo test --release --lib bench_optimiser_share -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_optimiser_share() {
        let threads = std::env::var("DDSAS_BENCH_THREADS")
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(1);
        tch::set_num_threads(threads);
        let trainer = || {
            tch::manual_seed(0);
            let net = EvalNetwork::new(&trained("darts_v2"), shape(8, 16, true), Device::Cpu);
            Trainer::new(net, [0.9, 3e-4, 5.0, 0.4])
        };
        let flat = trainer();
        let tensor_by_tensor = {
            let t = trainer();
            let n = t.params.len();
            Trainer {
                sgd: crate::nas::optim::Sgd::new(n, 0.9, 3e-4),
                ..t
            }
        };
        let mut trainers = [flat, tensor_by_tensor];
        let x = Tensor::randn([32, 3, 32, 32], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(10, [32], (Kind::Int64, Device::Cpu));
        let mut times = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
        for step in 0..12 {
            for (trainer, times) in trainers.iter_mut().zip(&mut times) {
                let t0 = std::time::Instant::now();
                let (_, _, grads) = trainer.gradients(&x, &y, 0.3);
                let t1 = std::time::Instant::now();
                trainer.apply(&grads, 0.025);
                if step > 1 {
                    times[0].push((t1 - t0).as_secs_f64());
                    times[1].push(t1.elapsed().as_secs_f64());
                }
            }
        }
        for (name, times) in ["flat", "tensor_by_tensor"].iter().zip(&mut times) {
            for v in times.iter_mut() {
                v.sort_by(f64::total_cmp);
            }
            println!(
                "layout={name} threads={threads} parameter_tensors={} forward_backward_s={:.4} clip_sgd_s={:.4}",
                trainers[0].params().len(),
                times[0][times[0].len() / 2],
                times[1][times[1].len() / 2]
            );
        }
    }

    /// A node's fused sum equals the products and sums it stands for, in
    /// every mix of masked and unmasked terms.
    #[test]
    fn a_node_sum_is_its_masked_terms_added() {
        tch::manual_seed(5);
        let t = || Tensor::randn([4, 3, 2, 2], tch::kind::FLOAT_CPU);
        let (a, b) = (t(), t());
        let (ma, mb) = (
            Tensor::from_slice(&[0.0f32, 2.0, 2.0, 0.0]).view([4, 1, 1, 1]),
            Tensor::from_slice(&[2.0f32, 0.0, 2.0, 2.0]).view([4, 1, 1, 1]),
        );
        let close = |x: Tensor, y: Tensor| assert!(x.allclose(&y, 1e-6, 1e-6, false));
        let sum = |ta: Option<&Tensor>, tb: Option<&Tensor>| {
            node_sum(vec![
                (a.shallow_clone(), ta.map(Tensor::shallow_clone)),
                (b.shallow_clone(), tb.map(Tensor::shallow_clone)),
            ])
        };
        close(sum(None, None), &a + &b);
        close(sum(Some(&ma), None), &a * &ma + &b);
        close(sum(None, Some(&mb)), &a + &b * &mb);
        close(sum(Some(&ma), Some(&mb)), &a * &ma + &b * &mb);
    }

    /// A pool asked for again (same pooling, stride and state) is the
    /// first one's tensor; any other key computes its own.
    #[test]
    fn a_cell_pools_each_state_once_per_pooling() {
        let mut pools = Vec::new();
        let computed = std::cell::Cell::new(0);
        let mut pool = |key: PoolKey, value: f64| {
            pooled_once(&mut pools, key, || {
                computed.set(computed.get() + 1);
                Tensor::from(value)
            })
        };
        let first = pool((PoolKind::Max, 2, 0), 1.0);
        let again = pool((PoolKind::Max, 2, 0), 9.0);
        assert_eq!(f64::try_from(&again).unwrap(), 1.0);
        assert_eq!(first.data_ptr(), again.data_ptr(), "the same tensor");
        for key in [
            (PoolKind::Max, 2, 1),
            (PoolKind::Max, 1, 0),
            (PoolKind::Avg, 2, 0),
        ] {
            assert_eq!(f64::try_from(&pool(key, 2.0)).unwrap(), 2.0, "{key:?}");
        }
        assert_eq!(computed.get(), 4);
    }

    #[test]
    fn drop_path_keeps_the_expected_value() {
        tch::manual_seed(3);
        let x = Tensor::ones([20_000, 1, 1, 1], (Kind::Float, Device::Cpu));
        let y = &x * drop_mask(&x, 0.3);
        let mean = f64::try_from(y.mean(Kind::Float)).unwrap();
        assert!((mean - 1.0).abs() < 0.03, "{mean}");
        let zeros = f64::try_from(y.eq(0.0).to_kind(Kind::Float).mean(Kind::Float)).unwrap();
        assert!((zeros - 0.3).abs() < 0.02, "{zeros}");
    }
}
