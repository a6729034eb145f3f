//! `ddsas sweep`: plan, run, watch and cancel sweeps (docs/design.md §5, §6).
//!
//! `plan` and `run` read the sweep file through `sweep::Sweep`, so every
//! mistake in it is reported before anything runs; `run` registers the
//! sweep and its runs, then hands the runs that are not done to
//! `exec::orchestrator`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::cli::runs::{config_text, differing_keys};
use crate::cli::sql::cell_text;
use crate::cli::{DbArgs, EXIT_INTERRUPTED};
use crate::exec::orchestrator::{orchestrate, Options, Slot, SlotDevice, StopReason, SweepRun};
use crate::store::{QueryRows, ReadOnlyDb, RunStatus, Store};
use crate::sweep::Sweep;

/// GPU memory one run needs by default, for `--runs-per-gpu auto`
/// (docs/design.md §6: DDSAS needs ~4 GB at the paper's settings).
const DEFAULT_GPU_MEM_GB: f64 = 4.0;

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
    /// Counts and per-run status of a registered sweep.
    #[command(after_help = "Example:\n  ddsas sweep status demo --db results.db")]
    Status(NameArgs),
    /// Ask the orchestrators running a sweep to stop (runs resume on the next `sweep run`).
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
    #[arg(long, default_value = "all")]
    gpus: String,
    /// Concurrent runs per GPU: a number, or `auto` (free memory / resources.gpu_mem_gb_per_run).
    #[arg(long)]
    runs_per_gpu: Option<String>,
    /// Concurrent CPU workers (default when no GPU is used: cores / resources.cpu_threads_per_run, else 1; with GPUs: 0).
    #[arg(long)]
    cpu_workers: Option<usize>,
    /// libtorch threads per CPU worker (default: resources.cpu_threads_per_run, else cores / workers).
    #[arg(long)]
    threads: Option<usize>,
    /// Retries of a run whose worker died (not of a run whose search failed).
    #[arg(long, default_value_t = 2)]
    max_retries: u32,
    /// Take over a `running` run whose heartbeat is older than this many seconds.
    #[arg(long, default_value_t = 30.0)]
    stale_after: f64,
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
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            SweepCmd::Plan(args) => plan(args),
            SweepCmd::Run(args) => run(args),
            SweepCmd::Status(args) => status(args),
            SweepCmd::Cancel(args) => cancel(args),
        }
    }
}

fn plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let sweep = Sweep::load(&args.file)?;
    let planned = started.elapsed();
    let rt = Runtime::new().context("starting the async runtime")?;
    let known = rt.block_on(known_runs(&args.db.db, &sweep))?;
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
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for run in &sweep.runs {
        let mut row = vec![run.position.to_string()];
        row.extend(
            sweep
                .columns
                .iter()
                .map(|c| run.value(c).unwrap_or("·").to_owned()),
        );
        row.push(run.fingerprint[..10.min(run.fingerprint.len())].to_owned());
        let (id, status) = match known.get(&run.fingerprint) {
            Some((id, status, done, total)) => {
                *counts.entry(status_name(status)).or_default() += 1;
                let text = match status.as_str() {
                    "running" | "interrupted" | "failed" => format!("{status} {done}/{total}"),
                    _ => status.clone(),
                };
                (id.to_string(), text)
            }
            None => {
                *counts.entry("new").or_default() += 1;
                ("-".to_owned(), "new".to_owned())
            }
        };
        row.push(id);
        row.push(status);
        table.add_row(row);
    }
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
    Ok(ExitCode::SUCCESS)
}

fn status_name(s: &str) -> &'static str {
    match s {
        "done" => "done",
        "running" => "running",
        "failed" => "failed",
        "interrupted" => "interrupted",
        _ => "queued",
    }
}

