//! `ddsas worker` (hidden), in two modes. Not for people; see
//! `exec::worker` and `exec::slurm::pull` for what they do.
//! - `--run-id N --owner ID`: the process the sweep orchestrator starts for
//!   one claimed run; its exit status tells the orchestrator how the run
//!   ended. With `--nproc N` it launches N ranks of itself for a training
//!   that runs data-parallel (`cli::ranks`), rank 0 being that process.
//! - `--sweep NAME`: a pull worker, what each task of a `sweep submit
//!   --slurm` job array runs: it claims the sweep's runs and runs them on
//!   the task's GPUs or CPU cores until none is left to claim.

use std::path::PathBuf;

use crate::store::DbLocation;

/// Execute one claimed run of a sweep (started by `ddsas sweep run`), or
/// with `--sweep`, pull runs of a registered sweep until none is left (a
/// task of `ddsas sweep submit --slurm`).
#[derive(Debug, clap::Args)]
pub struct WorkerCmd {
    /// The run-history database. Orchestrators and Slurm scripts hand it
    /// over in DDSAS_DB, which `ps` does not show other users.
    #[arg(long, env = crate::store::DB_VARIABLE)]
    db: DbLocation,
    /// The claimed run.
    #[arg(long, required_unless_present = "sweep", requires = "owner")]
    run_id: Option<i64>,
    /// Owner id of the claim (the orchestrator's).
    #[arg(long, requires = "run_id")]
    owner: Option<String>,
    /// The attempt this worker is (the run's started workers before it,
    /// plus one); counted when the worker confirms its claim.
    #[arg(long, requires = "run_id", required_unless_present = "sweep")]
    attempt: Option<i64>,
    /// Pull mode: the registered sweep whose runs to claim and run.
    #[arg(long, conflicts_with_all = ["run_id", "owner", "attempt", "device"])]
    sweep: Option<String>,
    /// Device: cpu or cuda:0 (the GPU is chosen with CUDA_VISIBLE_DEVICES).
    #[arg(long)]
    device: Option<String>,
    /// libtorch CPU threads (pull mode: per run; default: the sweep's
    /// resources.cpu_threads_per_run, else the task's cores over its runs).
    #[arg(long)]
    threads: Option<usize>,
    /// Seconds between background heartbeats.
    #[arg(long, default_value_t = 5.0)]
    heartbeat_s: f64,
    /// Print nothing per epoch.
    #[arg(long)]
    quiet: bool,
    /// A training run data-parallel in N processes (a sweep's `evaluate:`
    /// entry with `nproc: N`): this worker launches N ranks of itself,
    /// each with --threads threads; rank 0 holds the claim. With --device
    /// cuda, rank r trains on the r-th GPU of CUDA_VISIBLE_DEVICES.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "run_id", value_parser = clap::value_parser!(u32).range(1..))]
    nproc: u32,
    /// The collectives of those ranks (`auto`, `gloo`, `nccl`): the
    /// entry's `dist_backend`, which the stored config leaves out.
    #[arg(
        long,
        value_name = "BACKEND",
        default_value = "auto",
        requires = "run_id"
    )]
    dist_backend: crate::config::train::DistBackend,
    /// Pull mode: concurrent runs per GPU Slurm gave the task.
    #[arg(long, requires = "sweep")]
    runs_per_gpu: Option<usize>,
    /// Pull mode: folder of the run workers' logs.
    #[arg(long, default_value = "logs", requires = "sweep")]
    log_dir: PathBuf,
    /// Pull mode: retries of a run whose worker died.
    #[arg(long, default_value_t = 2, requires = "sweep")]
    max_retries: u32,
    /// Pull mode: take over a running run whose heartbeat is this old.
    #[arg(
        long,
        default_value_t = 30.0,
        value_name = "SECONDS",
        requires = "sweep"
    )]
    stale_after: f64,
    /// Pull mode: kill and retry a run whose worker finished no batch for
    /// this long (default: 20 times its mean batch time, at least 5 min).
    #[arg(long, value_name = "SECONDS", requires = "sweep")]
    stall_after: Option<f64>,
    /// Pull mode: sbatch --time of the Slurm job a training of several
    /// ranks is handed to (`sweep submit --time`).
    #[arg(long, value_name = "TIME", requires = "sweep")]
    handoff_time: Option<String>,
    /// Pull mode: sbatch --mem of that job.
    #[arg(long, value_name = "MEM", requires = "sweep")]
    handoff_mem: Option<String>,
    /// Pull mode: seconds before that job's time limit at which Slurm
    /// sends it SIGUSR2 (default 120).
    #[arg(long, value_name = "SECONDS", requires = "sweep")]
    handoff_signal_before: Option<u32>,
    /// Pull mode: another sbatch option of that job, verbatim (repeatable).
    #[arg(
        long = "handoff-sbatch-arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        requires = "sweep"
    )]
    handoff_sbatch_args: Vec<String>,
}

/// The worker itself, on libtorch.
#[cfg(feature = "engine")]
mod engine;
