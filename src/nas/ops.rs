//! The candidate operations of both spaces (docs/design.md §2) and the small
//! blocks the macro networks are built from.
//!
//! Ops are an enum rather than boxed trait objects: a supernet calls
//! thousands of them per step and the match is cheaper and easier to read.
//! `none` has no variant on purpose: its output is zero, so it is never run.

use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

use crate::arch::space::SpaceKind;
use crate::nas::{fused, parallel};

/// PyTorch's default initialisation of `Conv2d` and `Linear` weights
/// (`kaiming_uniform_` with `a = sqrt(5)`): uniform within ±1/sqrt(fan_in),
/// i.e. Kaiming with a gain of 1/sqrt(3).
///
/// tch's own default (Kaiming for ReLU) draws weights sqrt(6) times as
/// large. Behind batch norm the scale of a weight does not change the
/// output, but every SGD step then moves it sqrt(6)² = 6 times less
/// relative to its size, and weight decay takes long to undo it: the
/// evaluation network learned far slower than the PyTorch reference, and
/// drop path, which needs the network to learn more, made the gap plain.
pub const TORCH_DEFAULT_INIT: nn::Init = nn::Init::Kaiming {
    dist: nn::init::NormalOrUniform::Uniform,
    fan: nn::init::FanInOut::FanIn,
    non_linearity: nn::init::NonLinearity::ExplicitGain(0.577_350_269_189_625_8),
};

/// Batch norm's epsilon and running-statistics momentum (PyTorch's and
/// tch's defaults), named for the synchronised forward pass.
const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

/// Batch norm, with affine parameters (evaluation networks) or without
/// (search cells, as DARTS has them). The affine weight starts at 1 and the
/// bias at 0, as in PyTorch; tch's default draws the weight from U(0, 1),
/// which silences some channels from the start.
pub fn bn(p: nn::Path, channels: i64, affine: bool) -> BatchNorm {
    let config = nn::BatchNormConfig {
        affine,
        eps: BN_EPS,
        momentum: BN_MOMENTUM,
        ws_init: nn::Init::Const(1.0),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    BatchNorm {
        inner: nn::batch_norm2d(p, channels, config),
    }
}

/// A 2-d batch norm that, in the training of a data-parallel run with
/// synchronised batch norm ([`parallel::sync_batch_norm`]), normalises
/// with the statistics of the whole global batch instead of the rank's
/// shard (PyTorch's `SyncBatchNorm`); tch's own everywhere else.
#[derive(Debug)]
pub struct BatchNorm {
    inner: nn::BatchNorm,
}

impl ModuleT for BatchNorm {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        if train && parallel::sync_batch_norm() {
            self.synchronised(xs)
        } else if train {
            self.fused(xs, false)
                .unwrap_or_else(|| self.inner.forward_t(xs, train))
        } else {
            self.inner.forward_t(xs, train)
        }
    }
}

impl BatchNorm {
    /// The ReLU of the norm's output: in training on a channels-last CPU
    /// tensor one op of our own ([`fused`]), else the two of libtorch.
    pub fn forward_relu_t(&self, xs: &Tensor, train: bool) -> Tensor {
        if train && !parallel::sync_batch_norm() {
            if let Some(y) = self.fused(xs, true) {
                return y;
            }
        }
        self.forward_t(xs, train).relu()
    }

    /// The training pass by [`fused::batch_norm_train`], `None` where it
    /// does not apply.
    fn fused(&self, xs: &Tensor, relu: bool) -> Option<Tensor> {
        let bn = &self.inner;
        let norm = fused::Norm {
            affine: bn.ws.as_ref().zip(bn.bs.as_ref()),
            running: (&bn.running_mean, &bn.running_var),
            momentum: BN_MOMENTUM,
            eps: BN_EPS,
        };
        fused::batch_norm_train(xs, &norm, relu)
    }

    /// Batch norm of `[N, C]` features: a map pooled to 1x1, flattened.
    /// The same statistics and output as the 2-d norm of `[N, C, 1, 1]`,
    /// but libtorch's backward pass of that 4-d form takes its
    /// single-threaded per-channel path there (the input's strides say
    /// channels-last, the gradient's, from the flattening, say
    /// contiguous), which cost the 768 channels of DARTS's auxiliary head
    /// about 1 % of a training step.
    pub fn forward_features_t(&self, x: &Tensor, train: bool) -> Tensor {
        if train && parallel::sync_batch_norm() {
            let (n, c) = (x.size()[0], x.size()[1]);
            return self.synchronised(&x.view([n, c, 1, 1])).view([n, c]);
        }
        let bn = &self.inner;
        Tensor::batch_norm(
            x,
            bn.ws.as_ref(),
            bn.bs.as_ref(),
            Some(&bn.running_mean),
            Some(&bn.running_var),
            train,
            BN_MOMENTUM,
            BN_EPS,
            false,
        )
    }

