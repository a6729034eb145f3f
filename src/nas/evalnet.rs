//! The evaluation network of the DARTS protocol (appendix B.1):
//! the searched cell stacked `layers` times and trained from scratch.
//!
//! A 3·C stem (conv 3x3 + BN), `layers` cells built from the genotype with
//! reductions (stride 2, channels doubled) at layers/3 and 2·layers/3, an
//! auxiliary classifier after cell 2·layers/3 (training only), global
//! average pooling and a linear classifier. Ops have affine BN and pools no
//! BN ([`Op::evaluation`]); drop path zeroes an op's output per sample with
//! probability p (not on identities), scaling the kept ones by 1/(1-p).

use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

use crate::arch::metrics::Genotype;
use crate::arch::shape::EvalShape;
use crate::arch::space::{SearchSpace, SpaceKind};
use crate::nas::ops::{bn, conv, linear, to_channels_last, FactorizedReduce, Op, ReluConvBn};

/// The network, its weights in `vs`.
#[derive(Debug)]
pub struct EvalNetwork {
    /// Every weight; the auxiliary head's under `aux`.
    pub vs: nn::VarStore,
    stem_conv: nn::Conv2D,
    stem_bn: nn::BatchNorm,
    cells: Vec<EvalCell>,
    aux: Option<AuxHead>,
    classifier: nn::Linear,
    channels_last: bool,
}

/// One cell: its two preprocessing blocks and the genotype's 8 ops.
#[derive(Debug)]
struct EvalCell {
    pre0: Pre0,
    pre1: ReluConvBn,
    /// `(op, input state)`, two per intermediate node, in genotype order.
    ops: Vec<(Op, usize)>,
}

#[derive(Debug)]
enum Pre0 {
    Reduce(FactorizedReduce),
    Conv(ReluConvBn),
}

/// DARTS's auxiliary head for 8x8 feature maps (CIFAR after two
/// reductions): ReLU, avg pool 5 stride 3, conv 1x1 to 128, BN, ReLU, conv
/// 2x2 to 768, BN, ReLU, linear. Smaller maps (the 8x8 digits end at 2x2)
/// are pooled to 2x2 directly.
#[derive(Debug)]
struct AuxHead {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    linear: nn::Linear,
}

impl AuxHead {
    fn new(p: nn::Path, c: i64, classes: i64) -> Self {
        AuxHead {
            conv1: conv(&p / "conv1", c, 128, 1, 1, 0, 1, 1),
            bn1: bn(&p / "bn1", 128, true),
            conv2: conv(&p / "conv2", 128, 768, 2, 1, 0, 1, 1),
            bn2: bn(&p / "bn2", 768, true),
            linear: linear(&p / "linear", 768, classes),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let x = x.relu();
        let x = if x.size()[2] >= 5 {
            x.avg_pool2d([5, 5], [3, 3], [0, 0], false, false, None)
        } else {
            x.adaptive_avg_pool2d([2, 2])
        };
        let x = self.bn1.forward_t(&x.apply(&self.conv1), train).relu();
        let x = self.bn2.forward_t(&x.apply(&self.conv2), train).relu();
        x.flatten(1, -1).apply(&self.linear)
    }
}

impl EvalCell {
    fn new(
        p: nn::Path,
        genotype: &Genotype,
        [c_pp, c_p, c]: [i64; 3],
        reduce: bool,
        reduce_prev: bool,
    ) -> Self {
        let pre0 = if reduce_prev {
            Pre0::Reduce(FactorizedReduce::new(&p / "pre0", c_pp, c, true))
        } else {
            Pre0::Conv(ReluConvBn::new(&p / "pre0", c_pp, c, 1, 1, 0, true))
        };
        let space = SearchSpace::new(SpaceKind::Darts);
        let nodes = space.edge_nodes();
        let cell = &genotype.cells[usize::from(reduce)];
        let ops = cell
            .edges
            .iter()
            .enumerate()
            .map(|(j, &(edge, op))| {
                let input = nodes[edge].1;
                let stride = if reduce && input < 2 { 2 } else { 1 };
                let name = space.ops()[op];
                let op = Op::evaluation(name, &p / format!("op{j}"), c, stride)
                    .expect("parsed genotypes hold no `none`");
                (op, input)
            })
            .collect();
        EvalCell {
            pre0,
            pre1: ReluConvBn::new(&p / "pre1", c_p, c, 1, 1, 0, true),
            ops,
        }
    }

