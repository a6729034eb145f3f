//! `ddsas runs`: questions about the run history — list (filtered, sorted,
//! as a table, CSV or JSON), show one run, the best run of a sweep, and a
//! side-by-side comparison; and `runs cancel`, which scancels the Slurm
//! job of a `train --slurm` run. Everything reads through a read-only connection
//! (`store::ReadOnlyDb`), so the user's `--where` SQL cannot change
//! anything and never competes with running workers for the write lock.

use std::process::ExitCode;

use anyhow::{bail, Context};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::arch::space::SpaceKind;
use crate::cli::sql::{cell_text, print_rows, real_text, Format};
use crate::cli::DbArgs;
use crate::exec::slurm::squeue::QueuedTask;
use crate::store::{
    Nb201Accuracy, QueryError, QueryRows, ReadOnlyDb, RunCard, RunFilter, RunKind, RunStatus,
    Training,
};

/// Columns of `run_summary` in `runs list`'s table (CSV and JSON get all).
const LIST_COLUMNS: &[&str] = &[
    "id",
    "sweep",
    "status",
    "method",
    "space",
    "dataset",
    "seed",
    "L",
    "M",
    "approximation",
    "epochs_done",
    "epochs",
    "valid_acc",
    "best_valid_acc",
    "skip_normal",
    "wall_s",
];
const STATUSES: &[&str] = &["queued", "running", "done", "failed", "interrupted"];

/// Run-history commands.
#[derive(Debug, clap::Subcommand)]
pub enum RunsCmd {
    /// List runs from the `run_summary` view, filtered and sorted.
    #[command(
        after_help = "Examples:\n  ddsas runs list --sweep fig7_lm_grid --where \"L = 28 and M >= 10\" --sort -valid_acc\n  ddsas runs list --status failed\n  ddsas runs list --format csv > runs.csv"
    )]
    List(ListArgs),
    /// Everything about one run: config, epochs, genotype, error, logs.
    #[command(after_help = "Example:\n  ddsas runs show 12")]
    Show(ShowArgs),
    /// The best runs of a sweep by a metric.
    #[command(
        after_help = "Examples:\n  ddsas runs best --sweep fig7_lm_grid\n  ddsas runs best --sweep demo --by -wall_s --limit 3"
    )]
    Best(BestArgs),
    /// Runs side by side: the config keys that differ and the final metrics.
    #[command(after_help = "Example:\n  ddsas runs compare 3 7 12")]
    Compare(CompareArgs),
    /// Stop the Slurm job(s) of a run submitted with `ddsas train --slurm` (scancel): its
    /// ranks stop at the next step and the run is left `interrupted`, its checkpoint kept.
    #[command(
        after_help = "Example:\n  ddsas runs cancel 12 --db postgres://me@db/ddsas\nThe same `ddsas train ... --slurm` plus --resume submits the rest."
    )]
    Cancel(ShowArgs),
}

/// Arguments of `runs list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only runs of this sweep.
    #[arg(long)]
    sweep: Option<String>,
    /// Only runs with this status (queued, running, done, failed, interrupted).
    #[arg(long)]
    status: Option<String>,
    /// SQL condition over the columns of run_summary, e.g. "L = 28 and M >= 10".
    #[arg(long = "where", value_name = "CONDITION")]
    condition: Option<String>,
    /// Column of run_summary to sort by; a leading `-` sorts descending.
    #[arg(long, default_value = "id", allow_hyphen_values = true)]
    sort: String,
    /// At most this many runs.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    limit: Option<u32>,
    /// Output format (CSV and JSON carry every column of run_summary).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Stop the query after this many seconds (0: no limit), so that a
    /// runaway statement never hangs the command.
    #[arg(long, value_name = "SECS", default_value_t = super::CLI_QUERY_TIMEOUT)]
    query_timeout: u64,
    #[command(flatten)]
    db: DbArgs,
}

/// Arguments of `runs show` and `runs cancel`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Run id.
    id: i64,
    #[command(flatten)]
    db: DbArgs,
}

/// Arguments of `runs best`.
#[derive(Debug, clap::Args)]
pub struct BestArgs {
    /// The sweep.
    #[arg(long)]
    sweep: String,
    /// Column of run_summary to rank by (highest first; `-column` for lowest first).
    #[arg(long, default_value = "valid_acc", allow_hyphen_values = true)]
    by: String,
    /// How many runs to show.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    limit: u32,
    #[command(flatten)]
    db: DbArgs,
}