    /// The training pass over the global batch: every rank's per-channel
    /// sum, sum of squares and count, summed across the ranks inside
    /// autograd (so the gradients flow through the other ranks' shares of
    /// the statistics), give the batch's mean and biased variance; the
    /// running statistics take the global mean and unbiased variance, the
    /// same on every rank.
    ///
    /// The sums are taken in double precision: the variance as the mean
    /// square less the squared mean loses in single precision what
    /// libtorch's own batch norm keeps.
    fn synchronised(&self, x: &Tensor) -> Tensor {
        let c = x.size()[1];
        let dims = [0i64, 2, 3];
        let count = (x.numel() as i64 / c) as f64;
        let wide = x.to_kind(Kind::Double);
        let local = Tensor::cat(
            &[
                wide.sum_dim_intlist(&dims[..], false, Kind::Double),
                (&wide * &wide).sum_dim_intlist(&dims[..], false, Kind::Double),
                Tensor::full([1], count, (Kind::Double, x.device())),
            ],
            0,
        );
        let global = parallel::sum_across_ranks(&local);
        let n = global.narrow(0, 2 * c, 1);
        let mean = global.narrow(0, 0, c) / &n;
        let var = global.narrow(0, c, c) / &n - &mean * &mean;
        self.update_running_statistics(&mean, &var, &n);
        let shape = [1, c, 1, 1];
        let invstd = (var + BN_EPS).rsqrt().to_kind(x.kind());
        let y = (x - mean.to_kind(x.kind()).view(shape)) * invstd.view(shape);
        match (&self.inner.ws, &self.inner.bs) {
            (Some(w), Some(b)) => y * w.view(shape) + b.view(shape),
            _ => y,
        }
    }

    /// Moves the running statistics towards the batch's, as libtorch's
    /// batch norm does: the mean, and the variance made unbiased.
    fn update_running_statistics(&self, mean: &Tensor, var: &Tensor, n: &Tensor) {
        tch::no_grad(|| {
            let unbiased = var * (n / (n - 1.0).clamp_min(1.0));
            let mut running_mean = self.inner.running_mean.shallow_clone();
            let mut running_var = self.inner.running_var.shallow_clone();
            let mean = mean.to_kind(running_mean.kind());
            let unbiased = unbiased.to_kind(running_var.kind());
            running_mean.copy_(&(&running_mean * (1.0 - BN_MOMENTUM) + mean * BN_MOMENTUM));
            running_var.copy_(&(&running_var * (1.0 - BN_MOMENTUM) + unbiased * BN_MOMENTUM));
        });
    }
}

/// A linear layer (with bias) initialised as PyTorch's `nn.Linear`.
pub fn linear(p: nn::Path, in_dim: i64, out_dim: i64) -> nn::Linear {
    let config = nn::LinearConfig {
        ws_init: TORCH_DEFAULT_INIT,
        ..Default::default()
    };
    nn::linear(p, in_dim, out_dim, config)
}

/// A bias-free convolution with PyTorch's default initialisation
/// ([`TORCH_DEFAULT_INIT`]); the arguments mirror `torch.nn.Conv2d`'s,
/// hence their number.
#[allow(clippy::too_many_arguments)]
pub fn conv(
    p: nn::Path,
    c_in: i64,
    c_out: i64,
    k: i64,
    stride: i64,
    padding: i64,
    dilation: i64,
    groups: i64,
) -> nn::Conv2D {
    let config = nn::ConvConfig {
        stride,
        padding,
        dilation,
        groups,
        bias: false,
        ws_init: TORCH_DEFAULT_INIT,
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, k, config)
}

/// ReLU → conv → BN, the preprocessing and NB201 `nor_conv_kxk` block.
#[derive(Debug)]
pub struct ReluConvBn {
    conv: nn::Conv2D,
    bn: BatchNorm,
}

