//! `ddsas train --slurm`: the submission (register the run, write the
//! batch script of [`crate::exec::slurm::train_script`], `sbatch` it and
//! return), and what a rank started by that script's srun does besides
//! training ([`SrunTask`]): SIGUSR2 stops the run at the next step, rank 0
//! then requeues the job, and the requeued job resumes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::runtime::Runtime;

use super::{SlurmArgs, TrainCmd};
use crate::config::train::TrainConfig;
use crate::exec::slurm::script::{shell_quote, SbatchOptions};
use crate::exec::slurm::train_script::{TrainScript, MASTER_VARIABLE, TRAIN_OUTPUT_PATTERN};
use crate::exec::slurm::{self, requeue, this_task, ThisTask};
use crate::store::{RunStatus, Store};

impl SlurmArgs {
    /// Whether `--slurm` was given.
    pub(super) fn wanted(&self) -> bool {
        self.slurm
    }

    /// Ranks per node and GPUs per node: a GPU node runs one rank per GPU.
    fn layout(&self) -> anyhow::Result<(u32, Option<u32>)> {
        match (self.gpus_per_node, self.ntasks_per_node) {
            (Some(gpus), _) => Ok((gpus, Some(gpus))),
            (None, Some(tasks)) => Ok((tasks, None)),
            (None, None) => bail!("--slurm needs --gpus-per-node G (one rank per GPU of each node) or, on a cluster without GPUs, --ntasks-per-node N"),
        }
    }

    /// Refuses option values sbatch or the script could not take, before
    /// anything is registered.
    fn check(&self) -> anyhow::Result<()> {
        for arg in &self.sbatch_args {
            if arg.contains('\n') || arg.trim().is_empty() {
                bail!("--sbatch-arg {arg:?}: one sbatch option per --sbatch-arg, on one line (e.g. --sbatch-arg=--qos=long)");
            }
        }
        Ok(())
    }

    fn sbatch_options(&self) -> SbatchOptions {
        SbatchOptions {
            partition: self.partition.clone(),
            account: self.account.clone(),
            time: self.time.clone(),
            gpus_per_task: None,
            cpus_per_task: self.cpus_per_task,
            mem: self.mem.clone(),
            array_parallelism: None,
            signal_before_s: self.signal_before,
            extra: self.sbatch_args.clone(),
        }
    }
}

/// Submits the training of `merged` as one Slurm job and returns: the run
/// is registered here (its id is what the user follows), the data fetched
/// here (compute nodes may have no network), and the ranks find the run by
/// its config.
pub(super) fn submit(
    cmd: &TrainCmd,
    rt: &Runtime,
    merged: TrainConfig,
) -> anyhow::Result<ExitCode> {
    let db = cmd
        .job
        .db
        .db
        .absolute()
        .with_context(|| format!("resolving {}", cmd.job.db.db))?
        .to_arg();
    slurm::refuse_sqlite(&db)?;
    let args = &cmd.slurm;
    let (tasks_per_node, gpus_per_node) = args.layout()?;
    args.check()?;
    let world = args.nodes * tasks_per_node;
    if world > 1 && !cfg!(feature = "dist") {
        crate::errln!("error: --slurm with {world} ranks needs data-parallel training: this ddsas was built without the cargo feature `dist`: build with `cargo build --release --features dist` (needs Gloo's headers: apt-get install libgloo-dev, as scripts/test.sh does as root)");
        return Ok(ExitCode::from(crate::cli::EXIT_NO_ENGINE));
    }
    let cfg = merged.resolve()?;
    crate::cli::data::fetch_if_missing(
        cfg.config().dataset,
        cfg.data_dir(),
        cfg.download(),
        cmd.job.quiet,
    )?;
    let store = cmd.job.db.open(rt)?;
    let result = rt.block_on(register_and_submit(cmd, &store, &cfg, |run_id| {
        script(cmd, run_id, &db, (tasks_per_node, gpus_per_node))
    }));
    rt.block_on(store.close());
    result.map(|()| ExitCode::SUCCESS)
}

/// Registers the run and, unless it is done, writes and submits its
/// script (made by `script` for the run's id).
async fn register_and_submit(
    cmd: &TrainCmd,
    store: &Store,
    cfg: &crate::config::train::ResolvedTrain,
    script: impl FnOnce(i64) -> anyhow::Result<TrainScript>,
) -> anyhow::Result<()> {
    let run = store.ensure_train_run(cfg).await?;
    if let Some(search) = cmd.from_run {
        store.link_evaluation(search, run.id).await?;
    }
    if run.status == RunStatus::Done {
        crate::cli::say_already_done(
            "train run",
            &run,
            &format!(
                "test acc {:.2}%; nothing submitted",
                100.0 * run.final_test_acc.unwrap_or(f64::NAN)
            ),
        );
        return Ok(());
    }
    let script = script(run.id)?;
    let path = write_script(&script)?;
    crate::outln!("wrote {}", path.display());
    let job = slurm::submit(&path).with_context(|| {
        format!(
            "submitting {} (train run {} is registered; fix what sbatch says, then run the same command again)",
            path.display(),
            run.id
        )
    })?;
    record_job(store, &script, &job, &path).await;
    say_submitted(&script, &job, &cmd.job.db.db.to_string());
    Ok(())
}