/// (id, status, epochs done, epochs total) of the sweep's fingerprints that
/// the database knows; empty when there is no database yet (planning never
/// creates one).
async fn known_runs(
    db: &Path,
    sweep: &Sweep,
) -> anyhow::Result<std::collections::HashMap<String, (i64, String, i64, i64)>> {
    if !db.exists() {
        return Ok(Default::default());
    }
    let mut ro = ReadOnlyDb::open(db).await?;
    let fps: Vec<&str> = sweep.runs.iter().map(|r| r.fingerprint.as_str()).collect();
    let rows = ro
        .query(
            "SELECT fingerprint, id, status, epochs_done, epochs_total FROM runs
             WHERE fingerprint IN (SELECT value FROM json_each(?1))",
            &[serde_json::to_string(&fps)?.into()],
        )
        .await?;
    Ok(rows
        .rows
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or_default().to_owned(),
                (
                    r[1].as_i64().unwrap_or(0),
                    r[2].as_str().unwrap_or_default().to_owned(),
                    r[3].as_i64().unwrap_or(0),
                    r[4].as_i64().unwrap_or(0),
                ),
            )
        })
        .collect())
}

/// A sweep's name is how figures and `runs list --sweep` find its runs, so
/// a file that reuses the name of another sweep must not silently take
/// runs out of it: adding runs (more seeds, a wider grid) is fine; leaving
/// some out needs `--replace` or another name.
async fn refuse_dropping_runs(store: &Store, sweep: &Sweep) -> anyhow::Result<()> {
    let Some(existing) = store.sweep(&sweep.name).await? else {
        return Ok(());
    };
    let planned: std::collections::HashSet<String> =
        sweep.runs.iter().map(|r| r.cfg.fingerprint()).collect();
    let dropped: Vec<i64> = store
        .sweep_runs(&sweep.name)
        .await?
        .into_iter()
        // Runs made under older definitions cannot be planned again; they
        // stay in the sweep, and in the database, and figures leave them out.
        .filter(|(_, row)| !planned.contains(&row.fingerprint) && !row.outdated())
        .map(|(_, row)| row.id)
        .collect();
    if dropped.is_empty() {
        return Ok(());
    }
    bail!(
        "sweep `{}` (from {}) already holds {} that {} does not plan; give this file another `name:`, or pass --replace to make `{}` follow it (those runs stay in the database, in no sweep)",
        sweep.name,
        existing.file.as_deref().unwrap_or("another file"),
        crate::report::runs_text(&dropped),
        sweep.file,
        sweep.name
    )
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // Everything that can be wrong with the file is found here, before the
    // database is touched.
    let sweep = Sweep::load(&args.file)?;
    let (slots, how) = slots(&args, &sweep)?;
    let db = std::path::absolute(&args.db.db)
        .with_context(|| format!("resolving {}", args.db.db.display()))?;
    let log_dir = db.parent().unwrap_or(Path::new(".")).join("logs");
    let exe = std::env::current_exe().context("finding the ddsas binary to start workers from")?;
    let rt = Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let store = Store::open(&db).await?;
        if !args.replace {
            refuse_dropping_runs(&store, &sweep).await?;
        }
        let mut links = Vec::with_capacity(sweep.runs.len());
        let mut todo = Vec::new();
        let mut done_before = 0;
        for run in &sweep.runs {
            let row = store.ensure_run(&run.cfg).await?;
            links.push((row.id, run.position as i64));
            if row.status == RunStatus::Done {
                done_before += 1;
            } else {
                todo.push(SweepRun {
                    run_id: row.id,
                    position: run.position,
                    label: run.label(&sweep.columns),
                    epochs: run.cfg.config.epochs,
                });
            }
        }
        store
            .register_sweep(&sweep.name, sweep.description.as_deref(), &sweep.file, &sweep.text, &links)
            .await?;
        crate::outln!(
            "sweep {}: {} runs, {done_before} already done, {} to run; {how}; logs in {}",
            sweep.name,
            sweep.runs.len(),
            todo.len(),
            log_dir.display()
        );
        if todo.is_empty() {
            crate::outln!("nothing to do: every run of this sweep is done (a done config is never run again)");
            return Ok(ExitCode::SUCCESS);
        }
        let opts = Options {
            sweep: sweep.name.clone(),
            db: db.clone(),
            exe,
            slots,
            max_retries: args.max_retries,
            stale_after_s: args.stale_after,
            heartbeat_s: args.heartbeat,
            log_dir,
            live: !args.plain,
            already_done: done_before,
        };
        let started = Instant::now();
        let outcome = orchestrate(&store, todo, &opts).await?;
        store.close().await;
        let total_done = done_before + outcome.done + outcome.done_elsewhere;
        crate::outln!(
            "sweep {}: {total_done}/{} done ({} in this session, {} by another orchestrator, {done_before} before), {} failed, {} interrupted, {} retr{} in {:.1} s",
            sweep.name,
            sweep.runs.len(),
            outcome.done,
            outcome.done_elsewhere,
            outcome.failed.len(),
            outcome.interrupted,
            outcome.retries,
            if outcome.retries == 1 { "y" } else { "ies" },
            started.elapsed().as_secs_f64()
        );
        for f in &outcome.failed {
            crate::outln!(
                "  failed: run {} ({}): {}{}",
                f.run_id,
                f.label,
                f.message,
                f.log.as_ref().map(|l| format!(" [log {}]", l.display())).unwrap_or_default()
            );
        }
        match outcome.stopped {
            Some(StopReason::Signal) => {
                crate::errln!("stopped: the interrupted runs kept their checkpoints; run the same command again to resume");
                Ok(ExitCode::from(EXIT_INTERRUPTED))
            }
            Some(StopReason::Cancelled) => {
                crate::errln!("sweep {} was cancelled; `ddsas sweep run` again resumes it", sweep.name);
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
    })
}