impl ReluConvBn {
    /// Builds the block under `p`.
    pub fn new(
        p: nn::Path,
        c_in: i64,
        c_out: i64,
        k: i64,
        stride: i64,
        padding: i64,
        affine: bool,
    ) -> Self {
        ReluConvBn {
            conv: conv(&p / "conv", c_in, c_out, k, stride, padding, 1, 1),
            bn: bn(&p / "bn", c_out, affine),
        }
    }

    /// Runs the block.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_relu_t(&x.relu(), train)
    }

    /// Runs the block on an input whose ReLU is already taken.
    pub fn forward_relu_t(&self, x_relu: &Tensor, train: bool) -> Tensor {
        self.bn.forward_t(&x_relu.apply(&self.conv), train)
    }
}

/// Halves the resolution with two offset 1x1 convolutions (DARTS).
#[derive(Debug)]
pub struct FactorizedReduce {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    bn: BatchNorm,
}

impl FactorizedReduce {
    /// Builds the block under `p`; `c_out` must be even.
    pub fn new(p: nn::Path, c_in: i64, c_out: i64, affine: bool) -> Self {
        FactorizedReduce {
            conv1: conv(&p / "conv1", c_in, c_out / 2, 1, 2, 0, 1, 1),
            conv2: conv(&p / "conv2", c_in, c_out / 2, 1, 2, 0, 1, 1),
            bn: bn(&p / "bn", c_out, affine),
        }
    }

    /// Runs the block.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_relu_t(&x.relu(), train)
    }

    /// Runs the block on an input whose ReLU is already taken.
    pub fn forward_relu_t(&self, x: &Tensor, train: bool) -> Tensor {
        let shifted = x
            .narrow(2, 1, x.size()[2] - 1)
            .narrow(3, 1, x.size()[3] - 1);
        let y = Tensor::cat(&[x.apply(&self.conv1), shifted.apply(&self.conv2)], 1);
        self.bn.forward_t(&y, train)
    }
}

/// Depthwise k x k (optionally dilated) then pointwise conv, then BN.
#[derive(Debug)]
struct DepthwisePointwise {
    depthwise: Depthwise,
    pointwise: nn::Conv2D,
    bn: BatchNorm,
}

impl DepthwisePointwise {
    fn new(p: nn::Path, c: i64, shape: [i64; 4], affine: bool) -> Self {
        let [k, stride, padding, dilation] = shape;
        DepthwisePointwise {
            depthwise: Depthwise::new(&p / "dw", c, k, stride, padding, dilation),
            pointwise: conv(&p / "pw", c, c, 1, 1, 0, 1, 1),
            bn: bn(&p / "bn", c, affine),
        }
    }

    fn forward_relu_t(&self, x_relu: &Tensor, train: bool) -> Tensor {
        let y = self.depthwise.forward(x_relu).apply(&self.pointwise);
        self.bn.forward_t(&y, train)
    }

    /// The ReLU of [`forward_relu_t`](Self::forward_relu_t), its norm and
    /// ReLU one op.
    fn forward_relu_t_relu(&self, x_relu: &Tensor, train: bool) -> Tensor {
        let y = self.depthwise.forward(x_relu).apply(&self.pointwise);
        self.bn.forward_relu_t(&y, train)
    }
}

