//! Multiply-adds of an evaluation network, the cost DARTS-family papers
//! report beside the parameters ("× +", the mobile setting's < 600 M).
//!
//! The convention, which is what those papers' counts follow: for one
//! image at the network's input size, every convolution counts
//! `k_h · k_w · (C_in / groups) · C_out · H_out · W_out` and the classifier
//! `in · out`; nothing else (no batch norm, pooling, ReLU, additions or
//! biases), and not the auxiliary head, which only training runs.
//!
//! It is counted by walking the network's shape exactly as
//! [`crate::nas::evalnet`] builds it (the same stems, preprocessing, ops,
//! strides and paddings), without tensors, so that a dry run and the
//! report code need no libtorch; the unit tests check it against the count
//! that forward hooks on the PyTorch reference give.

use crate::arch::shape::{EvalShape, Stem};
use crate::arch::trained::{TrainedCell, TrainedGenotype};

/// Height and width of a feature map.
type Size = (i64, i64);

/// Multiply-adds of one image through the network of `genotype` in
/// `shape` at `shape.image_size` pixels (see the module's convention).
pub fn multiply_adds(genotype: &TrainedGenotype, shape: &EvalShape) -> i64 {
    let mut count = Count::default();
    let side = shape.image_size;
    let c = shape.channels;
    let (mut c_pp, mut c_p, mut s0, mut s1, mut reduce_prev) = match shape.stem {
        Stem::Cifar => {
            let out = count.conv(
                [3, 3],
                [shape.in_channels, 3 * c],
                (side, side),
                [1, 1],
                [1, 1],
                1,
            );
            (3 * c, 3 * c, out, out, false)
        }
        Stem::ImageNet => {
            let half = count.conv(
                [3, 3],
                [shape.in_channels, c / 2],
                (side, side),
                [2, 2],
                [1, 1],
                1,
            );
            let s0 = count.conv([3, 3], [c / 2, c], half, [2, 2], [1, 1], 1);
            let s1 = count.conv([3, 3], [c, c], s0, [2, 2], [1, 1], 1);
            (c, c, s0, s1, true)
        }
    };
    let mut channels = c;
    for i in 0..shape.layers {
        let reduce = i == shape.layers / 3 || i == 2 * shape.layers / 3;
        if reduce {
            channels *= 2;
        }
        let cell = genotype.cells()[usize::from(reduce)];
        let pre0 = if reduce_prev {
            count.factorized_reduce(c_pp, channels, s0)
        } else {
            count.conv([1, 1], [c_pp, channels], s0, [1, 1], [0, 0], 1)
        };
        let pre1 = count.conv([1, 1], [c_p, channels], s1, [1, 1], [0, 0], 1);
        debug_assert_eq!(pre0, pre1, "both cell inputs meet at one size");
        let out = count.cell(cell, channels, pre1, reduce);
        (c_pp, c_p) = (c_p, cell.concat.len() as i64 * channels);
        (s0, s1) = (s1, out);
        reduce_prev = reduce;
    }
    count.total + c_p * shape.classes
}

/// The running total.
#[derive(Debug, Default)]
struct Count {
    total: i64,
}

impl Count {
    /// Counts a convolution of kernel `k` from `c_in` to `c_out` channels
    /// (`groups` groups) on a map of `size`; returns the output's size.
    fn conv(
        &mut self,
        k: [i64; 2],
        [c_in, c_out]: [i64; 2],
        size: Size,
        stride: [i64; 2],
        padding: [i64; 2],
        groups: i64,
    ) -> Size {
        self.dilated(k, [c_in, c_out], size, [stride, padding], 1, groups)
    }

    /// [`conv`](Self::conv) with a dilation.
    fn dilated(
        &mut self,
        k: [i64; 2],
        [c_in, c_out]: [i64; 2],
        (h, w): Size,
        [stride, padding]: [[i64; 2]; 2],
        dilation: i64,
        groups: i64,
    ) -> Size {
        let side =
            |n: i64, d: usize| (n + 2 * padding[d] - dilation * (k[d] - 1) - 1) / stride[d] + 1;
        let out = (side(h, 0), side(w, 1));
        self.total += k[0] * k[1] * (c_in / groups) * c_out * out.0 * out.1;
        out
    }

    /// DARTS's FactorizedReduce: two 1x1 stride-2 convs to `c_out / 2`,
    /// the second on the map shifted by one pixel.
    fn factorized_reduce(&mut self, c_in: i64, c_out: i64, (h, w): Size) -> Size {
        let out = self.conv([1, 1], [c_in, c_out / 2], (h, w), [2, 2], [0, 0], 1);
        self.conv([1, 1], [c_in, c_out / 2], (h - 1, w - 1), [2, 2], [0, 0], 1);
        out
    }

