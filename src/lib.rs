//! ddsas: DDSAS, DARTS and GDAS architecture searches on libtorch, over
//! sweeps of hyper-parameters, with every run's measurements in SQLite and
//! the paper's figures drawn from it.
//!
//! Modules follow the data: [`arch`] (spaces, genotypes, records and metrics,
//! no tensors) and [`data`] → [`nas`] (ops, supernet, methods, search and
//! training loops) → [`store`] (SQLite) → sweep/exec → report → serve → cli.

/// `println!` that never panics. A closed stdout (`ddsas ... | head`, a log
/// pipe that died) must not stop a search or a sweep half-way: the write is
/// dropped and the work goes on.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that never panics (see [`outln!`]).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Architectures without tensors: what config, store, report and serve need
/// from a search without linking libtorch.
pub mod arch;
pub mod cli;
pub mod config;
pub mod data;
pub mod exec;
pub mod nas;
pub mod report;
pub mod serve;
pub mod store;
pub mod sweep;
pub mod test_services;
