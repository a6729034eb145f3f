//! What `ddsas worker` runs (`engine` build only).

use std::process::ExitCode;

use super::WorkerCmd;
use crate::exec::device::{parse_device, set_threads};
use crate::exec::slurm::pull::{run_pull, PullWorker};
use crate::exec::slurm::script::HandOffSbatch;
use crate::exec::worker::{run_worker, WorkerOptions};

impl WorkerCmd {
    /// Runs the command; the exit status tells the orchestrator (or Slurm)
    /// how the run (or the task) ended.
    pub fn run(self, rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
        if self.nproc > 1 {
            return self.run_ranks(rt);
        }
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
                    hand_off: HandOffSbatch {
                        time: self.handoff_time.clone(),
                        mem: self.handoff_mem.clone(),
                        signal_before_s: self.handoff_signal_before,
                        extra: self.handoff_sbatch_args.clone(),
                    },
                };
                rt.block_on(run_pull(&store, &pull))?
            }
            (None, Some(_), Some(_), Some(_)) => {
                set_threads(self.threads.unwrap_or(1).max(1))?;
                let device = parse_device(self.device.as_deref().unwrap_or("cpu"))?;
                run_worker(rt, &store, &self.options(device, std::process::id())?)?
            }
            _ => anyhow::bail!("ddsas worker needs --run-id, --owner and --attempt, or --sweep"),
        };
        rt.block_on(store.close());
        Ok(ExitCode::from(code))
    }

    /// What the worker of one claimed run is told, on `device`, recorded
    /// as process `pid`.
    fn options(&self, device: tch::Device, pid: u32) -> anyhow::Result<WorkerOptions> {
        match (self.run_id, &self.owner, self.attempt) {
            (Some(run_id), Some(owner), Some(attempt)) => Ok(WorkerOptions {
                db: self.db.clone(),
                run_id,
                attempt,
                device,
                owner: owner.clone(),
                pid,
                heartbeat_s: self.heartbeat_s,
                quiet: self.quiet,
            }),
            _ => anyhow::bail!("ddsas worker needs --run-id, --owner and --attempt, or --sweep"),
        }
    }

    /// `--nproc N` (a training of a sweep's `evaluate:` entry with `nproc`):
    /// the launcher of N ranks of this command line, or one of those ranks.
    /// Each rank gets `--threads` threads and, on CUDA, a GPU of its own.
    #[cfg(feature = "dist")]
    fn run_ranks(self, rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
        use crate::cli::ranks::{self, RankSpec, Tie};
        let device = self.device.clone().unwrap_or_else(|| "cpu".into());
        // `auto` unless the entry named one: the device's own (NCCL on
        // GPUs where built, else Gloo).
        let backend = ranks::check_devices(&device, &[], self.nproc, self.dist_backend)?;
        let Some(spec) = RankSpec::from_env()? else {
            let threads = self.threads.unwrap_or(1).max(1) * self.nproc as usize;
            return ranks::launch(self.nproc, threads, Tie::Worker, rt);
        };
        if spec.world != self.nproc as usize {
            anyhow::bail!(
                "this rank belongs to a group of {} ranks, not --nproc {}",
                spec.world,
                self.nproc
            );
        }
        set_threads(spec.threads)?;
        let device = parse_device(&ranks::rank_device(&device, &[], spec.local_rank)?)?;
        let store = crate::cli::DbArgs {
            db: self.db.clone(),
        }
        .open(rt)?;
        let code = if spec.rank == 0 {
            // SAFETY: getppid has no preconditions and cannot fail.
            let launcher = unsafe { libc::getppid() };
            let opts = self.options(device, u32::try_from(launcher).unwrap_or(0))?;
            let mut join = |go: bool| {
                spec.join(go, backend, device)
                    .map(|_| ())
                    .map_err(|e| format!("{e:#}"))
            };
            let code = crate::exec::worker::run_rank_zero(rt, &store, &opts, &mut join);
            ExitCode::from(code?)
        } else {
            self.follow(&spec, backend, rt, &store, device)?
        };
        rt.block_on(store.close());
        Ok(code)
    }

    /// A rank after the first: joins rank 0's group and, when told to go,
    /// trains its shards of the run rank 0 holds, recording nothing.
    #[cfg(feature = "dist")]
    fn follow(
        &self,
        spec: &crate::cli::ranks::RankSpec,
        backend: crate::config::train::DistBackend,
        rt: &tokio::runtime::Runtime,
        store: &crate::store::Store,
        device: tch::Device,
    ) -> anyhow::Result<ExitCode> {
        use anyhow::Context;
        if !spec.join(false, backend, device)? {
            return Ok(ExitCode::SUCCESS);
        }
        let id = self.run_id.context("ddsas worker --nproc needs --run-id")?;
        let row = rt
            .block_on(store.run(id))?
            .with_context(|| format!("run {id} is not in {}", self.db.display()))?;
        let cfg = crate::exec::worker::train_config(&row)
            .map_err(|e| anyhow::anyhow!("rank {}: train run {id}: {e}", spec.rank))?;
        let opts = crate::nas::run::RunOptions {
            device,
            checkpoint_dir: Some(crate::exec::checkpoint_dir_of(&self.db, &cfg.fingerprint())),
            resume: true,
        };
        crate::cli::ranks::follow_joined(spec, rt, &cfg, &opts)
    }

    /// Without `dist` no worker trains in several processes; the
    /// orchestrator of this build refuses such a sweep before it starts.
    #[cfg(not(feature = "dist"))]
    fn run_ranks(self, _rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
        crate::errln!("error: worker --nproc {} needs data-parallel training: this ddsas was built without the cargo feature `dist`", self.nproc);
        Ok(ExitCode::from(crate::cli::EXIT_NO_ENGINE))
    }
}
