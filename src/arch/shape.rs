//! The shape of the evaluation network a genotype is trained in (the DARTS
//! protocol, appendix B.1): how many cells, how wide, for which images and
//! classes. It is plain data, so that the train config can resolve and
//! fingerprint it without building a network.

/// The shape of an evaluation network.
#[derive(Debug, Clone, Copy)]
pub struct EvalShape {
    /// Cells (20 in the paper).
    pub layers: i64,
    /// Channels of the first cells (36 in the paper).
    pub channels: i64,
    /// Image channels.
    pub in_channels: i64,
    /// Classes.
    pub classes: i64,
    /// Whether to build the auxiliary head.
    pub auxiliary: bool,
    /// The stem before the cells, which sets how far the image is reduced
    /// before the first cell.
    pub stem: Stem,
    /// Side of the (square) image the network is fed, in pixels: the crop
    /// size. The network itself adapts to any size (global pooling); the
    /// multiply-adds are counted at this one.
    pub image_size: i64,
}

/// The stem of an evaluation network, as DARTS-family code builds it per
/// dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stem {
    /// One 3x3 conv to 3·C channels, BN, at full resolution (CIFAR, the
    /// digits): small images are not reduced before the cells.
    #[default]
    Cifar,
    /// The mobile-setting ImageNet stem: three stride-2 3x3 convs (two in
    /// `stem0`, one in `stem1`), so the cells start at 1/8 of the image
    /// and the first cell reduces its larger `s0` (`stem0`'s output).
    ImageNet,
}
