//! ddsas: DDSAS, DARTS and GDAS architecture searches on libtorch, over
//! sweeps of hyper-parameters, with every run's measurements in SQLite and
//! the paper's figures drawn from it.
//!
//! Modules follow the data: [`arch`] (spaces, genotypes, records and metrics,
//! no tensors) and [`data`] → [`config`] → [`nas`] (ops, supernet, methods,
//! the one epoch loop of every kind of run) → [`store`] (SQLite or
//! PostgreSQL) → sweep/exec → report → serve → cli; docs/architecture.md
//! draws the map.
//!
//! Cargo feature `engine` (on by default) is everything that computes with
//! tensors on libtorch: `nas`, the datasets as tensors, the execution of
//! runs and the commands that train. `cargo build --no-default-features`
//! leaves it out: that `ddsas` links no libtorch, starts without loading it
//! (about 0.4 s saved on every command), and runs every command that only
//! reads, plans or serves (`runs`, `sql`, `report`, `serve`, `sweep plan` /
//! `status` / `cancel`, `data`, `nb201`, `bench store`), e.g. on a laptop
//! with a copied results.db and no 2.5 GB torch; the training commands say
//! they need the engine. The compiler so also keeps store, report, serve
//! and sweep free of tensors.

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
#[cfg(feature = "engine")]
pub mod nas;
pub mod report;
pub mod serve;
pub mod store;
pub mod sweep;
pub mod test_services;
/// libtorch's error texts as one readable line: used by the checkpoints
/// of `nas` and by the panic hook every build installs, so it sits below
/// both.
pub mod torch_text;