/// Records the submitted job with its run, for `runs show` and `runs
/// cancel`. The job is submitted whatever happens here, so a failure is a
/// warning saying how to reach the job without the record.
async fn record_job(store: &Store, script: &TrainScript, job: &str, path: &Path) {
    let ranks = i64::from(script.world());
    let recorded = store
        .record_run_slurm_job(job, script.run_id, ranks, &path.display().to_string())
        .await;
    if let Err(e) = recorded {
        crate::errln!(
            "warning: Slurm job {job} is submitted but not recorded with train run {} ({e}); `runs show` will not name it: follow it with `squeue --jobs={job}`, stop it with `scancel {job}`",
            script.run_id
        );
    }
}

/// The batch script of run `run_id` on ranks laid out as `layout` (ranks
/// and GPUs per node).
fn script(
    cmd: &TrainCmd,
    run_id: i64,
    db: &str,
    layout: (u32, Option<u32>),
) -> anyhow::Result<TrainScript> {
    let workdir = std::env::current_dir().context("finding the working folder")?;
    let script_dir = match &cmd.slurm.script_dir {
        Some(dir) => std::path::absolute(dir)
            .with_context(|| format!("resolving --script-dir {}", dir.display()))?,
        None => workdir.join("slurm").join(format!("train-{run_id}")),
    };
    let exe = std::env::current_exe().context("finding the ddsas binary the ranks run")?;
    let (tasks_per_node, gpus_per_node) = layout;
    Ok(TrainScript {
        run_id,
        db: db.to_owned(),
        workdir,
        script_name: next_script_name(&script_dir),
        script_dir,
        data_dir: crate::data::home::data_home().map(|home| home.dir),
        nodes: cmd.slurm.nodes,
        tasks_per_node,
        gpus_per_node,
        sbatch: cmd.slurm.sbatch_options(),
        rank_command: rank_command(cmd, &exe, gpus_per_node.is_some()),
    })
}

/// A rank's command line: this `ddsas train` without its Slurm options,
/// `--db` (exported instead), `--threads` (the task's CPUs) and `--nproc`;
/// on GPU nodes with `--device cuda` (each rank takes its local rank's GPU).
fn rank_command(cmd: &TrainCmd, exe: &Path, gpus: bool) -> Vec<String> {
    let mut words = vec![exe.display().to_string(), "train".to_owned()];
    let mut push = |flag: &str, value: String| {
        words.push(flag.to_owned());
        words.push(value);
    };
    if let Some(genotype) = &cmd.genotype {
        push("--genotype", genotype.clone());
    }
    if let Some(id) = cmd.from_run {
        push("--from-run", id.to_string());
    }
    let job = &cmd.job;
    if let Some(config) = &job.config {
        push("--config", config.display().to_string());
    }
    for set in &job.overrides {
        push("--set", set.clone());
    }
    let device = if gpus { "cuda" } else { job.device.as_str() };
    push("--device", device.to_owned());
    if let Some(dir) = &job.checkpoint_dir {
        push("--checkpoint-dir", dir.display().to_string());
    }
    if job.resume {
        words.push("--resume".to_owned());
    }
    if job.quiet {
        words.push("--quiet".to_owned());
    }
    words
}

/// `submit-N.sh` with the first N not taken in `dir`: every submission
/// keeps its own script.
fn next_script_name(dir: &Path) -> String {
    (1..)
        .map(|n| format!("submit-{n}.sh"))
        .find(|name| !dir.join(name).exists())
        .expect("an unused number")
}

/// Writes the script and its folder.
fn write_script(script: &TrainScript) -> anyhow::Result<PathBuf> {
    let path = script.path();
    crate::cli::submit::write_batch_script(&script.script_dir, &path, &script.text())?;
    Ok(path)
}

fn say_submitted(script: &TrainScript, job: &str, db: &str) {
    let db_arg = format!("--db {}", shell_quote(db));
    crate::outln!(
        "submitted job {job}: train run {} on {} rank(s) ({} node(s) x {}); its output goes to {}\n  watch:  ddsas runs show {} {db_arg}   squeue --jobs={job}\n  stop:   ddsas runs cancel {} {db_arg}   or scancel {job}   (the run is left `interrupted`; the same command plus --resume submits the rest)",
        script.run_id,
        script.world(),
        script.nodes,
        script.tasks_per_node,
        script
            .script_dir
            .join(TRAIN_OUTPUT_PATTERN.replace("%j", job))
            .display(),
        script.run_id,
        script.run_id,
    );
}