/// A depthwise conv, computed in the cheapest exact form.
///
/// A conv with dilation 2 and "same" padding (`padding = k - 1`) only ever
/// combines pixels of one parity: output row `r` reads rows
/// `r + 2a - (k - 1)`, all of the parity of `r`. So it equals a plain k x k
/// conv with padding `(k - 1) / 2` and the same weights, applied to each
/// parity class of rows and columns on its own. oneDNN has fast direct
/// kernels for plain depthwise convs but not for the backward pass of
/// dilated ones (GEMM fallbacks or generic kernels, 6-9x slower a call;
/// with stride 2 they took a quarter of a CPU step, BENCHMARKS.md), hence:
/// - stride 2 reads only the even class: run the plain conv on
///   `x[:, :, ::2, ::2]` (also 4x fewer multiply-adds);
/// - stride 1 on a channels-last input of even side: stack the four
///   classes along the batch, run the plain conv once, put them back.
///
/// Both keep the parameter's name and shape, so checkpoints are unchanged.
#[derive(Debug)]
struct Depthwise {
    /// The conv as built: plain (dilation 1) for the dilated forms.
    conv: nn::Conv2D,
    form: DepthwiseForm,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum DepthwiseForm {
    /// The conv as configured.
    Direct,
    /// Stride 2, dilation 2: the plain conv on the even pixels.
    EvenPixels,
    /// Stride 1, dilation 2: the plain conv on the four parity classes
    /// when the input allows, else the dilated conv itself.
    ParityClasses,
}

impl Depthwise {
    fn new(p: nn::Path, c: i64, k: i64, stride: i64, padding: i64, dilation: i64) -> Self {
        let dilated_same = dilation == 2 && padding == k - 1;
        let form = match stride {
            2 if dilated_same => DepthwiseForm::EvenPixels,
            1 if dilated_same => DepthwiseForm::ParityClasses,
            _ => DepthwiseForm::Direct,
        };
        let conv = match form {
            DepthwiseForm::Direct => conv(p, c, c, k, stride, padding, dilation, c),
            _ => conv(p, c, c, k, 1, (k - 1) / 2, 1, c),
        };
        Depthwise { conv, form }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        match self.form {
            DepthwiseForm::Direct => x.apply(&self.conv),
            DepthwiseForm::EvenPixels => x
                .slice(2, 0, None, 2)
                .slice(3, 0, None, 2)
                .apply(&self.conv),
            DepthwiseForm::ParityClasses => match x.size4() {
                Ok((n, c, h, w)) if h % 2 == 0 && w % 2 == 0 && is_channels_last(x) => {
                    self.on_parity_classes(x, [n, c, h, w])
                }
                _ => self.dilated(x),
            },
        }
    }

    /// The dilated conv itself, from the plain conv's weight
    /// `[C, 1, k, k]` (depthwise: one group per channel).
    fn dilated(&self, x: &Tensor) -> Tensor {
        let shape = self.conv.ws.size();
        let (channels, k) = (shape[0], shape[3]);
        x.conv2d(
            &self.conv.ws,
            None::<Tensor>,
            [1, 1],
            [k - 1, k - 1],
            [2, 2],
            channels,
        )
    }