/// Arguments of `runs compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Two or more run ids.
    #[arg(num_args = 2.., required = true, value_name = "ID")]
    ids: Vec<i64>,
    #[command(flatten)]
    db: DbArgs,
}

impl RunsCmd {
    /// Runs the command.
    pub fn run(self, rt: &Runtime) -> anyhow::Result<ExitCode> {
        match self {
            RunsCmd::List(args) => rt.block_on(list(&mut args.db.open_read_only(rt)?, args))?,
            RunsCmd::Show(args) => rt.block_on(show(&mut args.db.open_read_only(rt)?, args))?,
            RunsCmd::Best(args) => rt.block_on(best(&mut args.db.open_read_only(rt)?, args))?,
            RunsCmd::Compare(args) => {
                rt.block_on(compare(&mut args.db.open_read_only(rt)?, args))?
            }
            RunsCmd::Cancel(args) => {
                let held = rt.block_on(cancel(&mut args.db.open_read_only(rt)?, &args))?;
                if let Some(owner) = held {
                    release_held(rt, &args, &owner)?;
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// `-valid_acc` → (`valid_acc`, descending), checked against the view.
fn sort_key<'a>(text: &'a str, columns: &[String], flag: &str) -> anyhow::Result<(&'a str, bool)> {
    let (name, desc) = match text.strip_prefix('-') {
        Some(rest) => (rest, true),
        None => (text.strip_prefix('+').unwrap_or(text), false),
    };
    if !columns.iter().any(|c| c == name) {
        bail!(
            "unknown {flag} key `{name}`: it must be a column of run_summary ({}); prefix `-` for descending",
            columns.join(", ")
        );
    }
    Ok((name, desc))
}

async fn sweep_exists(db: &mut ReadOnlyDb, name: &str) -> anyhow::Result<()> {
    let names = db.sweep_names().await?;
    if !names.iter().any(|n| n == name) {
        bail!(
            "no sweep named `{name}` in this database ({})",
            if names.is_empty() {
                "it has no sweeps yet".to_owned()
            } else {
                format!("its sweeps: {}", names.join(", "))
            }
        );
    }
    Ok(())
}

async fn list(db: &mut ReadOnlyDb, args: ListArgs) -> anyhow::Result<()> {
    db.set_time_limit(super::query_limit(args.query_timeout))
        .await?;
    let columns = db.columns_of("run_summary").await?;
    let (sort, desc) = sort_key(&args.sort, &columns, "--sort")?;
    if let Some(sweep) = &args.sweep {
        sweep_exists(db, sweep).await?;
    }
    if let Some(status) = &args.status {
        if !STATUSES.contains(&status.as_str()) {
            bail!(
                "unknown --status `{status}`: use one of {}",
                STATUSES.join(", ")
            );
        }
    }
    let filter = RunFilter {
        sweep: args.sweep.as_deref(),
        status: args.status.as_deref(),
        condition: args.condition.as_deref(),
        sort,
        descending: desc,
        limit: args.limit,
    };
    let rows = match db.run_listing(&filter).await {
        Ok(rows) => rows,
        Err(QueryError::Sql { message }) | Err(QueryError::ReadOnly { message }) => match &args.condition {
            Some(condition) => bail!(
                "bad --where clause `{condition}`: {message}\nthe clause is SQL over the columns of run_summary: {}",
                columns.join(", ")
            ),
            None => bail!("listing runs failed: {message}"),
        },
        Err(other) => return Err(other.into()),
    };
    match args.format {
        Format::Table => {
            let mut columns = LIST_COLUMNS.to_vec();
            // Train runs' test accuracy, when some listed run has one.
            let has_test = (0..rows.rows.len()).any(|i| !rows.cell(i, "test_acc").is_null());
            if has_test {
                columns.insert(columns.len() - 1, "test_acc");
            }
            let (table, note) = mark_outdated(&rows, select_columns(&rows, &columns));
            print_rows(&table, Format::Table)?;
            if let Some(note) = note {
                crate::outln!("{note}");
            }
            Ok(())
        }
        other => print_rows(&rows, other),
    }
}

/// Adds a `definitions` column to `table` when some of `rows` were made
/// under older definitions than this ddsas uses for their method, with a
/// note saying what changed: their numbers mean something else than those
/// of newer runs.
fn mark_outdated(rows: &QueryRows, mut table: QueryRows) -> (QueryRows, Option<String>) {
    let marks: Vec<Option<String>> = (0..rows.rows.len())
        .map(|i| {
            let current = crate::config::definitions_named(
                rows.cell(i, "method").as_str()?,
                rows.cell(i, "space").as_str()?,
            )?;
            let version = rows.cell(i, "definitions").as_i64()?;
            (version < i64::from(current)).then(|| format!("v{version} (older)"))
        })
        .collect();
    if marks.iter().all(Option::is_none) {
        return (table, None);
    }
    table.columns.push("definitions".into());
    for (row, mark) in table.rows.iter_mut().zip(&marks) {
        row.push(mark.clone().map_or(Value::Null, Value::from));
    }
    use crate::config::{definitions_change, Method};
    let note = format!(
        "{} made under older definitions: DDSAS {}; GDAS in the DARTS space {}; GDAS in NAS-Bench-201 {}; DARTS {}. They are kept for reading and never resumed; a sweep runs their configs again as new runs.",
        crate::report::labels::plural(marks.iter().flatten().count(), "run"),
        definitions_change(Method::Ddsas, SpaceKind::Darts),
        definitions_change(Method::Gdas, SpaceKind::Darts),
        definitions_change(Method::Gdas, SpaceKind::Nb201),
        definitions_change(Method::Darts, SpaceKind::Darts),
    );
    (table, Some(note))
}

/// The named columns of `rows` (those that exist), in the given order.
fn select_columns(rows: &QueryRows, names: &[&str]) -> QueryRows {
    let idx: Vec<usize> = names
        .iter()
        .filter_map(|n| rows.columns.iter().position(|c| c == n))
        .collect();
    QueryRows {
        columns: idx.iter().map(|&i| rows.columns[i].clone()).collect(),
        rows: rows
            .rows
            .iter()
            .map(|r| idx.iter().map(|&i| r[i].clone()).collect())
            .collect(),
    }
}

async fn show(db: &mut ReadOnlyDb, args: ShowArgs) -> anyhow::Result<()> {
    let id = args.id;
    let Some(run) = db.run_card(id).await? else {
        bail!(
            "run {id} is not in {} (see `ddsas runs list`)",
            args.db.db.display()
        );
    };
    let test_acc = match run.row.kind {
        RunKind::Train => pct(run.row.final_test_acc),
        RunKind::Search => trained_cells(&db.trainings_of(id).await?, run.row.dataset),
    };
    crate::outln!("{}", summary_table(&run, test_acc));
    print_logs(&args.db.db, id);
    let jobs = db.run_slurm_job_ids(id).await?;
    if !jobs.is_empty() {
        let queue = crate::exec::slurm::queue(&jobs);
        if let Some(job) = stranded_by(run.row.status, run.row.owner.as_deref(), &queue) {
            crate::outln!("run {id} is held for Slurm job {job}, which ended before it started: `ddsas runs cancel {id}` leaves it `interrupted` now, or a pull worker of its sweep (`ddsas sweep submit` again) hands it to a new job");
        }
        crate::outln!("{}", slurm_jobs_text(&jobs, queue));
    }
    let value: Value =
        serde_json::from_str(&run.row.config_json).context("the stored config is not JSON")?;
    crate::outln!(
        "\nconfig:\n{}",
        indent(&serde_yaml::to_string(&value).unwrap_or_default())
    );
    let epochs = db.run_epochs(id, run.row.kind).await?;
    if epochs.is_empty() {
        crate::outln!("no epoch recorded yet");
    } else {
        crate::outln!("epochs:");
        print_rows(&epochs.table(), Format::Table)?;
    }
    let genotype = match &run.row.final_genotype {
        None => db
            .last_genotype(id)
            .await?
            .map(|(_, g)| format!("{g} (last recorded epoch)")),
        Some(g) => Some(g.clone()),
    };
    if let Some(g) = genotype {
        crate::outln!("genotype: {g}");
    }
    if let Some(e) = &run.row.error {
        crate::outln!("error: {e}");
    }
    Ok(())
}

/// The facts of `runs show`: one line per fact, `test_acc` being what the
/// run's trained cells or its own training reached.
fn summary_table(run: &RunCard, test_acc: String) -> Table {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let int = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let mut rows: Vec<(&str, String)> = vec![
        (
            "run",
            format!("{}  (fingerprint {})", run.row.id, run.row.fingerprint),
        ),
        ("status", run.row.status.to_string()),
        (
            "method / space / dataset",
            format!(
                "{} / {} / {}",
                run.method_text(),
                run.row.space.name(),
                run.row.dataset.name()
            ),
        ),
        ("seed", run.row.seed.to_string()),
        ("sweeps", opt(&run.sweeps)),
        (
            "epochs",
            format!("{}/{}", run.row.epochs_done, run.row.epochs_total),
        ),
        ("final valid acc", pct(run.row.final_valid_acc)),
        ("best valid acc", pct(run.row.best_valid_acc)),
        ("test acc (trained cell)", test_acc),
        ("parameters", int(run.row.params)),
        ("trains the cell of search", opt(&run.parent)),
        ("skip (normal cell, last epoch)", int(run.skip_normal)),
        (
            "wall (search or training)",
            run.row
                .wall_s
                .map_or("- (not finished)".into(), |w| real_text(w) + " s"),
        ),
        ("attempts", run.row.attempts.to_string()),
        (
            "device / owner / pid",
            format!(
                "{} / {} / {}",
                opt(&run.row.device),
                opt(&run.row.owner),
                int(run.row.pid)
            ),
        ),
        (
            "created / started / finished (UTC)",
            format!(
                "{} / {} / {}",
                opt(&run.created),
                opt(&run.started),
                opt(&run.finished)
            ),
        ),
        ("last heartbeat (UTC)", opt(&run.heartbeat)),
        ("checkpoint", opt(&run.row.checkpoint_path)),
    ];
    if run.row.space == SpaceKind::Nb201 {
        rows.insert(9, ("NAS-Bench-201 test acc", nb201_accuracy(&run.nb201)));
    }
    if run.row.kind == RunKind::Train {
        // After the attempts: the processes of the last one.
        let at = rows
            .iter()
            .position(|(k, _)| *k == "attempts")
            .map_or(rows.len(), |i| i + 1);
        rows.insert(at, ("ranks", run.row.ranks_text().unwrap_or_default()));
    }
    let mut summary = Table::new();
    summary.load_preset(UTF8_FULL_CONDENSED);
    for (k, v) in rows {
        summary.add_row(vec![k.to_owned(), v]);
    }
    summary
}

/// The Slurm jobs of a run (`train --slurm`, or a sweep's training of
/// several ranks), each with its state as squeue's `queue` answer lists
/// it, or one line saying why squeue could not tell.
fn slurm_jobs_text(
    jobs: &[String],
    queue: Result<Vec<QueuedTask>, crate::exec::slurm::ClientError>,
) -> String {
    format!(
        "slurm job(s): {}",
        crate::exec::slurm::squeue::jobs_text(jobs, queue)
    )
}

/// The job a run in `status`, held by `owner`, is held for (owner
/// `slurm:<job>`, `running`) when `queue` (squeue) says it ended: its
/// rank 0 never took the run over.
fn stranded_by(
    status: RunStatus,
    owner: Option<&str>,
    queue: &Result<Vec<QueuedTask>, crate::exec::slurm::ClientError>,
) -> Option<String> {
    let tasks = queue.as_ref().ok()?;
    if status != RunStatus::Running {
        return None;
    }
    match crate::exec::process::Owner::parse(owner?)? {
        crate::exec::process::Owner::SlurmJob { job } => tasks
            .iter()
            .filter(|t| t.job == job)
            .all(QueuedTask::ended)
            .then_some(job),
        _ => None,
    }
}

/// The jobs of `jobs` that have not ended as `queue` (squeue) answers:
/// a job it no longer lists, or lists in an end state, has; every job when
/// squeue cannot answer (scancel then says what it can).
fn live_jobs(
    jobs: Vec<String>,
    queue: impl FnOnce(&[String]) -> Result<Vec<QueuedTask>, crate::exec::slurm::ClientError>,
) -> Vec<String> {
    let Ok(tasks) = queue(&jobs) else {
        return jobs;
    };
    jobs.into_iter()
        .filter(|job| tasks.iter().any(|t| &t.job == job && !t.ended()))
        .collect()
}

/// scancels the Slurm jobs recorded for run `args.id`; a run with none is
/// told apart from one that does not exist. Returns the run's owner when
/// it is held for one of the cancelled jobs, or for one that already
/// ended (`slurm:<job>`: a job that had not started, whose rank 0 never
/// took the run), to be released.
async fn cancel(db: &mut ReadOnlyDb, args: &ShowArgs) -> anyhow::Result<Option<String>> {
    let id = args.id;
    let Some(run) = db.run_card(id).await? else {
        bail!(
            "run {id} is not in {} (see `ddsas runs list`)",
            args.db.db.display()
        );
    };
    let jobs = db.run_slurm_job_ids(id).await?;
    if jobs.is_empty() {
        bail!(
            "run {id} has no Slurm job recorded (`ddsas train --slurm` and a sweep's trainings of several ranks record one; a sweep's jobs stop with `ddsas sweep cancel NAME`); a run on this machine stops with Ctrl-C or `kill {}` of its process",
            run.row.pid.map_or("PID".to_owned(), |p| p.to_string())
        );
    }
    let held_for =
        |job: &String| crate::exec::process::Owner::SlurmJob { job: job.clone() }.to_string();
    let live = live_jobs(jobs.clone(), crate::exec::slurm::queue);
    if live.is_empty() {
        // Still held for a job that ended: it never started (a plain
        // scancel while it was pending), and its run is released here
        // rather than when a pull worker next looks.
        let stranded = run.row.owner.filter(|owner| {
            run.row.status == RunStatus::Running && jobs.iter().any(|j| &held_for(j) == owner)
        });
        if stranded.is_none() {
            crate::outln!("run {id}: its Slurm job(s) have ended (squeue lists none of them as pending or running); nothing to cancel");
        }
        return Ok(stranded);
    }
    let jobs = live;
    crate::exec::slurm::cancel(&jobs)
        .with_context(|| format!("scancel {} (the Slurm job(s) of run {id})", jobs.join(" ")))?;
    crate::outln!(
        "scancel {}: run {id}'s ranks stop at the next step, leaving it `interrupted` with its checkpoint; the same `ddsas train ... --slurm` plus --resume submits the rest",
        jobs.join(" ")
    );
    Ok(run.row.owner.filter(|owner| {
        run.row.status == RunStatus::Running && jobs.iter().any(|j| &held_for(j) == owner)
    }))
}

/// Puts run `args.id`, held by `owner` for a job cancelled before it
/// started, back to `interrupted` (no rank of that job will), so that the
/// next `train --slurm --resume` or pull worker takes it at once.
fn release_held(rt: &Runtime, args: &ShowArgs, owner: &str) -> anyhow::Result<()> {
    let store = args.db.open(rt)?;
    let message = crate::exec::slurm::JOB_NEVER_STARTED;
    let released = rt.block_on(store.release_run(args.id, owner, Some(message)));
    rt.block_on(store.close());
    if released? {
        crate::outln!(
            "run {}: its job had not started; the run is `interrupted` now",
            args.id
        );
    }
    Ok(())
}

/// The paths of run `id`'s log files beside the database, if any.
fn print_logs(db: &crate::store::DbLocation, id: i64) {
    let logs: Vec<String> = crate::exec::run_logs(db, id)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    if !logs.is_empty() {
        crate::outln!("logs:\n  {}", logs.join("\n  "));
    }
}

async fn best(db: &mut ReadOnlyDb, args: BestArgs) -> anyhow::Result<()> {
    sweep_exists(db, &args.sweep).await?;
    let columns = db.columns_of("run_summary").await?;
    let by = args
        .by
        .strip_prefix('-')
        .map_or((args.by.as_str(), true), |rest| (rest, false));
    let (metric, highest) = by;
    sort_key(metric, &columns, "--by")?;
    let rows = db
        .best_runs(&args.sweep, metric, highest, args.limit)
        .await?;
    if rows.rows.is_empty() {
        bail!(
            "sweep `{}` has no done run with a value for `{metric}` yet (see `ddsas sweep status {}`)",
            args.sweep,
            args.sweep
        );
    }
    let mut cols: Vec<&str> = LIST_COLUMNS.to_vec();
    if !cols.contains(&metric) {
        cols.insert(3, metric);
    }
    print_rows(&select_columns(&rows, &cols), Format::Table)?;
    crate::outln!(
        "best by {metric} ({}): run {} with {metric} = {}\ngenotype: {}",
        if highest { "highest" } else { "lowest" },
        cell_text(rows.cell(0, "id")),
        cell_text(rows.cell(0, metric)),
        cell_text(rows.cell(0, "genotype"))
    );
    Ok(())
}

async fn compare(db: &mut ReadOnlyDb, args: CompareArgs) -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for &id in &args.ids {
        let rows = db.run_with_config(id).await?;
        if rows.rows.is_empty() {
            bail!(
                "run {id} is not in {} (see `ddsas runs list`)",
                args.db.db.display()
            );
        }
        runs.push(rows);
    }
    let configs: Vec<serde_json::Map<String, Value>> = runs
        .iter()
        .map(|r| config_map(r.cell(0, "config_json").as_str().unwrap_or_default()))
        .collect();
    let keys = differing_keys(&configs, false);
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec!["".to_owned()];
    header.extend(args.ids.iter().map(|id| format!("run {id}")));
    table.set_header(header);
    for key in &keys {
        let mut row = vec![key.clone()];
        row.extend(configs.iter().map(|c| config_text(c, key)));
        table.add_row(row);
    }
    let metrics: [(&str, Metric); 6] = [
        ("status", |r| cell_text(r.cell(0, "status"))),
        ("epochs", |r| {
            format!(
                "{}/{}",
                cell_text(r.cell(0, "epochs_done")),
                cell_text(r.cell(0, "epochs_total"))
            )
        }),
        ("valid acc", |r| pct(r.cell(0, "valid_acc").as_f64())),
        ("best valid acc", |r| {
            pct(r.cell(0, "best_valid_acc").as_f64())
        }),
        ("skip (normal)", |r| cell_text(r.cell(0, "skip_normal"))),
        ("wall s", |r| cell_text(r.cell(0, "wall_s"))),
    ];
    for (name, get) in metrics {
        let mut row = vec![name.to_owned()];
        row.extend(runs.iter().map(get));
        table.add_row(row);
    }
    if keys.is_empty() {
        crate::outln!("(the configs are identical except for what the table shows)");
    }
    crate::outln!("{table}");
    for (id, r) in args.ids.iter().zip(&runs) {
        crate::outln!("run {id} genotype: {}", cell_text(r.cell(0, "genotype")));
    }
    Ok(())
}

/// How `runs compare` shows one final metric of a run.
type Metric = fn(&QueryRows) -> String;

/// The config keys (in `SearchConfig` order) whose shown value differs
/// between the given configs. With `among_used`, a key counts only if the
/// runs that use it disagree (a sweep's DDSAS knobs are not "varied" just
/// because its baselines show `-`); without, `-` against a value counts too
/// (a side-by-side comparison shows it).
pub(crate) fn differing_keys(
    configs: &[serde_json::Map<String, Value>],
    among_used: bool,
) -> Vec<String> {
    let search_keys = crate::sweep::config_keys();
    // Train runs' keys after the search keys (train runs compare too).
    let train_only = crate::config::train::train_config_keys()
        .iter()
        .filter(|k| !search_keys.contains(k));
    search_keys
        .iter()
        .chain(train_only)
        .filter(|k| {
            let mut shown: Vec<String> = configs.iter().map(|c| config_text(c, k)).collect();
            if among_used {
                shown.retain(|v| v != "-");
            }
            shown.iter().any(|v| v != &shown[0])
        })
        .cloned()
        .collect()
}

/// A stored `config_json` as a map of keys (empty if it is not JSON).
pub(crate) fn config_map(json: &str) -> serde_json::Map<String, Value> {
    serde_json::from_str(json).unwrap_or_default()
}

/// A config value as shown in comparisons: `-` for knobs the run's method
/// does not use (its resolved config pins them).
pub(crate) fn config_text(config: &serde_json::Map<String, Value>, key: &str) -> String {
    let method = config
        .get("method")
        .and_then(Value::as_str)
        .and_then(crate::config::Method::parse);
    if method.is_some_and(|m| !m.uses(key)) {
        return "-".into();
    }
    match config.get(key) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// The test accuracy of a search's trained cell, a line per train config
/// it was trained under (two configs are two results, never one mean): "97.10% under appendix B.1 (epochs=600): run 70", with the mean
/// over a config's done runs and its runs not done yet; "-" if none.
fn trained_cells(trainings: &[Training], search_dataset: crate::data::DatasetKind) -> String {
    use crate::report::trainings::TrainSetting;
    let mut configs: Vec<(TrainSetting, Vec<&Training>)> = Vec::new();
    for t in trainings {
        let setting = TrainSetting::of_json(&t.config_json, search_dataset);
        match configs.iter_mut().find(|(s, _)| *s == setting) {
            Some((_, runs)) => runs.push(t),
            None => configs.push((setting, vec![t])),
        }
    }
    if configs.is_empty() {
        return "- (not trained; `ddsas train --from-run ID`)".into();
    }
    let lines: Vec<String> = configs
        .iter()
        .map(|(setting, runs)| {
            let (done, not_done): (Vec<&Training>, Vec<&Training>) =
                runs.iter().partition(|t| t.status == RunStatus::Done);
            let accs: Vec<f64> = done.iter().filter_map(|t| t.test_acc).collect();
            let value = match accs.len() {
                0 => "-".to_string(),
                1 => format!("{:.2}%", 100.0 * accs[0]),
                n => format!(
                    "{:.2}% (mean of {n})",
                    100.0 * accs.iter().sum::<f64>() / n as f64
                ),
            };
            let ids: Vec<i64> = done.iter().map(|t| t.train_run_id).collect();
            let mut line = format!("{value} under {}", setting.label());
            if !ids.is_empty() {
                line += &format!(": {}", crate::report::runs_text(&ids));
            }
            for t in not_done {
                line += &format!(" (run {} {})", t.train_run_id, t.status);
            }
            line
        })
        .collect();
    lines.join("\n")
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |a| format!("{:.2}%", 100.0 * a))
}

/// The benchmark accuracy stored with a NB201 run, per benchmark dataset
/// (percent already), or how to get it.
fn nb201_accuracy(nb201: &Nb201Accuracy) -> String {
    let parts: Vec<String> = nb201
        .by_dataset()
        .iter()
        .filter_map(|(dataset, a)| a.map(|a| format!("{dataset} {a:.2}%")))
        .collect();
    if parts.is_empty() {
        "- (no benchmark table covers it: `ddsas nb201 import FILE --dataset cifar10`)".into()
    } else {
        parts.join(", ")
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::slurm::ClientError;

    #[test]
    fn a_runs_slurm_jobs_show_squeues_state_and_only_live_ones_are_cancelled() {
        let jobs = vec!["41".to_owned(), "42".to_owned()];
        let running = QueuedTask {
            job: "42".into(),
            task: None,
            state: "RUNNING".into(),
            elapsed: "1:02".into(),
            where_or_why: "node7".into(),
        };
        assert_eq!(
            slurm_jobs_text(&jobs, Ok(vec![running.clone()])),
            "slurm job(s): 41 (ended: squeue no longer lists it), 42 RUNNING 1:02 node7"
        );
        let live = |state: &str| {
            let task = QueuedTask {
                state: state.into(),
                ..running.clone()
            };
            live_jobs(jobs.clone(), |_| Ok(vec![task]))
        };
        assert_eq!(live("RUNNING"), ["42"]);
        assert_eq!(live("PENDING"), ["42"]);
        assert!(live("COMPLETED").is_empty());
        assert_eq!(
            live_jobs(jobs.clone(), |_| Err(ClientError::Missing("squeue".into()))),
            jobs,
            "without squeue every job is scancelled"
        );
        let missing = slurm_jobs_text(&jobs, Err(ClientError::Missing("squeue".into())));
        let stranded = |state: &str, owner: &str| {
            let task = QueuedTask {
                state: state.into(),
                ..running.clone()
            };
            stranded_by(RunStatus::Running, Some(owner), &Ok(vec![task]))
        };
        assert_eq!(stranded("CANCELLED", "slurm:42").as_deref(), Some("42"));
        assert_eq!(stranded("PENDING", "slurm:42"), None);
        assert_eq!(
            stranded("RUNNING", "slurm:41").as_deref(),
            Some("41"),
            "a job squeue no longer lists has ended"
        );
        let done = stranded_by(RunStatus::Done, Some("slurm:42"), &Ok(vec![]));
        assert_eq!(done, None);
        let unknown = stranded_by(
            RunStatus::Running,
            Some("slurm:42"),
            &Err(ClientError::Missing("squeue".into())),
        );
        assert_eq!(unknown, None, "without squeue nothing is said");
        assert!(
            missing.starts_with("slurm job(s): 41, 42 (squeue cannot tell their state: `squeue` is not installed here"),
            "{missing}"
        );
    }
}
