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
}
