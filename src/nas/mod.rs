//! Neural architecture search on libtorch: ops, the supernet, the three
//! methods, the search loop that produces one `EpochRecord` per epoch, and
//! the evaluation network a genotype is trained in. The spaces, genotypes
//! and records they use live in [`crate::arch`], which has no tensors.

pub mod checkpoint;
#[cfg(feature = "dist")]
pub mod dist;
pub mod evalnet;
pub mod faults;
pub mod fused;
pub mod loss;
pub mod method;
pub mod ops;
pub mod optim;
pub mod parallel;
pub mod progress;
pub mod run;
pub mod search;
pub mod supernet;
pub mod train;