    /// The plain conv on the four (row, column) parity classes of a
    /// channels-last `x`, stacked along the batch and back; every reshape
    /// works on the `[N, H, W, C]` view, so the layout is kept.
    fn on_parity_classes(&self, x: &Tensor, [n, c, h, w]: [i64; 4]) -> Tensor {
        let classes = x
            .permute([0, 2, 3, 1])
            .reshape([n, h / 2, 2, w / 2, 2, c])
            .permute([2, 4, 0, 1, 3, 5])
            .reshape([4 * n, h / 2, w / 2, c])
            .permute([0, 3, 1, 2]);
        classes
            .apply(&self.conv)
            .permute([0, 2, 3, 1])
            .reshape([2, 2, n, h / 2, w / 2, c])
            .permute([2, 3, 0, 4, 1, 5])
            .reshape([n, h, w, c])
            .permute([0, 3, 1, 2])
    }
}

/// `parts` concatenated along the channels (one part: itself, uncopied).
pub fn cat_channels(parts: &[Tensor]) -> Tensor {
    match parts {
        [one] => one.shallow_clone(),
        many => Tensor::cat(many, 1),
    }
}

/// The global average pool of `x`, `[N, C, H, W]` to `[N, C]`.
///
/// An average pool over the whole map, not `adaptive_avg_pool2d` to 1x1:
/// libtorch computes that as a mean, whose backward pass hands a
/// channels-last input a gradient in the contiguous layout, and
/// libtorch's batch-norm backward takes its single-threaded per-channel
/// path when the gradient's layout is not the input's. The pool's
/// backward keeps the input's layout.
pub fn global_avg_pool(x: &Tensor) -> Tensor {
    let size = x.size();
    let map = [size[2], size[3]];
    x.avg_pool2d(map, map, [0, 0], false, true, None)
        .flatten(1, -1)
}

/// The global average pool of the concatenation of `parts` along the
/// channels, `[N, sum of C]`, taken part by part: pooling the
/// concatenation would hand each part a channel slice of one gradient,
/// which is not dense, and the batch norms that made the parts would take
/// the slow path of [`global_avg_pool`]'s note.
pub fn global_avg_pool_cat(parts: &[Tensor]) -> Tensor {
    match parts {
        [one] => global_avg_pool(one),
        many => Tensor::cat(&many.iter().map(global_avg_pool).collect::<Vec<_>>(), 1),
    }
}

/// `x` with channels-last strides (`[N, C, H, W]` logically, stored as
/// `[N, H, W, C]`). libtorch's CPU kernels follow the layout of their
/// input: oneDNN then runs its direct NHWC convolutions instead of
/// im2col + GEMM, and pooling and batch norm vectorise over channels, so a
/// whole supernet fed a channels-last image stays channels-last and runs
/// faster (BENCHMARKS.md).
pub fn to_channels_last(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Whether `x` is stored channels-last (`[N, H, W, C]` in memory) rather
/// than channels-first; a tensor that is both (one channel, or 1 x 1
/// pixels) counts as channels-first.
pub fn is_channels_last(x: &Tensor) -> bool {
    !x.is_contiguous() && x.permute([0, 2, 3, 1]).is_contiguous()
}

/// One candidate operation on one edge.
#[derive(Debug)]
pub enum Op {
    /// 3x3 max pool, followed by BN in the DARTS search network.
    MaxPool { stride: i64, bn: Option<BatchNorm> },
    /// 3x3 average pool without counting padding; BN after it in the DARTS
    /// search network only.
    AvgPool { stride: i64, bn: Option<BatchNorm> },
    /// Identity (`skip_connect` at stride 1).
    Identity,
    /// `skip_connect` at stride 2.
    Reduce(FactorizedReduce),
    /// `sep_conv_kxk`: two depthwise-pointwise blocks, the first strided.
    SepConv(Box<DepthwisePointwise2>),
    /// `dil_conv_kxk`: one dilated depthwise-pointwise block.
    DilConv(DepthwisePointwiseOne),
    /// NB201 `nor_conv_kxk`: ReLU, conv, BN.
    NorConv(ReluConvBn),
    /// `conv_7x1_1x7` of cells from the literature (evaluation only).
    Conv7x1x7(Box<Conv7x1x7>),
}

/// The pooling of a parameter-free op ([`Op::parameter_free_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// 3x3 max pool.
    Max,
    /// 3x3 average pool.
    Avg,
}

/// ReLU, a 1x7 conv (strided along the width), a 7x1 conv (strided along
/// the height), BN: the factorised 7x7 conv of AmoebaNet-A as DARTS's
/// evaluation code builds it.
#[derive(Debug)]
pub struct Conv7x1x7 {
    wide: nn::Conv2D,
    tall: nn::Conv2D,
    bn: BatchNorm,
}

impl Conv7x1x7 {
    fn new(p: nn::Path, c: i64, stride: i64) -> Self {
        let config = |stride: [i64; 2], padding: [i64; 2]| nn::ConvConfigND::<[i64; 2]> {
            stride,
            padding,
            bias: false,
            ws_init: TORCH_DEFAULT_INIT,
            ..Default::default()
        };
        Conv7x1x7 {
            wide: nn::conv(&p / "conv1x7", c, c, [1, 7], config([1, stride], [0, 3])),
            tall: nn::conv(&p / "conv7x1", c, c, [7, 1], config([stride, 1], [3, 0])),
            bn: bn(&p / "bn", c, true),
        }
    }

    fn forward_relu_t(&self, x_relu: &Tensor, train: bool) -> Tensor {
        let y = x_relu.apply(&self.wide).apply(&self.tall);
        self.bn.forward_t(&y, train)
    }
}

/// The two stacked blocks of a separable convolution.
#[derive(Debug)]
pub struct DepthwisePointwise2 {
    first: DepthwisePointwise,
    second: DepthwisePointwise,
}

/// The single block of a dilated convolution.
#[derive(Debug)]
pub struct DepthwisePointwiseOne(DepthwisePointwise);

impl Op {
    /// Builds op `name` of a search network of `space` with `c` channels
    /// and the given stride; `None` for `none`, which is never executed.
    /// DARTS-space search ops have BN without affine parameters and pools
    /// followed by BN, as DARTS searches.
    pub fn new(space: SpaceKind, name: &str, p: nn::Path, c: i64, stride: i64) -> Option<Op> {
        match space {
            _ if name == "none" => None,
            SpaceKind::Darts => Some(darts_op(name, p, c, stride, Role::Search)),
            SpaceKind::Nb201 => nb201_op(name, p, c, stride),
        }
    }