    fn forward_t(&self, s0: &Tensor, s1: &Tensor, drop_prob: f64, train: bool) -> Tensor {
        let s0 = match &self.pre0 {
            Pre0::Reduce(r) => r.forward_t(s0, train),
            Pre0::Conv(c) => c.forward_t(s0, train),
        };
        let mut states = vec![s0, self.pre1.forward_t(s1, train)];
        // The ReLU of a state, taken once for every op that starts with it.
        let mut relus: Vec<Option<Tensor>> = Vec::new();
        for pair in self.ops.chunks(2) {
            relus.resize_with(states.len(), || None);
            let mut sum: Option<Tensor> = None;
            for (op, input) in pair {
                let x = &states[*input];
                let cached = &mut relus[*input];
                let relu = || cached.get_or_insert_with(|| x.relu()).shallow_clone();
                let mut h = op.forward_t(x, relu, train);
                if train && drop_prob > 0.0 && !matches!(op, Op::Identity) {
                    h = drop_path(&h, drop_prob);
                }
                sum = Some(match sum {
                    Some(s) => s + h,
                    None => h,
                });
            }
            states.push(sum.expect("two ops per node"));
        }
        Tensor::cat(&states[2..], 1)
    }
}

/// Zeroes whole samples of `x` with probability `p`, scaling the rest by
/// 1/(1-p), so the expected output is unchanged.
fn drop_path(x: &Tensor, p: f64) -> Tensor {
    let keep = 1.0 - p;
    let mask = Tensor::empty([x.size()[0], 1, 1, 1], (x.kind(), x.device())).bernoulli_float_(keep);
    x / keep * mask
}

impl EvalNetwork {
    /// Builds the network of `genotype` (a DARTS-space cell).
    pub fn new(genotype: &Genotype, shape: EvalShape, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let c_stem = 3 * shape.channels;
        let stem_conv = conv(
            &root / "stem_conv",
            shape.in_channels,
            c_stem,
            3,
            1,
            1,
            1,
            1,
        );
        let stem_bn = bn(&root / "stem_bn", c_stem, true);
        let (mut c_pp, mut c_p, mut c) = (c_stem, c_stem, shape.channels);
        let mut cells = Vec::new();
        let mut reduce_prev = false;
        let mut aux_channels = c_p;
        for i in 0..shape.layers {
            let reduce = i == shape.layers / 3 || i == 2 * shape.layers / 3;
            if reduce {
                c *= 2;
            }
            let p = &root / format!("cell{i}");
            cells.push(EvalCell::new(
                p,
                genotype,
                [c_pp, c_p, c],
                reduce,
                reduce_prev,
            ));
            reduce_prev = reduce;
            (c_pp, c_p) = (c_p, 4 * c);
            if i == 2 * shape.layers / 3 {
                aux_channels = c_p;
            }
        }
        let aux = shape
            .auxiliary
            .then(|| AuxHead::new(&root / "aux", aux_channels, shape.classes));
        let classifier = linear(&root / "classifier", c_p, shape.classes);
        EvalNetwork {
            stem_conv,
            stem_bn,
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
        let stem = self.stem_bn.forward_t(&x.apply(&self.stem_conv), train);
        let (mut s0, mut s1) = (stem.shallow_clone(), stem);
        let aux_after = 2 * self.cells.len() / 3;
        let mut aux = None;
        for (i, cell) in self.cells.iter().enumerate() {
            let out = cell.forward_t(&s0, &s1, drop_prob, train);
            s0 = std::mem::replace(&mut s1, out);
            if i == aux_after && train {
                aux = self.aux.as_ref().map(|head| head.forward_t(&s1, train));
            }
        }
        let logits = s1
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
            .apply(&self.classifier);
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
            sgd: crate::nas::optim::Sgd::new(params.len(), momentum, weight_decay),
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
        for (i, buffer) in self.sgd.buffers.iter().enumerate() {
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
                    .filter(|&i| i < self.sgd.buffers.len())
                {
                    self.sgd.buffers[i] = Some(t);
                }
            }
        });
    }

    /// One step on the batch `(x, y)` at learning rate `lr` and drop-path
    /// probability `drop_prob`; returns the main loss and the logits
    /// (detached), for the epoch's running accuracy.
    pub fn step(&mut self, x: &Tensor, y: &Tensor, lr: f64, drop_prob: f64) -> (Tensor, Tensor) {
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
        let grads = Tensor::run_backward(&[total], &self.params, false, false);
        crate::nas::optim::clip_grad_norm(&grads, self.grad_clip);
        self.sgd.step(&self.params, &grads, lr);
        (loss.detach(), logits.detach())
    }
}

/// Mean cross-entropy of `logits` against `labels`.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Tensor {
    logits.cross_entropy_for_logits(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::genotype;
    use tch::Kind;

    fn shape(layers: i64, channels: i64, auxiliary: bool) -> EvalShape {
        EvalShape {
            layers,
            channels,
            in_channels: 3,
            classes: 10,
            auxiliary,
        }
    }

    /// DARTS reports 3.3 M for its cell at 20 cells and 36 channels; the
    /// PyTorch reference (`ref_train_step.py --params`) counts 3,349,342.
    #[test]
    fn darts_v2_at_the_papers_size_has_the_published_parameter_count() {
        let g = genotype::parse("darts_v2").unwrap();
        let net = EvalNetwork::new(&g, shape(20, 36, true), Device::Cpu);
        assert_eq!(net.params_without_aux(), 3_349_342);
    }

    #[test]
    fn logits_and_auxiliary_logits_have_the_class_shape_and_learn() {
        tch::manual_seed(0);
        let g = genotype::parse("darts_v1").unwrap();
        let net = EvalNetwork::new(&g, shape(5, 4, true), Device::Cpu);
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

    #[test]
    fn drop_path_keeps_the_expected_value() {
        tch::manual_seed(3);
        let x = Tensor::ones([20_000, 1, 1, 1], (Kind::Float, Device::Cpu));
        let y = drop_path(&x, 0.3);
        let mean = f64::try_from(y.mean(Kind::Float)).unwrap();
        assert!((mean - 1.0).abs() < 0.03, "{mean}");
        let zeros = f64::try_from(y.eq(0.0).to_kind(Kind::Float).mean(Kind::Float)).unwrap();
        assert!((zeros - 0.3).abs() < 0.02, "{zeros}");
    }
}
