//! Neural architecture search: spaces, ops, the supernet, the three methods
//! and the search loop that produces one `EpochRecord` per epoch.

pub mod checkpoint;
pub mod evalnet;
pub mod genotype;
pub mod method;
pub mod metrics;
pub mod ops;
pub mod optim;
pub mod progress;
pub mod run;
pub mod search;
pub mod space;
pub mod supernet;
pub mod torch_text;
pub mod train;
