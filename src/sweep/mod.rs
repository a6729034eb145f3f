//! Sweeps (docs/design.md §5): one YAML file that expands, deterministically,
//! into many search runs, each a resolved config with its fingerprint.
//!
//! This module only reads and expands sweep files ("planning"); running the
//! expanded runs is `exec::orchestrator`'s job and the commands are in
//! `cli::sweep`. Everything a sweep file can get wrong is rejected here,
//! before anything runs, with the file, line and column and a hint.
//!
//! # File format
//!
//! ```yaml
//! name: fig7_lm_grid        # required; letters, digits, `_`, `-`, `.`: the sweep's key in the database
//! description: ...          # optional, free text
//! base:                     # a search config: the keys of `ddsas search --config`
//!   dataset: cifar10
//!   data_dir: data/cifar
//! grid:                     # cartesian axes, in file order, the first axis varying slowest
//!   L: [15, 28, 42]
//!   M: [1, 5, 10]
//! zip:                      # optional: axes varied together (every list the same length)
//!   w_lr: [0.025, 0.05]
//!   arch_lr: [0.0003, 0.0006]
//! runs:                     # optional: partial configs merged into `base`, each crossed
//!   - {method: ddsas}       #   with the grid; an entry may carry its own `grid:` / `zip:`
//!   - {method: darts}       #   (an entry axis replaces the top-level axis of that key, an
//!   - {method: gdas}        #   entry `zip:` replaces the top-level zip), and a key the entry
//!                           #   fixes drops the top-level axis of that key for the entry
//! seeds: [0, 1, 2, 3]       # optional: sets `seed`; the outermost loop
//! exclude:                  # optional partial configs: a run matching every key of one
//!   - {L: 15, M: 1}         #   entry (compared after defaults are filled in) is skipped
//! evaluate:                 # optional: train each finished DARTS-space search's
//!   epochs: 600             #   final cell from scratch (keys of `ddsas train
//!   seeds: [0]              #   --print-config`; genotype and data from the search);
//!                           #   or a list of such mappings, one training each, e.g.
//!                           #   [{epochs: 600}, {dataset: imagenet, epochs: 250}]
//! resources:                # optional hints for `ddsas sweep run`
//!   runs_per_gpu: 2         #   default of --runs-per-gpu
//!   gpu_mem_gb_per_run: 4   #   per-run estimate for --runs-per-gpu auto (default 4)
//!   cpu_threads_per_run: 1  #   libtorch threads of a CPU worker (default: cores / workers);
//!                           #   without a GPU, --cpu-workers then defaults to cores / this
//!   data: {download: true}  #   fetch a missing CIFAR into the data folder before the runs
//!                           #   start (once, under a lock; same as `download: true` in base)
//! ```
//!
//! Keys inside `grid`, `zip`, `runs` and `exclude` may be dotted paths into
//! nested keys (`space_schedule.initial`). Expansion order: seeds, then
//! `runs` entries, then grid points, then zip rows. Runs that resolve to the
//! same fingerprint are kept once (the baselines ignore `L`, `M` and the
//! other DDSAS knobs, so a grid over them collapses for DARTS and GDAS).

mod expand;
mod keys;
mod spec;

/// The sweep file format in brief, for `ddsas sweep plan/run --help` (the
/// module documentation above has the details).
pub const FORMAT_HELP: &str = "\
Sweep file (YAML):
  name: fig7_lm_grid        required: the sweep's key in the database
  description: ...          optional free text
  base: {dataset: cifar10, data_dir: data/cifar, epochs: 50}
                            a search config (`ddsas search --print-config` lists the keys)
  grid: {L: [15, 28, 42], M: [1, 5, 10]}
                            cartesian axes, the first varying slowest
  zip: {w_lr: [0.025, 0.05], arch_lr: [0.0003, 0.0006]}
                            axes varied together (lists of one length)
  runs: [{method: ddsas}, {method: darts, grid: {...}}]
                            partial configs merged into base, each crossed with the grid
  seeds: [0, 1, 2, 3]       sets `seed`, the outermost loop
  exclude: [{L: 15, M: 1}]  skip runs matching every key of an entry
  resources: {runs_per_gpu: 2, gpu_mem_gb_per_run: 4, cpu_threads_per_run: 1,
              data: {download: true}}
                            data.download: fetch a missing CIFAR into the data folder first
  evaluate: {epochs: 600, seeds: [0]}
                            train each finished search's cell from scratch (`ddsas train` keys)
Runs with the same resolved config are kept once, and a done config is never run again.
Examples: sweeps/*.yaml.";

pub use crate::config::config_keys;
pub use expand::{PlannedRun, Sweep};
pub use spec::{stored_evaluate, DataResources, Evaluate, Resources};

use std::path::PathBuf;

/// A sweep file that cannot be planned; the message says where and why.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The file could not be read.
    #[error("cannot read sweep file {path}: {source}")]
    Io {
        /// The sweep file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Invalid YAML, an unknown top-level key or a wrong type, with the
    /// place in the file.
    #[error("{}: {message}", place(file, *location))]
    Spec {
        /// The sweep file.
        file: String,
        /// Line and column (1-based), when known.
        location: Option<(usize, usize)>,
        /// What is wrong, with a hint.
        message: String,
    },
    /// One expanded run whose config is rejected; names the run by its
    /// varied values, and the key.
    #[error("{}: run {index}{}: {message}", place(file, *location), in_parens(params))]
    Run {
        /// The sweep file.
        file: String,
        /// Where the offending key is written, when it can be found.
        location: Option<(usize, usize)>,
        /// Position of the run in the expansion (from 0).
        index: usize,
        /// The run's varied values, `key=value` separated by spaces.
        params: String,
        /// The config error, naming the key.
        message: String,
    },
    /// Nothing left to run after expansion and exclusion.
    #[error("{file}: sweep `{name}` expands to no runs: {reason}\nhint: check `grid` and `zip` for empty lists and `exclude` for entries that match every run")]
    Empty {
        /// The sweep file.
        file: String,
        /// The sweep's name.
        name: String,
        /// Why (empty axes, everything excluded).
        reason: String,
    },
}

/// ` (text)`, or nothing for empty text.
fn in_parens(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(" ({text})")
    }
}

fn place(file: &str, location: Option<(usize, usize)>) -> String {
    match location {
        Some((line, column)) => format!("{file}:{line}:{column}"),
        None => file.to_owned(),
    }
}
