//! Architectures without tensors: the search spaces, genotypes and their
//! parsing, and the per-epoch records and pure metrics a search and a
//! training report.
//!
//! It is separate from `nas` because config, store, report and serve need
//! these types and must not depend on libtorch. It sits below `config`:
//! nothing here imports another module of the crate, and the tensor code in
//! `nas` builds on it.

pub mod genotype;
pub mod madds;
pub mod metrics;
pub mod shape;
pub mod space;
pub mod trained;
