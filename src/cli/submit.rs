//! `ddsas sweep submit FILE --slurm`: registers a sweep's runs as `sweep
//! run` does, writes a batch script the user can read, submits it as a job
//! array of pull workers (`exec::slurm`), records the job and returns: no
//! process has to stay alive on the login node.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use tokio::runtime::Runtime;

use crate::cli::register::{evaluations_text, fetch_datasets, register, Registered};
use crate::cli::DbArgs;
use crate::exec::slurm;
use crate::exec::slurm::script::{
    shell_quote, BatchScript, HandOffSbatch, PullOptions, SbatchOptions, OUTPUT_PATTERN,
};
use crate::store::Store;
use crate::sweep::Sweep;

/// Array tasks when `--workers` is not given: one per run to run, at most this many.
const DEFAULT_MAX_TASKS: usize = 8;

/// Arguments of `sweep submit`.
#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// The sweep file (YAML).
    file: PathBuf,
    /// Submit to Slurm (the only scheduler ddsas submits to); needs a PostgreSQL --db.
    #[arg(long, required = true)]
    slurm: bool,
    #[command(flatten)]
    db: DbArgs,
    /// Print the batch script and stop: nothing is registered, written or submitted.
    #[arg(long)]
    dry_run: bool,
    /// Folder for the batch script, the jobs' output (`%A_%a.out`) and the run logs
    /// (default: slurm/<sweep name> in the working folder).
    #[arg(long, value_name = "DIR")]
    script_dir: Option<PathBuf>,
    /// Array tasks, one pull worker each (default: the runs to run, at most 8;
    /// with --dry-run, the planned runs).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// At most this many tasks run at once (`--array=0-(N-1)%K`).
    #[arg(long, value_name = "K")]
    array_parallelism: Option<usize>,
    /// sbatch --partition.
    #[arg(long)]
    partition: Option<String>,
    /// sbatch --account.
    #[arg(long)]
    account: Option<String>,
    /// sbatch --time: each task's time limit (`30`, `4:00:00`, `1-00`); runs
    /// stopped by it resume in the requeued task. Also the limit of the
    /// Slurm job of each training of several ranks (`nproc:`), as are
    /// --mem, --signal-before and --sbatch-arg.
    #[arg(long)]
    time: Option<String>,
    /// sbatch --gpus-per-task (none: the runs run on CPU cores).
    #[arg(long, value_name = "N")]
    gpus_per_task: Option<u32>,
    /// sbatch --cpus-per-task.
    #[arg(long, value_name = "N")]
    cpus_per_task: Option<u32>,
    /// sbatch --mem (`16G`).
    #[arg(long)]
    mem: Option<String>,
    /// Concurrent runs per GPU of a task (default: the sweep's resources.runs_per_gpu, else 1).
    #[arg(long, value_name = "N")]
    runs_per_gpu: Option<usize>,
    /// libtorch threads per run (default: the sweep's resources.cpu_threads_per_run,
    /// else the task's cores over its runs).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Seconds before the time limit at which Slurm tells a task (SIGUSR2) to
    /// stop its runs and requeue itself (Slurm may signal up to 60 s earlier).
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    signal_before: u32,
    /// Another sbatch option, verbatim (repeatable), e.g. `--sbatch-arg=--qos=long`.
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    #[command(flatten)]
    faults: crate::cli::FaultArgs,
    /// Let this file redefine a sweep of the same name that holds runs the
    /// file no longer plans.
    #[arg(long)]
    replace: bool,
}

