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
  ddsas train --from-run 12 --db postgres://me@db/ddsas --slurm --nodes 2 --gpus-per-node 8 --time 3-00
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
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "slurm")]
    nproc: u32,
    /// With `--nproc N` on `--device cuda`: the GPUs of the ranks, rank r on the r-th of the
    /// list (e.g. `--gpus 4,5,6,7`); default: every visible GPU, rank r on GPU r.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        conflicts_with = "slurm"
    )]
    gpus: Vec<u32>,
    #[command(flatten)]
    slurm: SlurmArgs,
}

/// `ddsas train --slurm`: one data-parallel training submitted as one Slurm
/// job, its ranks started by srun on every node.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Slurm (one job, one rank per GPU; needs a PostgreSQL --db)")]
pub struct SlurmArgs {
    /// Submit the training to Slurm as one job whose `srun` starts every rank, then return.
    #[arg(long)]
    slurm: bool,
    /// Nodes of the job.
    #[arg(long, value_name = "K", default_value_t = 1, requires = "slurm", value_parser = clap::value_parser!(u32).range(1..))]
    nodes: u32,
    /// GPUs per node, one rank each (world size: nodes x G).
    #[arg(long, value_name = "G", requires = "slurm", conflicts_with = "ntasks_per_node", value_parser = clap::value_parser!(u32).range(1..))]
    gpus_per_node: Option<u32>,
    /// Ranks per node on a cluster without GPUs (each with --cpus-per-task cores).
    #[arg(long, value_name = "N", requires = "slurm", value_parser = clap::value_parser!(u32).range(1..))]
    ntasks_per_node: Option<u32>,
    /// sbatch --cpus-per-task: each rank's cores (its libtorch threads).
    #[arg(long, value_name = "N", requires = "slurm", value_parser = clap::value_parser!(u32).range(1..))]
    cpus_per_task: Option<u32>,
    /// sbatch --partition.
    #[arg(long, requires = "slurm")]
    partition: Option<String>,
    /// sbatch --account.
    #[arg(long, requires = "slurm")]
    account: Option<String>,
    /// sbatch --time (`30`, `4:00:00`, `1-00`); a run stopped by it resumes in the requeued job.
    #[arg(long, requires = "slurm")]
    time: Option<String>,
    /// sbatch --mem (`16G`), per node.
    #[arg(long, requires = "slurm")]
    mem: Option<String>,
    /// Seconds before the time limit at which Slurm tells the ranks (SIGUSR2) to
    /// checkpoint and the job to requeue itself.
    #[arg(long, default_value_t = 120, value_name = "SECONDS", requires = "slurm", value_parser = clap::value_parser!(u32).range(1..))]
    signal_before: u32,
    /// Another sbatch option, verbatim (repeatable), e.g. `--sbatch-arg=--qos=long`.
    #[arg(
        long = "sbatch-arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        requires = "slurm"
    )]
    sbatch_args: Vec<String>,
    /// Folder for the batch script and the job's output (default: slurm/train-<run id>).
    #[arg(long, value_name = "DIR", requires = "slurm")]
    script_dir: Option<std::path::PathBuf>,
}

/// The training itself, on libtorch.
#[cfg(feature = "engine")]
mod engine;
/// `--slurm`: the submission, and what a rank started by srun does besides.
#[cfg(feature = "engine")]
mod slurm;