    /// Builds DARTS-space op `name` of an evaluation network (the searched
    /// cell trained from scratch): BN with affine parameters, pools without
    /// BN, as DARTS's evaluation network has them. `None` for `none`.
    /// The ops of cells from the literature (`sep_conv_7x7`,
    /// `conv_7x1_1x7`, as DARTS's evaluation code builds them) are built
    /// here only: searches never meet them.
    pub fn evaluation(name: &str, p: nn::Path, c: i64, stride: i64) -> Option<Op> {
        match name {
            "none" => None,
            "sep_conv_7x7" => Some(sep_conv(p, c, [7, stride, 3], true)),
            "conv_7x1_1x7" => Some(Op::Conv7x1x7(Box::new(Conv7x1x7::new(p, c, stride)))),
            _ => Some(darts_op(name, p, c, stride, Role::Evaluation)),
        }
    }

    /// For a pooling op without BN (the evaluation network's pools), what
    /// fixes its output given its input: two such ops of one cell with
    /// equal keys on one input compute the same tensor, so the cell pools
    /// once (DARTS V2's reduction cell pools each input two or three
    /// times). `None` for every op with weights or BN.
    pub fn parameter_free_key(&self) -> Option<(PoolKind, i64)> {
        match self {
            Op::MaxPool { stride, bn: None } => Some((PoolKind::Max, *stride)),
            Op::AvgPool { stride, bn: None } => Some((PoolKind::Avg, *stride)),
            _ => None,
        }
    }

    /// Whether the op starts with a ReLU of its input: those can share one
    /// ReLU per input (see [`Op::forward_t`]).
    pub fn starts_with_relu(&self) -> bool {
        matches!(
            self,
            Op::Reduce(_) | Op::SepConv(_) | Op::DilConv(_) | Op::NorConv(_) | Op::Conv7x1x7(_)
        )
    }

    /// Runs the op on `x`; `relu_of_x` supplies `x.relu()` for the ops that
    /// start with it, so that several ops on one input compute it once
    /// (forward and backward), as they do the same arithmetic either way.
    pub fn forward_t(&self, x: &Tensor, relu_of_x: impl FnOnce() -> Tensor, train: bool) -> Tensor {
        match self {
            Op::MaxPool { stride, bn } => {
                let y = x.max_pool2d([3, 3], [*stride, *stride], [1, 1], [1, 1], false);
                match bn {
                    Some(bn) => bn.forward_t(&y, train),
                    None => y,
                }
            }
            Op::AvgPool { stride, bn } => {
                let y = x.avg_pool2d([3, 3], [*stride, *stride], [1, 1], false, false, None);
                match bn {
                    Some(bn) => bn.forward_t(&y, train),
                    None => y,
                }
            }
            Op::Identity => x.shallow_clone(),
            Op::Reduce(r) => r.forward_relu_t(&relu_of_x(), train),
            Op::SepConv(s) => {
                let y = s.first.forward_relu_t_relu(&relu_of_x(), train);
                s.second.forward_relu_t(&y, train)
            }
            Op::DilConv(d) => d.0.forward_relu_t(&relu_of_x(), train),
            Op::NorConv(b) => b.forward_relu_t(&relu_of_x(), train),
            Op::Conv7x1x7(b) => b.forward_relu_t(&relu_of_x(), train),
        }
    }
}

/// Which network an op is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The supernet of a search.
    Search,
    /// The network of a searched cell, trained from scratch.
    Evaluation,
}

/// A DARTS-space op other than `none`; a name outside the space is a bug of
/// the caller (configs and genotypes are checked against the space first).
fn darts_op(name: &str, p: nn::Path, c: i64, stride: i64, role: Role) -> Op {
    let affine = role == Role::Evaluation;
    let pool_bn = |p: nn::Path| (role == Role::Search).then(|| bn(&p / "bn", c, false));
    match name {
        "max_pool_3x3" => Op::MaxPool {
            stride,
            bn: pool_bn(p),
        },
        "avg_pool_3x3" => Op::AvgPool {
            stride,
            bn: pool_bn(p),
        },
        "skip_connect" if stride == 1 => Op::Identity,
        "skip_connect" => Op::Reduce(FactorizedReduce::new(p, c, c, affine)),
        "sep_conv_3x3" => sep_conv(p, c, [3, stride, 1], affine),
        "sep_conv_5x5" => sep_conv(p, c, [5, stride, 2], affine),
        "dil_conv_3x3" => Op::DilConv(DepthwisePointwiseOne(DepthwisePointwise::new(
            p,
            c,
            [3, stride, 2, 2],
            affine,
        ))),
        "dil_conv_5x5" => Op::DilConv(DepthwisePointwiseOne(DepthwisePointwise::new(
            p,
            c,
            [5, stride, 4, 2],
            affine,
        ))),
        other => unreachable!("op {other} is not part of the DARTS space"),
    }
}