/// Runs `sweep submit`.
pub fn submit(rt: &Runtime, args: SubmitArgs) -> anyhow::Result<ExitCode> {
    // As the user wrote it (password included), with this shell's TLS
    // settings and absolute certificate paths: the tasks connect with it on
    // nodes that may not get this environment.
    let db = args
        .db
        .db
        .absolute()
        .with_context(|| format!("resolving {}", args.db.db))?
        .to_arg();
    slurm::refuse_sqlite(&db)?;
    check_options(&args)?;
    let sweep = Sweep::load(&args.file)?;
    for (i, plan) in sweep.evaluate.iter().enumerate() {
        plan.refuse_on_slurm(i + 1).map_err(anyhow::Error::msg)?;
    }
    let workdir = std::env::current_dir().context("finding the working folder")?;
    let script_dir = match &args.script_dir {
        Some(dir) => std::path::absolute(dir)
            .with_context(|| format!("resolving --script-dir {}", dir.display()))?,
        None => workdir.join("slurm").join(&sweep.name),
    };
    let exe = std::env::current_exe().context("finding the ddsas binary the tasks run")?;
    let script = |runs: usize| BatchScript {
        sweep: sweep.name.clone(),
        file: sweep.file.clone(),
        runs,
        db: db.clone(),
        exe: exe.clone(),
        workdir: workdir.clone(),
        script_dir: script_dir.clone(),
        script_name: next_script_name(&script_dir),
        data_dir: crate::data::home::data_home().map(|home| home.dir),
        tasks: args
            .workers
            .unwrap_or_else(|| runs.clamp(1, DEFAULT_MAX_TASKS)),
        sbatch: sbatch_options(&args),
        pull: PullOptions {
            runs_per_gpu: args.runs_per_gpu,
            threads: args.threads,
            max_retries: args.faults.max_retries,
            stale_after_s: args.faults.stale_after,
            stall_after_s: args.faults.stall_after,
            hand_off: hand_off_sbatch(&sweep, &args),
        },
    };
    if args.dry_run {
        let script = script(sweep.runs.len());
        crate::outln!("{}", script.text().trim_end());
        crate::errln!(
            "--dry-run: this script would be written to {} and submitted with `sbatch --parsable`; nothing was registered, written or submitted",
            script.path().display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let store = args.db.open(rt)?;
    let result = rt.block_on(register_and_submit(&store, &sweep, &args, script));
    rt.block_on(store.close());
    result.map(|()| ExitCode::SUCCESS)
}

/// Registers the sweep's runs and submits a batch script (made by
/// `script` for the runs left to do) for them, unless every run is done.
async fn register_and_submit(
    store: &Store,
    sweep: &Sweep,
    args: &SubmitArgs,
    script: impl Fn(usize) -> BatchScript,
) -> anyhow::Result<()> {
    let Registered {
        todo,
        done_before,
        evaluations,
    } = register(store, sweep, args.replace, args.faults.stale_after).await?;
    crate::outln!(
        "sweep {}: {} runs, {done_before} already done, {} to run{}",
        sweep.name,
        sweep.runs.len(),
        todo.len(),
        evaluations_text(evaluations)
    );
    if todo.is_empty() {
        crate::outln!(
            "nothing to submit: every run of this sweep is done (a done config is never run again)"
        );
        return Ok(());
    }
    // Here, once: the compute nodes may have no network.
    fetch_datasets(sweep).await?;
    let script = script(todo.len());
    let path = write_script(&script)?;
    crate::outln!("wrote {}", path.display());
    let job = slurm::submit(&path).with_context(|| {
        format!(
            "submitting {} (the runs are registered; fix what sbatch says, then run the same `ddsas sweep submit` again)",
            path.display()
        )
    })?;
    store
        .record_slurm_job(
            &job,
            &sweep.name,
            script.tasks as i64,
            &path.display().to_string(),
        )
        .await
        .with_context(|| {
            format!("job {job} was submitted, but recording it failed (`scancel {job}` stops it)")
        })?;
    say_submitted(&script, &job, &args.db.db.to_string());
    Ok(())
}

/// Refuses option values sbatch or the script could not take, before
/// anything is registered.
fn check_options(args: &SubmitArgs) -> anyhow::Result<()> {
    let at_least_one = [
        ("--workers", args.workers),
        ("--array-parallelism", args.array_parallelism),
        ("--runs-per-gpu", args.runs_per_gpu),
        ("--threads", args.threads),
    ];
    for (flag, value) in at_least_one {
        if value == Some(0) {
            bail!("{flag} 0: use at least 1, or leave it out");
        }
    }
    if args.signal_before == 0 {
        bail!("--signal-before 0: Slurm must warn a task some seconds before its time limit (default 120)");
    }
    for arg in &args.sbatch_args {
        if arg.contains('\n') || arg.trim().is_empty() {
            bail!("--sbatch-arg {arg:?}: one sbatch option per --sbatch-arg, on one line (e.g. --sbatch-arg=--qos=long)");
        }
    }
    Ok(())
}

/// The sbatch options of the Slurm jobs the pull workers hand the
/// sweep's trainings of several ranks to: the array's, when it has such
/// trainings (none: nothing to pass on).
fn hand_off_sbatch(sweep: &Sweep, args: &SubmitArgs) -> HandOffSbatch {
    if sweep.evaluate.iter().all(|plan| plan.nproc <= 1) {
        return HandOffSbatch::default();
    }
    HandOffSbatch {
        time: args.time.clone(),
        mem: args.mem.clone(),
        signal_before_s: Some(args.signal_before),
        extra: args.sbatch_args.clone(),
    }
}

fn sbatch_options(args: &SubmitArgs) -> SbatchOptions {
    SbatchOptions {
        partition: args.partition.clone(),
        account: args.account.clone(),
        time: args.time.clone(),
        gpus_per_task: args.gpus_per_task,
        cpus_per_task: args.cpus_per_task,
        mem: args.mem.clone(),
        array_parallelism: args.array_parallelism,
        signal_before_s: args.signal_before,
        extra: args.sbatch_args.clone(),
    }
}

/// `submit-N.sh` with the first N not taken in `dir`: every submission
/// keeps its own script.
fn next_script_name(dir: &Path) -> String {
    (1..)
        .map(|n| format!("submit-{n}.sh"))
        .find(|name| !dir.join(name).exists())
        .expect("an unused number")
}

/// Writes the script (readable by its owner only: the database URL in it
/// may hold a password) and the folders the job writes into.
fn write_script(script: &BatchScript) -> anyhow::Result<PathBuf> {
    let path = script.path();
    write_batch_script(&script.script_dir.join("logs"), &path, &script.text())?;
    Ok(path)
}

/// Creates `folder` (the job's, or one inside it) and writes a new batch
/// script `text` at `path`, readable by its owner only (the database URL
/// in it may hold a password); an existing script is never overwritten.
pub(crate) fn write_batch_script(folder: &Path, path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(folder).with_context(|| {
        format!(
            "creating {} (choose another folder with --script-dir)",
            folder.display()
        )
    })?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(path)
        .with_context(|| format!("writing the batch script {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing the batch script {}", path.display()))
}

fn say_submitted(script: &BatchScript, job: &str, db: &str) {
    let at_once = script
        .sbatch
        .array_parallelism
        .map(|k| format!(", at most {k} at once"))
        .unwrap_or_default();
    let db_arg = format!("--db {}", shell_quote(db));
    crate::outln!(
        "submitted job array {job}: {} pull worker task(s){at_once} for sweep {}; their output goes to {}\n  watch:  ddsas sweep status {} {db_arg}\n  stop:   ddsas sweep cancel {} {db_arg}   (done runs stay done; `sweep submit` again resumes the rest)",
        script.tasks,
        script.sweep,
        script.script_dir.join(OUTPUT_PATTERN.replace("%A", job).replace("%a", "<task>")).display(),
        script.sweep,
        script.sweep,
    );
}