/// A `ddsas train` that srun started for a `train --slurm` job (the batch
/// script exported [`MASTER_VARIABLE`]): its Slurm job, and whether Slurm
/// has warned it of the time limit.
pub(super) struct SrunTask {
    task: ThisTask,
    warned: Arc<AtomicBool>,
}

impl SrunTask {
    /// The task this process is, with SIGUSR2 watched from now on; `None`
    /// outside a `train --slurm` job.
    pub(super) fn start(rt: &Runtime) -> anyhow::Result<Option<SrunTask>> {
        if std::env::var_os(MASTER_VARIABLE).is_none() {
            return Ok(None);
        }
        let Some(task) = this_task(|name| std::env::var(name).ok()) else {
            return Ok(None);
        };
        // srun passes the warning to every task: the first says so.
        let first = std::env::var("SLURM_PROCID").map_or(true, |p| p.trim() == "0");
        let warned = watch_time_limit(rt, first)?;
        Ok(Some(SrunTask { task, warned }))
    }

    /// Whether Slurm requeued the job: the run then resumes (`--resume`)
    /// from its last checkpoint.
    pub(super) fn restarted(&self) -> bool {
        self.task.restarts > 0
    }

    /// After rank 0's run ended: when SIGUSR2 stopped it, requeues the job
    /// so that it resumes from the checkpoint of the step it stopped at.
    /// The requeue kills the job at once, so this is the last thing rank 0
    /// does.
    pub(super) fn requeue_if_warned(&self, rt: &Runtime, store: &Store, run_id: i64) {
        if !self.warned.load(Ordering::SeqCst) {
            return;
        }
        let Some(row) = rt.block_on(store.run(run_id)).ok().flatten() else {
            return;
        };
        if row.status == RunStatus::Done {
            return;
        }
        let held = self.hold_for_requeue(rt, store, &row);
        crate::outln!(
            "requeueing Slurm job {} so that train run {run_id} resumes from its checkpoint",
            self.task.id
        );
        if let Err(e) = requeue(&self.task) {
            if held {
                let _ = rt.block_on(store.release_run(run_id, &self.owner(), None));
            }
            crate::errln!(
                "error: cannot requeue job {}: {e}; the same `ddsas train --slurm` plus --resume submits the rest",
                self.task.id
            );
        }
    }

    /// This job as the owner of a run held for it (`slurm:<job>`).
    fn owner(&self) -> String {
        crate::exec::process::Owner::SlurmJob {
            job: self.task.id.clone(),
        }
        .to_string()
    }

    /// Holds the interrupted run for this job across its requeue, so that
    /// no pull worker of a sweep takes it (and submits another job) while
    /// the job waits in the queue; the requeued job's rank 0 takes it back.
    /// Whether it is held.
    fn hold_for_requeue(&self, rt: &Runtime, store: &Store, row: &crate::store::RunRow) -> bool {
        let claim = crate::store::Claim {
            owner: self.owner(),
            device: "slurm".into(),
            pid: 0,
            stale_after_s: None,
            ranks: crate::store::Ranks {
                world_size: row
                    .world_size
                    .and_then(|w| u32::try_from(w).ok())
                    .unwrap_or(1),
                backend: None,
            },
        };
        rt.block_on(store.claim_run(row.id, &claim))
            .unwrap_or(false)
    }
}

/// Watches SIGUSR2, Slurm's warning of the time limit that srun passes on
/// to every rank: the first one stops the run as SIGTERM does (this
/// process sends itself one, so that the stop is the one every signal
/// takes: at the next step, agreed by all ranks, checkpointed there), and
/// is remembered so that rank 0 requeues the job. Installed before
/// anything else, so that an early warning does not kill the rank
/// (SIGUSR2's default). Only the task that is rank 0 (`first`) prints the
/// line: srun gives every task the signal.
fn watch_time_limit(rt: &Runtime, first: bool) -> anyhow::Result<Arc<AtomicBool>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut usr2 = {
        let _inside = rt.enter();
        signal(SignalKind::user_defined2()).context("installing the SIGUSR2 handler")?
    };
    let warned = Arc::new(AtomicBool::new(false));
    let seen = warned.clone();
    rt.spawn(async move {
        loop {
            usr2.recv().await;
            if !seen.swap(true, Ordering::SeqCst) {
                if first {
                    crate::errln!("SIGUSR2 (Slurm: time limit or preemption near): every rank stops at the next step; the job requeues itself");
                }
                // SAFETY: kill of this process's own id with a signal whose
                // handler is installed once the run has started.
                unsafe {
                    libc::kill(libc::getpid(), libc::SIGTERM);
                }
            }
        }
    });
    Ok(warned)
}
