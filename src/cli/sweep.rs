//! `ddsas sweep`: plan, run, watch and cancel sweeps (docs/design.md §5, §6).
//!
//! `plan` and `run` read the sweep file through `sweep::Sweep`, so every
//! mistake in it is reported before anything runs; `run` registers the
//! sweep and its runs, then hands the runs that are not done to
//! `exec::orchestrator`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::cli::register::{evaluations_text, fetch_datasets, register, Registered};
use crate::cli::runs::{config_map, config_text, differing_keys};
use crate::cli::{DbArgs, FaultArgs, EXIT_INTERRUPTED};
use crate::exec::orchestrator::{orchestrate, Options, Outcome, StopReason};
use crate::exec::slots::{self, GpuChoice, RunsPerGpu, SlotRequest};
use crate::store::slurm::SlurmJob;
use crate::store::{KnownRun, RunStatus, Store, SweepHeader, SweepRunProgress};
use crate::sweep::Sweep;

/// Sweep commands.
#[derive(Debug, clap::Subcommand)]
pub enum SweepCmd {
    /// Expand a sweep file and show its runs with their status in the database.
    #[command(
        after_help = "Examples:\n  ddsas sweep plan sweeps/fig7_lm_grid.yaml\n  ddsas sweep plan sweeps/demo.yaml --db results.db\n(--help shows the sweep file format)",
        after_long_help = crate::sweep::FORMAT_HELP
    )]
    Plan(PlanArgs),
    /// Run every run of a sweep that is not done, in worker processes.
    #[command(
        after_help = "Examples:\n  ddsas sweep run sweeps/demo.yaml\n  ddsas sweep run sweeps/fig7_lm_grid.yaml --gpus 0,1 --runs-per-gpu auto\n  ddsas sweep run sweeps/demo.yaml --cpu-workers 2 --threads 1\nCtrl-C stops cleanly (runs resume on the next `sweep run`); a second Ctrl-C kills the workers.\n(--help shows the sweep file format)",
        after_long_help = crate::sweep::FORMAT_HELP
    )]
    Run(RunArgs),
    /// Register a sweep's runs and submit a Slurm job array of pull workers that run them.
    #[command(
        after_help = "Examples:\n  scripts/postgres.sh start     # a PostgreSQL every task can reach (here: this machine)\n  ddsas sweep submit sweeps/demo.yaml --slurm --db postgres://postgres@127.0.0.1:55432/ddsas --dry-run\n  ddsas sweep submit sweeps/fig7_lm_grid.yaml --slurm --db postgres://me@dbhost/ddsas \\\n      --partition gpu --gpus-per-task 1 --runs-per-gpu 2 --time 12:00:00 --workers 16 --array-parallelism 8\nEach task claims runs until none is left; before its time limit it stops them (they keep their\ncheckpoints) and requeues itself. Watch with `ddsas sweep status`, stop with `ddsas sweep cancel`.\n(--help shows the sweep file format)",
        after_long_help = crate::sweep::FORMAT_HELP
    )]
    Submit(crate::cli::submit::SubmitArgs),
    /// Counts and per-run status of a registered sweep (with its Slurm jobs, from one squeue call).
    #[command(after_help = "Example:\n  ddsas sweep status demo --db results.db")]
    Status(NameArgs),
    /// Ask the orchestrators running a sweep to stop, and scancel its Slurm jobs (runs resume on the next `sweep run` or `sweep submit`).
    #[command(
        after_help = "Example:\n  ddsas sweep cancel fig7_lm_grid   # from any terminal; `sweep run` again resumes"
    )]
    Cancel(NameArgs),
}

/// Arguments of `sweep plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The sweep file (YAML).
    file: PathBuf,
    #[command(flatten)]
    db: DbArgs,
}

/// Arguments of `sweep run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The sweep file (YAML).
    file: PathBuf,
    /// GPUs to use: `all` (default: every GPU nvidia-smi lists, else the CPU), `none`, or a list such as `0,1`.
    #[arg(long, default_value = "all", value_name = "all|none|LIST")]
    gpus: GpuChoice,
    /// Concurrent runs per GPU: a number, or `auto` (free memory / resources.gpu_mem_gb_per_run).
    #[arg(long, value_name = "N|auto")]
    runs_per_gpu: Option<RunsPerGpu>,
    /// Concurrent CPU workers (default when no GPU is used: cores / resources.cpu_threads_per_run, else 1; with GPUs: 0).
    #[arg(long)]
    cpu_workers: Option<usize>,
    /// libtorch threads per CPU worker (default: resources.cpu_threads_per_run, else cores / workers).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    faults: FaultArgs,
    /// Seconds between the workers' heartbeats.
    #[arg(long, default_value_t = 5.0, hide = true)]
    heartbeat: f64,
    /// Plain log lines even on a terminal.
    #[arg(long)]
    plain: bool,
    /// Let this file redefine a sweep of the same name that holds runs the
    /// file no longer plans (they stay in the database, in no sweep).
    #[arg(long)]
    replace: bool,
    #[command(flatten)]
    db: DbArgs,
}

