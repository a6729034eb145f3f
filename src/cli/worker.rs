//! `ddsas worker` (hidden): the process the sweep orchestrator starts for
//! one claimed run. Not for people; see `exec::worker` for what it does and
//! what its exit statuses mean.

use std::process::ExitCode;

use crate::exec::device::{parse_device, set_threads};
use crate::exec::worker::{run_worker, WorkerOptions};
use crate::store::DbLocation;

/// Execute one claimed run of a sweep (started by `ddsas sweep run`).
#[derive(Debug, clap::Args)]
pub struct WorkerCmd {
    /// The run-history database.
    #[arg(long)]
    db: DbLocation,
    /// The claimed run.
    #[arg(long)]
    run_id: i64,
    /// Device: cpu or cuda:0 (the GPU is chosen with CUDA_VISIBLE_DEVICES).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// libtorch CPU threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Owner id of the claim (the orchestrator's).
    #[arg(long)]
    owner: String,
    /// Seconds between background heartbeats.
    #[arg(long, default_value_t = 5.0)]
    heartbeat_s: f64,
    /// Print nothing per epoch.
    #[arg(long)]
    quiet: bool,
}

impl WorkerCmd {
    /// Runs the command; the exit status tells the orchestrator how the run ended.
    pub fn run(self, rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
        set_threads(self.threads.max(1))?;
        let device = parse_device(&self.device)?;
        let store = crate::cli::DbArgs {
            db: self.db.clone(),
        }
        .open(rt)?;
        let code = run_worker(
            rt,
            &store,
            &WorkerOptions {
                db: self.db,
                run_id: self.run_id,
                device,
                owner: self.owner,
                heartbeat_s: self.heartbeat_s,
                quiet: self.quiet,
            },
        )?;
        rt.block_on(store.close());
        Ok(ExitCode::from(code))
    }
}
