//! The pull worker (`ddsas worker --sweep NAME`): what each task of a
//! `sweep submit --slurm` job array runs. It reads its sweep from the
//! database (no file needed), plans its slots from what Slurm gave the task,
//! and runs the orchestrator's loop ([`orchestrate`]) on the sweep's runs
//! that are not done, leaving once nothing is left for it to claim. Claims
//! are the database's, so any number of tasks on any nodes share a sweep
//! without running a run twice.
//!
//! Before a time limit Slurm sends SIGUSR2 (`--signal=B:USR2@S`): the loop
//! stops like on Ctrl-C (its workers stop at their next step, the runs
//! become `interrupted` and keep their last epoch checkpoint), then this
//! task requeues itself with `scontrol requeue`, and a task that starts
//! later (the requeued one, or another) resumes them. A resumed run redoes
//! its partial epoch; every epoch is seeded, so its records equal an
//! uninterrupted run's.

use std::path::{Path, PathBuf};

use super::handoff::HandOff;
use super::script::{HandOffSbatch, SbatchOptions};
use super::{requeue, task_resources, task_slots, this_task, ThisTask};
use crate::exec::evaluate;
use crate::exec::orchestrator::{orchestrate, Options, Outcome, StopReason};
use crate::exec::sweep_run::SweepRun;
use crate::exec::{ExecError, EXIT_INTERRUPTED, EXIT_NO_SPACE};
use crate::store::{DbLocation, RunKind, RunRow, RunStatus, Store};
use crate::sweep::Sweep;

/// Exit status of a pull worker some of whose runs failed for good (the
/// task shows as FAILED in Slurm, so the user looks).
pub const EXIT_RUNS_FAILED: u8 = 1;

/// How a pull worker runs.
#[derive(Debug, Clone)]
pub struct PullWorker {
    /// The registered sweep to work on.
    pub sweep: String,
    /// The database (handed to the run workers).
    pub db: DbLocation,
    /// Folder of the run workers' logs.
    pub log_dir: PathBuf,
    /// Concurrent runs per GPU of the task.
    pub runs_per_gpu: Option<usize>,
    /// libtorch threads per run.
    pub threads: Option<usize>,
    /// Retries of a run whose worker died, in this task.
    pub max_retries: u32,
    /// Heartbeat age after which a run is taken over.
    pub stale_after_s: f64,
    /// Seconds without a batch after which a run's worker counts as hung.
    pub stall_after_s: Option<f64>,
    /// Seconds between the run workers' heartbeats.
    pub heartbeat_s: f64,
    /// The sbatch options of the jobs that trainings of several ranks are
    /// handed to, besides this task's partition and account.
    pub hand_off: HandOffSbatch,
}

