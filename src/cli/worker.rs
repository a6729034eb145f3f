//! `ddsas worker` (hidden), in two modes. Not for people; see
//! `exec::worker` and `exec::slurm::pull` for what they do.
//! - `--run-id N --owner ID`: the process the sweep orchestrator starts for
//!   one claimed run; its exit status tells the orchestrator how the run
//!   ended.
//! - `--sweep NAME`: a pull worker, what each task of a `sweep submit
//!   --slurm` job array runs: it claims the sweep's runs and runs them on
//!   the task's GPUs or CPU cores until none is left to claim.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::exec::device::{parse_device, set_threads};
use crate::exec::slurm::pull::{run_pull, PullWorker};
use crate::exec::worker::{run_worker, WorkerOptions};
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
}

impl WorkerCmd {
    /// Runs the command; the exit status tells the orchestrator (or Slurm)
    /// how the run (or the task) ended.
    pub fn run(self, rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
        let store = crate::cli::DbArgs {
            db: self.db.clone(),
        }
        .open(rt)?;
        let code = match (&self.sweep, self.run_id, &self.owner, self.attempt) {
            (Some(sweep), _, _, _) => {
                let pull = PullWorker {
                    sweep: sweep.clone(),
                    db: self.db.clone(),
                    log_dir: self.log_dir.clone(),
                    runs_per_gpu: self.runs_per_gpu,
                    threads: self.threads,
                    max_retries: self.max_retries,
                    stale_after_s: self.stale_after,
                    stall_after_s: self.stall_after,
                    heartbeat_s: self.heartbeat_s,
                };
                rt.block_on(run_pull(&store, &pull))?
            }
            (None, Some(run_id), Some(owner), Some(attempt)) => {
                set_threads(self.threads.unwrap_or(1).max(1))?;
                let device = parse_device(self.device.as_deref().unwrap_or("cpu"))?;
                run_worker(
                    rt,
                    &store,
                    &WorkerOptions {
                        db: self.db,
                        run_id,
                        attempt,
                        device,
                        owner: owner.clone(),
                        heartbeat_s: self.heartbeat_s,
                        quiet: self.quiet,
                    },
                )?
            }
            _ => anyhow::bail!("ddsas worker needs --run-id, --owner and --attempt, or --sweep"),
        };
        rt.block_on(store.close());
        Ok(ExitCode::from(code))
    }
}