/// A sweep name and the database.
#[derive(Debug, clap::Args)]
pub struct NameArgs {
    /// The sweep's name (as in its file's `name:`).
    name: String,
    #[command(flatten)]
    db: DbArgs,
}

impl SweepCmd {
    /// Runs the command.
    pub fn run(self, rt: &Runtime) -> anyhow::Result<ExitCode> {
        match self {
            SweepCmd::Plan(args) => plan(rt, args),
            SweepCmd::Run(args) => run(rt, args),
            SweepCmd::Submit(args) => crate::cli::submit::submit(rt, args),
            SweepCmd::Status(args) => status(rt, args),
            SweepCmd::Cancel(args) => cancel(rt, args),
        }
    }
}

fn plan(rt: &Runtime, args: PlanArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let sweep = Sweep::load(&args.file)?;
    let planned = started.elapsed();
    // Planning never creates a database.
    let known = if args.db.db.exists() {
        let mut db = args.db.open_read_only(rt)?;
        let fingerprints: Vec<&str> = sweep.runs.iter().map(|r| r.fingerprint.as_str()).collect();
        rt.block_on(db.known_runs(&fingerprints))?
    } else {
        Default::default()
    };
    let (table, counts) = plan_table(&sweep, &known);
    crate::outln!(
        "sweep {}{}",
        sweep.name,
        sweep
            .description
            .as_deref()
            .map(|d| format!(": {}", d.trim()))
            .unwrap_or_default()
    );
    crate::outln!("{table}");
    let n = |k: &str| counts.get(k).copied().unwrap_or(0);
    let to_run = sweep.runs.len() - n("done");
    crate::outln!(
        "{} runs: {} done, {} running, {} failed, {} interrupted, {} to run ({} queued, {} new); {} excluded, {} duplicate(s) merged; planned in {:.1} ms",
        sweep.runs.len(),
        n("done"),
        n("running"),
        n("failed"),
        n("interrupted"),
        to_run,
        n("queued"),
        n("new"),
        sweep.excluded,
        sweep.duplicates,
        planned.as_secs_f64() * 1e3
    );
    let evaluations = sweep.evaluate.len();
    for (i, plan) in sweep.evaluate.iter().enumerate() {
        crate::outln!(
            "evaluate {} of {evaluations}: each finished DARTS-space search's cell trained {}",
            i + 1,
            plan.describe()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `sweep plan`'s table, a row per planned run with what the database
/// knows of it, and the runs counted by status (`new`: not registered).
fn plan_table(
    sweep: &Sweep,
    known: &HashMap<String, KnownRun>,
) -> (Table, BTreeMap<&'static str, usize>) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec!["#".to_owned()];
    header.extend(sweep.columns.iter().cloned());
    header.extend([
        "fingerprint".to_owned(),
        "run".to_owned(),
        "status".to_owned(),
    ]);
    table.set_header(header);
    let mut counts = BTreeMap::<&str, usize>::new();
    for run in &sweep.runs {
        let mut row = vec![run.position.to_string()];
        row.extend(
            sweep
                .columns
                .iter()
                .map(|c| run.value(c).unwrap_or("·").to_owned()),
        );
        row.push(run.fingerprint[..10.min(run.fingerprint.len())].to_owned());
        let (key, id, status) = planned_status(known.get(&run.fingerprint));
        *counts.entry(key).or_default() += 1;
        row.push(id);
        row.push(status);
        table.add_row(row);
    }
    (table, counts)
}

/// A planned run's count key, run id and status text: its progress where
/// it is under way or stopped, `new` where the database lacks it.
fn planned_status(known: Option<&KnownRun>) -> (&'static str, String, String) {
    let Some(known) = known else {
        return ("new", "-".to_owned(), "new".to_owned());
    };
    let status = known.status.as_str();
    let text = match known.status {
        RunStatus::Running | RunStatus::Interrupted | RunStatus::Failed => {
            format!("{status} {}/{}", known.epochs_done, known.epochs_total)
        }
        RunStatus::Queued | RunStatus::Done => status.to_owned(),
    };
    (status, known.id.to_string(), text)
}

fn run(rt: &Runtime, args: RunArgs) -> anyhow::Result<ExitCode> {
    // Everything that can be wrong with the file is found here, before the
    // database is touched.
    let sweep = Sweep::load(&args.file)?;
    let request = SlotRequest {
        gpus: args.gpus.clone(),
        runs_per_gpu: args.runs_per_gpu,
        cpu_workers: args.cpu_workers,
        threads: args.threads,
    };
    let (slots, how) = slots::plan(&request, &sweep.resources)?;
    slots::check_ranks(&slots, &how, &sweep.evaluate)?;
    let db = args
        .db
        .db
        .absolute()
        .with_context(|| format!("resolving {}", args.db.db))?;
    let log_dir = db.home().join("logs");
    let exe = std::env::current_exe().context("finding the ddsas binary to start workers from")?;
    let store = args.db.open(rt)?;
    rt.block_on(async {
        let Registered {
            todo,
            done_before,
            evaluations,
        } = register(&store, &sweep, args.replace, args.faults.stale_after).await?;
        crate::outln!(
            "sweep {}: {} runs, {done_before} already done, {} to run{}; {how}; logs in {}",
            sweep.name,
            sweep.runs.len(),
            todo.len(),
            evaluations_text(evaluations),
            log_dir.display()
        );
        if todo.is_empty() {
            crate::outln!(
                "nothing to do: every run of this sweep is done (a done config is never run again)"
            );
            return Ok(ExitCode::SUCCESS);
        }
        fetch_datasets(&sweep).await?;
        let opts = Options {
            sweep: sweep.name.clone(),
            db: db.clone(),
            exe,
            slots,
            max_retries: args.faults.max_retries,
            stale_after_s: args.faults.stale_after,
            stall_after_s: args.faults.stall_after,
            heartbeat_s: args.heartbeat,
            log_dir,
            live: !args.plain,
            already_done: done_before,
            evaluate: sweep.evaluate.clone(),
            leave_when_idle: false,
            failed_since: None,
            hand_off: None,
        };
        let started = Instant::now();
        let outcome = orchestrate(&store, todo, &opts).await?;
        // Planned runs plus the trainings `evaluate:` added.
        let total = store
            .sweep_runs(&sweep.name)
            .await?
            .len()
            .max(sweep.runs.len());
        store.close().await;
        print_outcome(
            &sweep.name,
            total,
            done_before,
            &outcome,
            started.elapsed().as_secs_f64(),
        );
        end_status(&sweep, &outcome)
    })
}

/// The closing lines of `sweep run`: what got done where, and each failure.
fn print_outcome(name: &str, total: usize, done_before: usize, outcome: &Outcome, wall_s: f64) {
    let total_done = done_before + outcome.done + outcome.done_elsewhere;
    crate::outln!(
        "sweep {name}: {total_done}/{total} done ({} in this session, {} by another orchestrator, {done_before} before), {} failed, {} interrupted, {} retr{}{} in {wall_s:.1} s",
        outcome.done,
        outcome.done_elsewhere,
        outcome.failed.len(),
        outcome.interrupted,
        outcome.retries,
        if outcome.retries == 1 { "y" } else { "ies" },
        if outcome.hung > 0 {
            format!(" ({} after a hung worker was killed)", outcome.hung)
        } else {
            String::new()
        },
    );
    for f in &outcome.failed {
        crate::outln!(
            "  failed: run {} ({}): {}{}",
            f.run_id,
            f.label,
            f.message,
            f.log
                .as_ref()
                .map(|l| format!(" [log {}]", l.display()))
                .unwrap_or_default()
        );
    }
}

/// The exit status of `sweep run`, and why it stopped when it did.
fn end_status(sweep: &Sweep, outcome: &Outcome) -> anyhow::Result<ExitCode> {
    match &outcome.stopped {
        Some(StopReason::Signal | StopReason::TimeLimit) => {
            crate::errln!("stopped: the interrupted runs kept their checkpoints; run the same command again to resume");
            Ok(ExitCode::from(EXIT_INTERRUPTED))
        }
        Some(StopReason::NoSpace) => {
            crate::errln!(
                "stopped: {}\nfree space on that disk, then run the same command again: the sweep continues where it stopped",
                outcome.no_space.as_deref().unwrap_or("a disk is full")
            );
            Ok(ExitCode::from(crate::exec::EXIT_NO_SPACE))
        }
        Some(StopReason::Cancelled) => {
            crate::errln!(
                "sweep {} was cancelled; `ddsas sweep run` again resumes it",
                sweep.name
            );
            Ok(ExitCode::from(EXIT_INTERRUPTED))
        }
        None if !outcome.failed.is_empty() => bail!(
            "{} of {} runs failed (see above and `ddsas runs list --sweep {} --status failed`)",
            outcome.failed.len(),
            sweep.runs.len(),
            sweep.name
        ),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn status(rt: &Runtime, args: NameArgs) -> anyhow::Result<ExitCode> {
    let mut db = args.db.open_read_only(rt)?;
    let jobs = rt.block_on(async {
        let Some(sweep) = db.sweep_header(&args.name).await? else {
            let names = db.sweep_names().await?;
            bail!(
                "no sweep named `{}` in {} ({})",
                args.name,
                args.db.db.display(),
                if names.is_empty() {
                    "it has no sweeps yet".to_owned()
                } else {
                    format!("its sweeps: {}", names.join(", "))
                }
            );
        };
        let runs = db.sweep_progress(&args.name).await?;
        print_status(&sweep, &runs);
        anyhow::Ok(db.slurm_job_ids(&args.name).await?)
    })?;
    print_slurm_jobs(&jobs);
    Ok(ExitCode::SUCCESS)
}

/// The sweep's Slurm jobs as one squeue call sees them, one row per array
/// task; if squeue cannot answer, one line saying so (the database's view
/// is printed already).
fn print_slurm_jobs(jobs: &[String]) {
    if jobs.is_empty() {
        return;
    }
    let tasks = match crate::exec::slurm::queue(jobs) {
        Ok(tasks) => tasks,
        Err(e) => {
            crate::outln!(
                "Slurm jobs {}: squeue cannot tell their state ({e}); the table above is the database's view",
                jobs.join(", ")
            );
            return;
        }
    };
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["slurm job", "task", "state", "time", "node or reason"]);
    for t in &tasks {
        table.add_row([
            t.job.clone(),
            t.task.clone().unwrap_or_else(|| "-".into()),
            t.state.clone(),
            t.elapsed.clone(),
            t.where_or_why.clone(),
        ]);
    }
    let forgotten: Vec<&str> = jobs
        .iter()
        .filter(|j| !tasks.iter().any(|t| &t.job == *j))
        .map(String::as_str)
        .collect();
    if !tasks.is_empty() {
        crate::outln!("{table}");
        crate::outln!(
            "Slurm tasks: {}",
            crate::exec::slurm::squeue::state_counts(&tasks)
        );
    }
    if !forgotten.is_empty() {
        crate::outln!(
            "Slurm job(s) {}: no longer listed by squeue (ended before its MinJobAge)",
            forgotten.join(", ")
        );
    }
}

fn print_status(sweep: &SweepHeader, runs: &[SweepRunProgress]) {
    crate::outln!(
        "sweep {}{}{}",
        sweep.name,
        sweep
            .description
            .as_deref()
            .map(|d| format!(": {}", d.trim()))
            .unwrap_or_default(),
        if sweep.cancelled { "  [cancelled]" } else { "" }
    );
    crate::outln!(
        "file {}, registered {} UTC",
        sweep.file.as_deref().unwrap_or_default(),
        sweep.created.as_deref().unwrap_or_default()
    );
    crate::outln!("{}", progress_table(runs));
    let n = |status: RunStatus| runs.iter().filter(|r| r.status == status).count();
    crate::outln!(
        "{} runs: {} done, {} running, {} queued, {} interrupted, {} failed",
        runs.len(),
        n(RunStatus::Done),
        n(RunStatus::Running),
        n(RunStatus::Queued),
        n(RunStatus::Interrupted),
        n(RunStatus::Failed)
    );
    for r in runs {
        if let (RunStatus::Failed, Some(e)) = (r.status, &r.error) {
            crate::outln!("  run {} failed: {e}", r.id);
        }
    }
}

/// `sweep status`'s table: a row per run, with the config keys its runs
/// differ in.
fn progress_table(runs: &[SweepRunProgress]) -> Table {
    let configs: Vec<serde_json::Map<String, Value>> =
        runs.iter().map(|r| config_map(&r.config_json)).collect();
    let keys = differing_keys(&configs, true);
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let mut header: Vec<String> = vec!["#".into(), "run".into()];
    header.extend(keys.iter().cloned());
    header.extend(
        [
            "status",
            "epoch",
            "valid acc",
            "best",
            "attempts",
            "device",
            "wall s",
        ]
        .map(String::from),
    );
    table.set_header(header);
    let pct = |a: Option<f64>| a.map_or("-".into(), |a| format!("{:.2}%", 100.0 * a));
    for (r, config) in runs.iter().zip(&configs) {
        let position = r.position.map(|p| p.to_string()).unwrap_or_default();
        let mut row = vec![position, r.id.to_string()];
        row.extend(keys.iter().map(|k| config_text(config, k)));
        row.extend([
            r.status.to_string(),
            format!("{}/{}", r.epochs_done, r.epochs_total),
            pct(r.final_valid_acc.or(r.last_acc)),
            pct(r.best_valid_acc),
            r.attempts.to_string(),
            r.device.clone().unwrap_or_default(),
            r.wall_s.map_or("-".into(), |w| format!("{w:.1}")),
        ]);
        table.add_row(row);
    }
    table
}

fn cancel(rt: &Runtime, args: NameArgs) -> anyhow::Result<ExitCode> {
    if !args.db.db.exists() {
        bail!("database {} does not exist", args.db.db.display());
    }
    let store = args.db.open(rt)?;
    rt.block_on(async {
        if !store.cancel_sweep(&args.name).await? {
            let names: Vec<String> = store.sweeps().await?.into_iter().map(|s| s.name).collect();
            bail!(
                "no sweep named `{}` in {} ({})",
                args.name,
                args.db.db.display(),
                if names.is_empty() { "it has no sweeps yet".to_owned() } else { format!("its sweeps: {}", names.join(", ")) }
            );
        }
        crate::outln!(
            "sweep {} cancelled: its orchestrators launch nothing more and stop their workers within a few seconds; the runs keep their checkpoints and `ddsas sweep run` resumes them",
            args.name
        );
        // The array's jobs, then those its pull workers submitted for the
        // trainings of several ranks.
        let trainings = store.sweep_run_slurm_jobs(&args.name).await?;
        let jobs: Vec<String> = store
            .slurm_jobs(&args.name)
            .await?
            .into_iter()
            .chain(trainings.iter().cloned())
            .map(|j| j.job_id)
            .collect();
        if cancel_slurm_jobs(&args.name, &jobs) {
            release_held(&store, &trainings).await?;
        }
        store.close().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Puts the runs still held for the cancelled training jobs `trainings`
/// (jobs that had not started, or were waiting for their requeue: no rank
/// of theirs will) back to `interrupted`, so that `sweep submit` again
/// hands them on at once.
async fn release_held(store: &Store, trainings: &[SlurmJob]) -> anyhow::Result<()> {
    for job in trainings {
        let Some(run) = job.run_id else {
            continue;
        };
        let owner = crate::exec::process::Owner::SlurmJob {
            job: job.job_id.clone(),
        }
        .to_string();
        let message = crate::exec::slurm::JOB_NEVER_STARTED;
        if store.release_run(run, &owner, Some(message)).await? {
            crate::outln!(
                "run {run}: its job {} had not started; the run is `interrupted` now",
                job.job_id
            );
        }
    }
    Ok(())
}

/// scancels the sweep's jobs; whether scancel did. Not fatal when it
/// fails: the sweep is marked cancelled, so its tasks stop by themselves
/// within seconds, and tasks that start later leave at once.
fn cancel_slurm_jobs(sweep: &str, jobs: &[String]) -> bool {
    if jobs.is_empty() {
        return false;
    }
    let cancelled = crate::exec::slurm::cancel(jobs);
    let done = cancelled.is_ok();
    match cancelled {
        Ok(()) => crate::outln!(
            "scancel {}: the tasks stop their runs at the next step (interrupted, checkpoints kept), pending tasks never start; done runs stay done; `ddsas sweep submit` of its file resumes sweep {sweep}",
            jobs.join(" ")
        ),
        Err(e) => crate::errln!(
            "warning: could not scancel the Slurm job(s) of sweep {sweep} ({e}); their tasks see the cancellation in the database and stop within seconds anyway, or run `scancel {}` where Slurm is",
            jobs.join(" ")
        ),
    }
    done
}