/// Runs the pull worker to its end; returns the process's exit status: 0
/// when nothing is left to claim (or the sweep was cancelled),
/// [`EXIT_INTERRUPTED`] after a stop (and a requeue, on SIGUSR2),
/// [`EXIT_NO_SPACE`] on a full disk, [`EXIT_RUNS_FAILED`] when runs failed.
pub async fn run_pull(store: &Store, opts: &PullWorker) -> Result<u8, ExecError> {
    let env = |name: &str| std::env::var(name).ok();
    let task = this_task(env);
    let sweep = registered_sweep(store, &opts.sweep).await?;
    crate::outln!(
        "pull worker of sweep {} (pid {}, host {}{})",
        sweep.name,
        std::process::id(),
        crate::exec::process::hostname(),
        task.as_ref()
            .map(|t| format!(", Slurm task {} restart {}", t.id, t.restarts))
            .unwrap_or_default()
    );
    if store.sweep_cancelled(&sweep.name).await? {
        crate::outln!(
            "sweep {} is cancelled: nothing to do (`ddsas sweep submit` again resumes it)",
            sweep.name
        );
        return Ok(0);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let resources = task_resources(env, cores)?;
    let (slots, how) = task_slots(
        &resources,
        opts.runs_per_gpu,
        opts.threads,
        &sweep.resources,
    )?;
    let (todo, already_done) = runs_to_do(store, &sweep).await?;
    crate::outln!(
        "{} run(s) not done, {already_done} done; {how}; logs in {}",
        todo.len(),
        opts.log_dir.display()
    );
    let options = Options {
        sweep: sweep.name.clone(),
        db: opts.db.clone(),
        exe: std::env::current_exe().map_err(ExecError::io(
            "finding the ddsas binary to start workers from",
        ))?,
        slots,
        max_retries: opts.max_retries,
        stale_after_s: opts.stale_after_s,
        stall_after_s: opts.stall_after_s,
        heartbeat_s: opts.heartbeat_s,
        log_dir: opts.log_dir.clone(),
        live: false,
        already_done,
        evaluate: sweep.evaluate.clone(),
        leave_when_idle: true,
        failed_since: store
            .slurm_jobs(&sweep.name)
            .await?
            .last()
            .map(|job| job.submitted_at),
        hand_off: Some(hand_off(opts, &resources, &sweep, env)?),
    };
    let outcome = orchestrate(store, todo, &options).await?;
    say_outcome(&sweep.name, &outcome);
    Ok(exit_status(&outcome, task.as_ref()))
}

/// How this task hands a training of several ranks to a Slurm job of its
/// own: a node of the job has as many GPUs as this task (none: the ranks
/// run on CPU cores, `--threads` or the sweep's `cpu_threads_per_run`
/// each, else one), in this task's partition and account, with the time
/// limit, memory and extra options `sweep submit` gave the array; its
/// script and output go to `train-<run>/` beside the pull workers' logs.
fn hand_off(
    opts: &PullWorker,
    task: &super::TaskResources,
    sweep: &Sweep,
    env: impl Fn(&str) -> Option<String>,
) -> Result<HandOff, ExecError> {
    let log_dir = std::path::absolute(&opts.log_dir).map_err(ExecError::io(format!(
        "resolving the log folder {}",
        opts.log_dir.display()
    )))?;
    let cpus = opts
        .threads
        .and_then(|t| u32::try_from(t).ok())
        .or(sweep.resources.cpu_threads_per_run)
        .unwrap_or(1);
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    Ok(HandOff {
        db: opts.db.to_arg(),
        workdir: std::env::current_dir().map_err(ExecError::io("finding the working folder"))?,
        script_dir: log_dir.parent().map_or(log_dir.clone(), Path::to_path_buf),
        exe: std::env::current_exe()
            .map_err(ExecError::io("finding the ddsas binary the ranks run"))?,
        gpus_per_node: u32::try_from(task.gpus.len()).unwrap_or(u32::MAX),
        cpus_per_rank: cpus,
        sbatch: hand_off_sbatch(
            &opts.hand_off,
            set("SLURM_JOB_PARTITION"),
            set("SLURM_JOB_ACCOUNT"),
        ),
    })
}

/// The sbatch options of a handed-off training's job: `given`'s, in
/// `partition` and `account` (this task's).
fn hand_off_sbatch(
    given: &HandOffSbatch,
    partition: Option<String>,
    account: Option<String>,
) -> SbatchOptions {
    SbatchOptions {
        partition,
        account,
        time: given.time.clone(),
        mem: given.mem.clone(),
        signal_before_s: given.signal_before_s.unwrap_or(DEFAULT_SIGNAL_BEFORE_S),
        extra: given.extra.clone(),
        ..SbatchOptions::default()
    }
}

/// Seconds before its time limit at which a handed-off training's job is
/// warned (`train --slurm`'s default).
const DEFAULT_SIGNAL_BEFORE_S: u32 = 120;

/// The sweep `name` as registered, expanded again from its stored text.
async fn registered_sweep(store: &Store, name: &str) -> Result<Sweep, ExecError> {
    let Some(spec) = store.sweep_spec(name).await? else {
        let names: Vec<String> = store.sweeps().await?.into_iter().map(|s| s.name).collect();
        return Err(ExecError::NoSuchSweep {
            name: name.to_owned(),
            known: if names.is_empty() {
                "it has no sweeps yet".to_owned()
            } else {
                format!("its sweeps: {}", names.join(", "))
            },
        });
    };
    Sweep::parse(&spec.text, &spec.file).map_err(|source| ExecError::SweepExpands {
        name: name.to_owned(),
        source: Box::new(source),
    })
}

/// The sweep's runs that are not done, in sweep order with the trainings
/// of searched cells last, and how many are done. Searches done without
/// their `evaluate:` trainings registered get them now.
async fn runs_to_do(store: &Store, sweep: &Sweep) -> Result<(Vec<SweepRun>, usize), ExecError> {
    let members = store.sweep_runs(&sweep.name).await?;
    let mut trainings = Vec::new();
    let mut done = 0;
    for (_, row) in &members {
        if row.status == RunStatus::Done {
            done += 1;
            trainings
                .extend(evaluate::evaluations(store, &sweep.name, &sweep.evaluate, row).await?);
        }
    }
    let mut todo = Vec::new();
    for (position, row) in &members {
        // A training registered before (a member now) keeps its entry's
        // ranks and backend.
        if row.status == RunStatus::Done || trainings.iter().any(|t| t.run_id == row.id) {
            continue;
        }
        todo.push(SweepRun {
            run_id: row.id,
            position: usize::try_from(*position).unwrap_or(usize::MAX),
            label: label(sweep, row),
            epochs: u32::try_from(row.epochs_total).unwrap_or(0),
            // A search, or a training no entry of the file asks for now.
            ranks: 1,
            backend: crate::config::train::DistBackend::Auto,
        });
    }
    todo.extend(trainings);
    // A cell two searches found is one train run: queued once.
    let mut seen = std::collections::HashSet::new();
    todo.retain(|r| seen.insert(r.run_id));
    todo.sort_by_key(|r| r.position);
    Ok((todo, done))
}

/// How the sweep's own display names a run: its varied values, or what it
/// trains.
fn label(sweep: &Sweep, row: &RunRow) -> String {
    if row.kind == RunKind::Train {
        return format!("train run {}", row.id);
    }
    sweep
        .runs
        .iter()
        .find(|p| p.fingerprint == row.fingerprint)
        .map_or_else(|| format!("run {}", row.id), |p| p.label(&sweep.columns))
}

fn say_outcome(sweep: &str, outcome: &Outcome) {
    crate::outln!(
        "pull worker of sweep {sweep}: {} done here, {} by others, {} failed, {} interrupted, {} retr{}; {} left to other workers, {} unclaimed, {} handed to Slurm jobs of their own",
        outcome.done,
        outcome.done_elsewhere,
        outcome.failed.len(),
        outcome.interrupted,
        outcome.retries,
        if outcome.retries == 1 { "y" } else { "ies" },
        outcome.held_elsewhere,
        outcome.unclaimed,
        outcome.handed_off
    );
    for f in &outcome.failed {
        crate::outln!("  failed: run {} ({}): {}", f.run_id, f.label, f.message);
    }
}

/// The exit status after `outcome`; on Slurm's time-limit warning, first
/// requeues `task` when runs were stopped or left unclaimed (the requeue
/// kills this process, so it is the last thing done).
fn exit_status(outcome: &Outcome, task: Option<&ThisTask>) -> u8 {
    match outcome.stopped {
        Some(StopReason::TimeLimit) => {
            let left = outcome.interrupted + outcome.unclaimed;
            match task {
                Some(task) if left > 0 => {
                    crate::outln!(
                        "requeueing Slurm task {} so that {left} run(s) resume from their checkpoints",
                        task.id
                    );
                    if let Err(e) = requeue(task) {
                        crate::errln!(
                            "error: cannot requeue task {}: {e}; another task, or `ddsas sweep submit` again, resumes its runs",
                            task.id
                        );
                    }
                }
                _ => {}
            }
            EXIT_INTERRUPTED
        }
        Some(StopReason::Signal) => EXIT_INTERRUPTED,
        Some(StopReason::NoSpace) => EXIT_NO_SPACE,
        Some(StopReason::Cancelled) => 0,
        None if !outcome.failed.is_empty() => EXIT_RUNS_FAILED,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_tell_slurm_how_the_task_ended() {
        let done = Outcome::default();
        assert_eq!(exit_status(&done, None), 0);
        let cancelled = Outcome {
            stopped: Some(StopReason::Cancelled),
            interrupted: 2,
            ..Outcome::default()
        };
        assert_eq!(exit_status(&cancelled, None), 0);
        let stopped = Outcome {
            stopped: Some(StopReason::Signal),
            ..Outcome::default()
        };
        assert_eq!(exit_status(&stopped, None), EXIT_INTERRUPTED);
        // Outside Slurm there is nothing to requeue.
        let time_limit = Outcome {
            stopped: Some(StopReason::TimeLimit),
            interrupted: 1,
            ..Outcome::default()
        };
        assert_eq!(exit_status(&time_limit, None), EXIT_INTERRUPTED);
        let failed = Outcome {
            failed: vec![crate::exec::orchestrator::Failure {
                run_id: 1,
                label: "L=28".into(),
                message: "diverged".into(),
                log: None,
            }],
            ..Outcome::default()
        };
        assert_eq!(exit_status(&failed, None), EXIT_RUNS_FAILED);
    }

    /// A handed-off training's job runs under the array's limits and
    /// extra options, in the task's partition and account.
    #[test]
    fn a_handed_off_job_takes_the_arrays_sbatch_options() {
        let given = HandOffSbatch {
            time: Some("4:00:00".into()),
            mem: Some("64G".into()),
            signal_before_s: Some(300),
            extra: vec!["--qos=long".into()],
        };
        let sbatch = hand_off_sbatch(&given, Some("gpu".into()), None);
        assert_eq!(sbatch.partition.as_deref(), Some("gpu"));
        assert_eq!(sbatch.account, None);
        assert_eq!(sbatch.time.as_deref(), Some("4:00:00"));
        assert_eq!(sbatch.mem.as_deref(), Some("64G"));
        assert_eq!(sbatch.signal_before_s, 300);
        assert_eq!(sbatch.extra, ["--qos=long"]);
        let plain = hand_off_sbatch(&HandOffSbatch::default(), None, None);
        assert_eq!(plain.signal_before_s, DEFAULT_SIGNAL_BEFORE_S);
        assert_eq!(plain.time, None);
    }

    #[tokio::test]
    async fn a_pull_worker_sees_the_sweep_as_registered() {
        let store = Store::open_in_memory().await.unwrap();
        let text = "name: tiny\nbase: {dataset: digits, epochs: 1, layers: 1, init_channels: 2}\ngrid: {seed: [0, 1]}\n";
        let sweep = Sweep::parse(text, "tiny.yaml").unwrap();
        let mut links = Vec::new();
        for run in &sweep.runs {
            let row = store.ensure_run(&run.cfg).await.unwrap();
            links.push((row.id, run.position as i64));
        }
        store
            .register_sweep("tiny", None, "tiny.yaml", text, &links)
            .await
            .unwrap();
        let again = registered_sweep(&store, "tiny").await.unwrap();
        assert_eq!(again.runs.len(), 2);
        let (todo, done) = runs_to_do(&store, &again).await.unwrap();
        assert_eq!(done, 0);
        let labels: Vec<&str> = todo.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["seed=0", "seed=1"]);
        let missing = registered_sweep(&store, "other").await.unwrap_err();
        assert!(
            missing.to_string().contains("its sweeps: tiny"),
            "{missing}"
        );
    }
}
