//! What `ddsas worker` runs (`engine` build only).

use std::process::ExitCode;

use super::WorkerCmd;
use crate::exec::device::{parse_device, set_threads};
use crate::exec::slurm::pull::{run_pull, PullWorker};
use crate::exec::worker::{run_worker, WorkerOptions};

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
