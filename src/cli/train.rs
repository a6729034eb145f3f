//! `ddsas train`: train a searched cell from scratch (appendix B.1) and
//! record it in the database, as `search` records a search: a
//! progress bar per epoch, a checkpoint after each, `--resume` and a clean
//! Ctrl-C.

use crate::cli::JobArgs;

/// Train a cell from scratch.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  ddsas train --from-run 12                                   # the final cell of search run 12
  ddsas train --genotype darts_v2 --set dataset=cifar10 --set data_dir=data/cifar
  ddsas train --genotype @genotypes.py:PC_DARTS_cifar           # one genotype of a paper's genotypes.py
  ddsas train --genotype \"normal=[(sep_conv_3x3,0),...] reduce=[...]\" --dry-run
  ddsas train --genotype darts_v2 --dry-run --set dataset=cifar10  # params=3349342, no data needed
  ddsas train --from-run 12 --set epochs=20 --set layers=8 --set init_channels=16
  ddsas train --print-config > train.yaml                     # a template with every key
  ddsas train --genotype darts_v2 --nproc 8 --device cuda     # data-parallel, one GPU per rank (NCCL)
Defaults are the appendix's (DARTS protocol): 20 cells, 36 channels, 600 epochs, batch 96,
SGD 0.025 cosine to 0, auxiliary head 0.4, drop path 0.3, cutout 16.")]
pub struct TrainCmd {
    /// The cell: ddsas's genotype text, DARTS's `[NAME =] Genotype(...)`, darts_v1 / darts_v2,
    /// `@FILE` (a file holding one genotype) or `@FILE:NAME` (NAME of a genotypes.py).
    #[arg(long, conflicts_with = "from_run")]
    genotype: Option<String>,
    /// Train the final cell of this search run (its dataset and data folder too).
    #[arg(long, value_name = "ID")]
    from_run: Option<i64>,
    #[command(flatten)]
    job: JobArgs,
    /// Build the network, print `params=N (DATASET: CxHxW, K classes)` (without the
    /// auxiliary head) and exit; reads no data, so the dataset need not be downloaded.
    #[arg(long)]
    dry_run: bool,
    /// Train data-parallel in N processes (one per device; on CPU the cores split between
    /// them). Needs the `dist` build: `cargo build --release --features dist` with Gloo's
    /// headers (Debian: libgloo-dev).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    nproc: u32,
    /// With `--nproc N` on `--device cuda`: the GPUs of the ranks, rank r on the r-th of the
    /// list (e.g. `--gpus 4,5,6,7`); default: every visible GPU, rank r on GPU r.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    gpus: Vec<u32>,
}

/// The training itself, on libtorch.
#[cfg(feature = "engine")]
mod engine;
/// `--nproc N`: the launcher and its rank processes.
#[cfg(feature = "dist")]
mod ranks;
