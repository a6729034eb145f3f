//! ddsas: DDSAS, DARTS and GDAS architecture searches on libtorch, over
//! sweeps of hyper-parameters, with every run's measurements in SQLite and
//! the paper's figures drawn from it.
//!
//! Modules follow the data: [`data`] → [`nas`] (spaces, ops, supernet,
//! methods, search loop, metrics) → [`store`] (SQLite) → sweep/exec → report
//! → cli.

pub mod cli;
pub mod config;
pub mod data;
pub mod exec;
pub mod nas;
pub mod report;
pub mod store;
pub mod sweep;