/// An NB201 op, `None` for `none`.
fn nb201_op(name: &str, p: nn::Path, c: i64, stride: i64) -> Option<Op> {
    Some(match name {
        "none" => return None,
        "avg_pool_3x3" => Op::AvgPool { stride, bn: None },
        "skip_connect" if stride == 1 => Op::Identity,
        "skip_connect" => Op::Reduce(FactorizedReduce::new(p, c, c, false)),
        "nor_conv_1x1" => Op::NorConv(ReluConvBn::new(p, c, c, 1, stride, 0, false)),
        "nor_conv_3x3" => Op::NorConv(ReluConvBn::new(p, c, c, 3, stride, 1, false)),
        other => unreachable!("op {other} is not part of the NB201 space"),
    })
}

/// `sep_conv_kxk`: `[k, stride, padding]`; the second block has stride 1.
fn sep_conv(p: nn::Path, c: i64, [k, stride, padding]: [i64; 3], affine: bool) -> Op {
    Op::SepConv(Box::new(DepthwisePointwise2 {
        first: DepthwisePointwise::new(&p / "a", c, [k, stride, padding, 1], affine),
        second: DepthwisePointwise::new(&p / "b", c, [k, 1, padding, 1], affine),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::space::SearchSpace;
    use tch::{Device, Kind};

    /// Largest absolute value and standard deviation of `t`.
    fn spread(t: &Tensor) -> (f64, f64) {
        let max = f64::try_from(t.abs().max()).unwrap();
        let std = f64::try_from(t.std(true)).unwrap();
        (max, std)
    }

    /// Weights start as PyTorch initialises them: conv and
    /// linear uniform within ±1/sqrt(fan_in) (depthwise: fan_in = k²),
    /// batch-norm scale 1 and shift 0. tch's defaults (weights sqrt(6)
    /// times as large, scales from U(0, 1)) made the evaluation network
    /// learn far slower than the PyTorch reference.
    #[test]
    fn weights_start_as_pytorch_initialises_them() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let dense = conv(&root / "dense", 32, 64, 3, 1, 1, 1, 1);
        let depthwise = conv(&root / "dw", 64, 64, 5, 1, 2, 1, 64);
        let fc = linear(&root / "fc", 256, 10);
        for (w, fan_in) in [(&dense.ws, 32 * 9), (&depthwise.ws, 25), (&fc.ws, 256)] {
            let bound = 1.0 / f64::from(fan_in).sqrt();
            let (max, std) = spread(w);
            assert!(max <= bound && max > 0.95 * bound, "{max} vs bound {bound}");
            let uniform_std = bound / 3f64.sqrt();
            assert!(
                (std / uniform_std - 1.0).abs() < 0.1,
                "{std} vs {uniform_std}"
            );
        }
        let bias = fc.bs.as_ref().expect("linear layers have a bias");
        assert!(spread(bias).0 <= 1.0 / 16.0);
        let norm = bn(&root / "bn", 48, true);
        let ones = Tensor::ones([48], (Kind::Float, Device::Cpu));
        assert!(
            norm.inner.ws.as_ref().unwrap().equal(&ones),
            "scale starts at 1"
        );
        assert!(
            norm.inner.bs.as_ref().unwrap().equal(&ones.zeros_like()),
            "shift at 0"
        );
    }

    /// The global pool is the mean over the map, of one tensor or of a
    /// concatenation, and hands a channels-last input a channels-last
    /// gradient (the reason it is not `adaptive_avg_pool2d`).
    #[test]
    fn global_pools_are_means_and_keep_the_gradients_layout() {
        tch::manual_seed(2);
        let opts = (Kind::Float, Device::Cpu);
        let parts: Vec<Tensor> = [3, 5]
            .iter()
            .map(|&c| to_channels_last(&Tensor::randn([2, c, 4, 4], opts)).set_requires_grad(true))
            .collect();
        let want = Tensor::cat(&parts, 1).mean_dim(&[2i64, 3][..], false, Kind::Float);
        let got = global_avg_pool_cat(&parts);
        assert_eq!(got.size(), [2, 8]);
        assert!(f64::try_from((&got - &want).abs().max()).unwrap() < 1e-6);
        let grads = Tensor::run_backward(&[got.sum(Kind::Float)], &parts, false, false);
        for g in &grads {
            assert!(is_channels_last(g), "strides {:?}", g.stride());
            assert!(f64::try_from((g - 1.0 / 16.0).abs().max()).unwrap() < 1e-7);
        }
    }

    /// The batch norm of `[N, C]` features is the 2-d batch norm of the
    /// same features as `[N, C, 1, 1]`: output and running statistics.
    #[test]
    fn batch_norm_of_features_is_the_2d_norm_of_a_1x1_map() {
        tch::manual_seed(4);
        let x = Tensor::randn([6, 5], (Kind::Float, Device::Cpu)) * 3.0 + 1.0;
        let vs = nn::VarStore::new(Device::Cpu);
        let (flat, map) = (bn(vs.root() / "a", 5, true), bn(vs.root() / "b", 5, true));
        let got = flat.forward_features_t(&x, true);
        let want = map.forward_t(&x.view([6, 5, 1, 1]), true).view([6, 5]);
        assert!(f64::try_from((&got - &want).abs().max()).unwrap() < 1e-5);
        for (a, b) in [
            (&flat.inner.running_mean, &map.inner.running_mean),
            (&flat.inner.running_var, &map.inner.running_var),
        ] {
            assert!(f64::try_from((a - b).abs().max()).unwrap() < 1e-6);
        }
        let eval = flat.forward_features_t(&x, false);
        let eval_map = map.forward_t(&x.view([6, 5, 1, 1]), false).view([6, 5]);
        assert!(f64::try_from((&eval - &eval_map).abs().max()).unwrap() < 1e-5);
    }

    /// Every form of a dilated depthwise conv computes what the dilated
    /// conv itself computes: both strides, both kernel sizes, even and odd
    /// sides, channels-first and channels-last inputs.
    #[test]
    fn dilated_depthwise_forms_equal_the_dilated_conv() {
        let cases = [(3, 8), (5, 8), (3, 7), (5, 5), (5, 2), (3, 6)];
        for ((k, side), stride) in cases.into_iter().flat_map(|c| [(c, 1), (c, 2)]) {
            tch::manual_seed(1);
            let vs = nn::VarStore::new(tch::Device::Cpu);
            let dw = Depthwise::new(vs.root(), 4, k, stride, k - 1, 2);
            assert_ne!(dw.form, DepthwiseForm::Direct);
            let x = Tensor::randn([2, 4, side, side], (tch::Kind::Float, tch::Device::Cpu));
            let last = to_channels_last(&x);
            assert!(is_channels_last(&last) && !is_channels_last(&x));
            let want = x.conv2d(
                &dw.conv.ws,
                None::<Tensor>,
                [stride, stride],
                [k - 1, k - 1],
                [2, 2],
                4,
            );
            for input in [&x, &last] {
                let got = dw.forward(input);
                let what = format!("k {k} side {side} stride {stride}");
                assert_eq!(got.size(), want.size(), "{what}");
                let diff = f64::try_from((&got - &want).abs().max()).unwrap();
                assert!(diff < 1e-5, "{what}: {diff}");
            }
        }
    }

    #[test]
    fn every_op_keeps_or_halves_the_shape() {
        for kind in [SpaceKind::Darts, SpaceKind::Nb201] {
            let space = SearchSpace::new(kind);
            let vs = nn::VarStore::new(tch::Device::Cpu);
            let x = Tensor::randn([2, 4, 8, 8], (tch::Kind::Float, tch::Device::Cpu));
            for (i, name) in space.ops().iter().enumerate() {
                for stride in [1, 2] {
                    if kind == SpaceKind::Nb201 && stride == 2 {
                        continue;
                    }
                    let op = Op::new(kind, name, vs.root() / format!("{i}_{stride}"), 4, stride);
                    match op {
                        None => assert_eq!(*name, "none"),
                        Some(op) => {
                            let y = op.forward_t(&x, || x.relu(), true);
                            let side = 8 / stride;
                            assert_eq!(y.size(), vec![2, 4, side, side], "{name} stride {stride}");
                        }
                    }
                }
            }
        }
    }
}
