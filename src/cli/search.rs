//! `ddsas search`: one search from a config, recorded in the database, with
//! a progress bar per epoch, checkpoints, `--resume` and a clean Ctrl-C.

use crate::cli::JobArgs;

/// Run one search.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  ddsas search --set epochs=3 --set L=28 --set M=10\n  ddsas search --config search.yaml --device cuda:0 --db results.db\n  ddsas search --config search.yaml --resume\n  ddsas search --print-config > search.yaml     # a template with every key"
)]
pub struct SearchCmd {
    #[command(flatten)]
    job: JobArgs,
}

/// The search itself, on libtorch.
#[cfg(feature = "engine")]
pub(crate) mod engine;