/// The worker slots from the flags, the sweep's resources and the machine,
/// with a sentence saying what was chosen.
fn slots(args: &RunArgs, sweep: &Sweep) -> anyhow::Result<(Vec<Slot>, String)> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut detected = nvidia_smi();
    let explicit = !matches!(args.gpus.trim(), "all" | "none" | "cpu" | "");
    if detected.is_none() && explicit {
        // No nvidia-smi to check a GPU list against: ask libtorch, as the
        // workers would, rather than start workers that all fail.
        detected = Some(
            crate::cli::cuda_devices()
                .into_iter()
                .map(|i| (i, None))
                .collect(),
        );
    }
    slot_plan(args, sweep, detected, cores)
}

/// [`slots`] for a given machine: `detected` is what nvidia-smi said
/// ((index, free MiB) per GPU; `None`: no nvidia-smi), `cores` the CPUs.
fn slot_plan(
    args: &RunArgs,
    sweep: &Sweep,
    detected: Option<Vec<(u32, Option<f64>)>>,
    cores: usize,
) -> anyhow::Result<(Vec<Slot>, String)> {
    let mut notes = Vec::new();
    let gpus: Vec<(u32, Option<f64>)> = match args.gpus.trim() {
        "all" => match &detected {
            Some(list) if !list.is_empty() => list.clone(),
            Some(_) => {
                notes.push("nvidia-smi lists no GPU, so running on the CPU".to_owned());
                Vec::new()
            }
            None => {
                notes
                    .push("no GPU found (no working nvidia-smi), so running on the CPU".to_owned());
                Vec::new()
            }
        },
        "none" | "cpu" | "" => Vec::new(),
        list => {
            let mut out: Vec<(u32, Option<f64>)> = Vec::new();
            for part in list.split(',') {
                let g: u32 = part
                    .trim()
                    .parse()
                    .with_context(|| format!("--gpus `{list}`: `{part}` is not a GPU index; use all, none or a list such as 0,1"))?;
                if out.iter().any(|(i, _)| *i == g) {
                    bail!("--gpus {list}: GPU {g} is listed twice; use --runs-per-gpu 2 for two runs on one GPU");
                }
                let free = match &detected {
                    Some(found) => match found.iter().find(|(i, _)| *i == g) {
                        Some((_, free)) => *free,
                        None => bail!(
                            "--gpus {list}: GPU {g} does not exist; the GPUs found (by nvidia-smi, else libtorch) are {}",
                            if found.is_empty() {
                                "none".to_owned()
                            } else {
                                found
                                    .iter()
                                    .map(|(i, _)| i.to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            }
                        ),
                    },
                    None => {
                        let note = "nvidia-smi is not available to check the GPUs; trusting --gpus";
                        if !notes.iter().any(|n| n == note) {
                            notes.push(note.to_owned());
                        }
                        None
                    }
                };
                out.push((g, free));
            }
            out
        }
    };
    let per_run_gb = sweep
        .resources
        .gpu_mem_gb_per_run
        .unwrap_or(DEFAULT_GPU_MEM_GB);
    let mut slots = Vec::new();
    let runs_per_gpu = args
        .runs_per_gpu
        .clone()
        .or_else(|| sweep.resources.runs_per_gpu.map(|n| n.to_string()))
        .unwrap_or_else(|| "1".into());
    for &(g, free_mib) in &gpus {
        let n = if runs_per_gpu == "auto" {
            match free_mib {
                Some(mib) => {
                    let n = ((mib / 1024.0) / per_run_gb).floor().max(1.0) as usize;
                    notes.push(format!(
                        "GPU {g}: {:.1} GB free / {per_run_gb} GB per run = {n} run(s)",
                        mib / 1024.0
                    ));
                    n
                }
                None => {
                    notes.push(format!("GPU {g}: free memory unknown, 1 run"));
                    1
                }
            }
        } else {
            let n: usize = runs_per_gpu
                .parse()
                .ok()
                .filter(|&n| n >= 1)
                .with_context(|| {
                    format!("--runs-per-gpu `{runs_per_gpu}`: use a number of at least 1, or auto")
                })?;
            n
        };
        for _ in 0..n {
            slots.push(SlotDevice::Gpu(g));
        }
    }
    // Without a GPU: one worker, or as many as the cores allow when the
    // sweep says how many threads a run wants.
    let cpu_workers = args.cpu_workers.unwrap_or(
        match (gpus.is_empty(), sweep.resources.cpu_threads_per_run) {
            (false, _) => 0,
            (true, Some(t)) => (cores / (t as usize).max(1)).max(1),
            (true, None) => 1,
        },
    );
    let gpu_slots = slots.len();
    slots.extend(std::iter::repeat_n(SlotDevice::Cpu, cpu_workers));
    if slots.is_empty() {
        bail!("no worker slot: --cpu-workers 0 and no GPU; use --cpu-workers 1 or more");
    }
    let cpu_threads = args
        .threads
        .or(sweep.resources.cpu_threads_per_run.map(|t| t as usize))
        .unwrap_or_else(|| (cores / cpu_workers.max(1)).max(1));
    let gpu_threads = args.threads.unwrap_or_else(|| (cores / slots.len()).max(1));
    if let Err(why) = crate::cli::check_threads(cpu_threads.max(gpu_threads), cores) {
        bail!("threads per run: {why}; lower --threads or resources.cpu_threads_per_run");
    }
    let slots: Vec<Slot> = slots
        .into_iter()
        .map(|device| Slot {
            device,
            threads: if device == SlotDevice::Cpu {
                cpu_threads
            } else {
                gpu_threads
            },
        })
        .collect();
    let mut how = Vec::new();
    if gpu_slots > 0 {
        how.push(format!(
            "{gpu_slots} GPU worker slot(s) on GPU {}",
            gpus.iter()
                .map(|(g, _)| g.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    if cpu_workers > 0 {
        how.push(format!(
            "{cpu_workers} CPU worker(s) x {cpu_threads} thread(s)"
        ));
    }
    let mut text = how.join(" + ");
    if !notes.is_empty() {
        text = format!("{text} ({})", notes.join("; "));
    }
    Ok((slots, text))
}

/// (index, free MiB) of every GPU nvidia-smi lists; `None` when nvidia-smi
/// is not there or fails.
fn nvidia_smi() -> Option<Vec<(u32, Option<f64>)>> {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,memory.free",
            "--format=csv,noheader,nounits",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.lines()
            .filter_map(|line| {
                let mut parts = line.split(',').map(str::trim);
                let index = parts.next()?.parse().ok()?;
                let free = parts.next().and_then(|f| f.parse().ok());
                Some((index, free))
            })
            .collect(),
    )
}

fn status(args: NameArgs) -> anyhow::Result<ExitCode> {
    let rt = Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let mut db = ReadOnlyDb::open(&args.db.db).await?;
        let sweep = db
            .query(
                "SELECT name, description, file, datetime(created_at, 'unixepoch') AS created, cancelled FROM sweeps WHERE name = ?1",
                &[args.name.as_str().into()],
            )
            .await?;
        if sweep.rows.is_empty() {
            let known = db.query("SELECT name FROM sweeps ORDER BY created_at", &[]).await?;
            let names: Vec<String> = known.rows.iter().map(|r| cell_text(&r[0])).collect();
            bail!(
                "no sweep named `{}` in {} ({})",
                args.name,
                args.db.db.display(),
                if names.is_empty() { "it has no sweeps yet".to_owned() } else { format!("its sweeps: {}", names.join(", ")) }
            );
        }
        let runs = db
            .query(
                "SELECT s.position, r.id, r.status, r.epochs_done, r.epochs_total, r.final_valid_acc, r.best_valid_acc,
                        (SELECT e.valid_acc FROM epochs e WHERE e.run_id = r.id ORDER BY e.epoch DESC LIMIT 1) AS last_acc,
                        r.attempts, r.device, r.wall_s, r.error, r.config_json
                 FROM sweep_runs s JOIN runs r ON r.id = s.run_id WHERE s.sweep = ?1 ORDER BY s.position, r.id",
                &[args.name.as_str().into()],
            )
            .await?;
        print_status(&sweep, &runs);
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

fn print_status(sweep: &QueryRows, runs: &QueryRows) {
    let s = &sweep.rows[0];
    let cancelled = s[4].as_i64() == Some(1);
    crate::outln!(
        "sweep {}{}{}",
        cell_text(&s[0]),
        s[1].as_str()
            .map(|d| format!(": {}", d.trim()))
            .unwrap_or_default(),
        if cancelled { "  [cancelled]" } else { "" }
    );
    crate::outln!(
        "file {}, registered {} UTC",
        cell_text(&s[2]),
        cell_text(&s[3])
    );
    let configs: Vec<serde_json::Map<String, Value>> = runs
        .rows
        .iter()
        .map(|r| {
            r[12]
                .as_str()
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or_default()
        })
        .collect();
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
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for (r, config) in runs.rows.iter().zip(&configs) {
        let status = cell_text(&r[2]);
        *counts.entry(status.clone()).or_default() += 1;
        let mut row = vec![cell_text(&r[0]), cell_text(&r[1])];
        row.extend(keys.iter().map(|k| config_text(config, k)));
        let acc = if r[5].is_null() { &r[7] } else { &r[5] };
        row.extend([
            status,
            format!("{}/{}", cell_text(&r[3]), cell_text(&r[4])),
            acc.as_f64()
                .map_or("-".into(), |a| format!("{:.2}%", 100.0 * a)),
            r[6].as_f64()
                .map_or("-".into(), |a| format!("{:.2}%", 100.0 * a)),
            cell_text(&r[8]),
            cell_text(&r[9]),
            r[10].as_f64().map_or("-".into(), |w| format!("{w:.1}")),
        ]);
        table.add_row(row);
    }
    crate::outln!("{table}");
    let n = |k: &str| counts.get(k).copied().unwrap_or(0);
    crate::outln!(
        "{} runs: {} done, {} running, {} queued, {} interrupted, {} failed",
        runs.rows.len(),
        n("done"),
        n("running"),
        n("queued"),
        n("interrupted"),
        n("failed")
    );
    for r in &runs.rows {
        if let (Some("failed"), Some(e)) = (r[2].as_str(), r[11].as_str()) {
            crate::outln!("  run {} failed: {e}", cell_text(&r[1]));
        }
    }
}

fn cancel(args: NameArgs) -> anyhow::Result<ExitCode> {
    let rt = Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        if !args.db.db.exists() {
            bail!("database {} does not exist", args.db.db.display());
        }
        let store = Store::open(&args.db.db).await?;
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
        store.close().await;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        args: RunArgs,
    }

    fn plan(
        flags: &[&str],
        resources: &str,
        gpus: Option<Vec<(u32, Option<f64>)>>,
        cores: usize,
    ) -> anyhow::Result<(Vec<Slot>, String)> {
        let mut argv = vec!["run", "s.yaml"];
        argv.extend_from_slice(flags);
        let args = Wrap::try_parse_from(argv).unwrap().args;
        let sweep = Sweep::parse(&format!("name: s\nresources: {resources}\n"), "s.yaml").unwrap();
        slot_plan(&args, &sweep, gpus, cores)
    }

    fn devices(slots: &[Slot]) -> Vec<SlotDevice> {
        slots.iter().map(|s| s.device).collect()
    }

    #[test]
    fn without_gpu_the_cpu_is_used_and_said_so() {
        let (slots, how) = plan(&[], "{}", None, 8).unwrap();
        assert_eq!(
            slots,
            vec![Slot {
                device: SlotDevice::Cpu,
                threads: 8
            }]
        );
        assert!(how.contains("running on the CPU"), "{how}");
        let (slots, _) = plan(&["--cpu-workers", "4"], "{}", Some(vec![]), 8).unwrap();
        assert_eq!(slots.len(), 4);
        assert!(slots.iter().all(|s| s.threads == 2));
        let err = plan(&["--threads", "100000"], "{}", None, 8).unwrap_err();
        assert!(err.to_string().contains("more than 4 per core"), "{err}");
        let (slots, _) = plan(&[], "{cpu_threads_per_run: 1}", None, 2).unwrap();
        assert_eq!(slots.len(), 2, "one single-threaded worker per core");
        assert!(plan(&["--cpu-workers", "0"], "{}", None, 2).is_err());
    }

    #[test]
    fn gpus_get_slots_per_gpu_fixed_or_from_free_memory() {
        let two = Some(vec![(0, Some(40_960.0)), (1, Some(10_240.0))]);
        let (slots, _) = plan(&["--gpus", "all"], "{}", two.clone(), 16).unwrap();
        assert_eq!(
            devices(&slots),
            vec![SlotDevice::Gpu(0), SlotDevice::Gpu(1)]
        );
        assert!(slots.iter().all(|s| s.threads == 8));
        let (slots, how) = plan(
            &["--runs-per-gpu", "auto"],
            "{gpu_mem_gb_per_run: 4}",
            two.clone(),
            16,
        )
        .unwrap();
        assert_eq!(
            slots
                .iter()
                .filter(|s| s.device == SlotDevice::Gpu(0))
                .count(),
            10,
            "{how}"
        );
        assert_eq!(
            slots
                .iter()
                .filter(|s| s.device == SlotDevice::Gpu(1))
                .count(),
            2,
            "{how}"
        );
        let (slots, _) = plan(
            &["--gpus", "1", "--runs-per-gpu", "3", "--cpu-workers", "1"],
            "{}",
            two.clone(),
            16,
        )
        .unwrap();
        assert_eq!(
            devices(&slots),
            vec![
                SlotDevice::Gpu(1),
                SlotDevice::Gpu(1),
                SlotDevice::Gpu(1),
                SlotDevice::Cpu
            ]
        );
        let (slots, _) = plan(&[], "{runs_per_gpu: 2}", two.clone(), 16).unwrap();
        assert_eq!(slots.len(), 4);
        let err = plan(&["--gpus", "5"], "{}", two.clone(), 16)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("GPU 5 does not exist") && err.contains("0, 1"),
            "{err}"
        );
        assert!(plan(&["--gpus", "x"], "{}", two.clone(), 16).is_err());
        assert!(plan(&["--runs-per-gpu", "0"], "{}", two, 16).is_err());
        let (slots, how) = plan(&["--gpus", "0"], "{}", None, 4).unwrap();
        assert_eq!(devices(&slots), vec![SlotDevice::Gpu(0)]);
        assert!(how.contains("trusting --gpus"), "{how}");
        let err = plan(&["--gpus", "0,0"], "{}", None, 4).unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
        let err = plan(&["--gpus", "3"], "{}", Some(vec![]), 4).unwrap_err();
        assert!(err.to_string().contains("GPU 3 does not exist"), "{err}");
    }
}