    /// A cell of `c` channels whose two preprocessed inputs are of `size`;
    /// returns the size of its output.
    fn cell(&mut self, cell: &TrainedCell, c: i64, size: Size, reduce: bool) -> Size {
        let mut sizes = vec![size, size];
        for pair in cell.ops.chunks(2) {
            let mut node = size;
            for (op, input) in pair {
                let stride = if reduce && *input < 2 { 2 } else { 1 };
                node = self.op(op, c, sizes[*input], stride);
            }
            sizes.push(node);
        }
        sizes[cell.concat[0]]
    }

    /// Op `name` of `c` channels at `stride` on a map of `size`.
    fn op(&mut self, name: &str, c: i64, size: Size, stride: i64) -> Size {
        let pool = |(h, w): Size| ((h - 1) / stride + 1, (w - 1) / stride + 1);
        match name {
            "max_pool_3x3" | "avg_pool_3x3" => pool(size),
            "skip_connect" if stride == 1 => size,
            "skip_connect" => self.factorized_reduce(c, c, size),
            "sep_conv_3x3" => self.separable(c, 3, size, stride),
            "sep_conv_5x5" => self.separable(c, 5, size, stride),
            "sep_conv_7x7" => self.separable(c, 7, size, stride),
            "dil_conv_3x3" => self.dilated_separable(c, 3, size, stride),
            "dil_conv_5x5" => self.dilated_separable(c, 5, size, stride),
            "conv_7x1_1x7" => {
                let mid = self.conv([1, 7], [c, c], size, [1, stride], [0, 3], 1);
                self.conv([7, 1], [c, c], mid, [stride, 1], [3, 0], 1)
            }
            other => unreachable!("op {other} is checked when the genotype is read"),
        }
    }

    /// `sep_conv_kxk`: two depthwise-pointwise blocks, the first strided.
    fn separable(&mut self, c: i64, k: i64, size: Size, stride: i64) -> Size {
        let pad = [(k - 1) / 2; 2];
        let a = self.conv([k, k], [c, c], size, [stride; 2], pad, c);
        let a = self.conv([1, 1], [c, c], a, [1, 1], [0, 0], 1);
        let b = self.conv([k, k], [c, c], a, [1, 1], pad, c);
        self.conv([1, 1], [c, c], b, [1, 1], [0, 0], 1)
    }

    /// `dil_conv_kxk`: one depthwise block of dilation 2, then pointwise.
    fn dilated_separable(&mut self, c: i64, k: i64, size: Size, stride: i64) -> Size {
        let pad = [k - 1; 2];
        let a = self.dilated([k, k], [c, c], size, [[stride; 2], pad], 2, c);
        self.conv([1, 1], [c, c], a, [1, 1], [0, 0], 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::genotype::parse_trained;

    fn shape(stem: Stem, [layers, channels, classes, image_size]: [i64; 4]) -> EvalShape {
        EvalShape {
            layers,
            channels,
            in_channels: 3,
            classes,
            auxiliary: true,
            stem,
            image_size,
        }
    }

    /// The counts that forward hooks on every `Conv2d` and `Linear` (not
    /// the auxiliary head's) of `ref_train_step.py`'s networks give for one
    /// image, with the module's formula.
    #[test]
    fn counts_equal_the_pytorch_references_hooks() {
        let imagenet = |side| shape(Stem::ImageNet, [14, 48, 1000, side]);
        let cifar = shape(Stem::Cifar, [20, 36, 10, 32]);
        for (name, shape, madds) in [
            ("darts_v2", imagenet(224), 529_911_552),
            ("darts_v2", imagenet(64), 43_963_392),
            ("darts_v2", cifar, 528_359_040),
            ("darts_v1", cifar, 500_987_520),
            ("nasnet", imagenet(224), 604_031_616),
            ("nasnet", cifar, 603_452_448),
            ("amoebanet", imagenet(224), 526_746_624),
            ("amoebanet", cifar, 488_931_552),
        ] {
            let g = parse_trained(name).unwrap();
            assert_eq!(multiply_adds(&g, &shape), madds, "{name} {shape:?}");
        }
    }

    /// DARTS publishes 574 M multiply-adds for its cell in the mobile
    /// setting; its own counting is not published, so within 10 %.
    #[test]
    fn darts_v2_on_imagenet_is_within_ten_percent_of_the_published_count() {
        let g = parse_trained("darts_v2").unwrap();
        let madds = multiply_adds(&g, &shape(Stem::ImageNet, [14, 48, 1000, 224])) as f64;
        assert!((madds / 574e6 - 1.0).abs() < 0.10, "{madds}");
    }
}
