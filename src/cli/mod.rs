//! The command line: a clap derive tree, one module per command.
//!
//! `main.rs` only calls [`main`]; errors map to exit codes here, in one place.

pub mod bench;
pub mod data;
#[cfg(feature = "engine")]
pub(crate) mod launch;
/// The ranks of a data-parallel training: the launcher that starts them
/// (`train --nproc`, a sweep's worker of a training with `nproc`) and what
/// each rank does.
#[cfg(feature = "dist")]
pub(crate) mod ranks;
pub mod register;
pub mod report;
pub mod runs;
pub mod search;
pub mod serve;
pub mod sql;
pub mod submit;
pub mod sweep;
pub mod train;
pub mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::runtime::Runtime;

use crate::store::{DbLocation, ReadOnlyDb, Store};

pub use crate::exec::EXIT_INTERRUPTED;

/// DDSAS, DARTS and GDAS architecture searches on libtorch, with every run
/// recorded in SQLite.
#[derive(Debug, Parser)]
#[command(name = "ddsas", version, long_version = long_version(), about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--version`: the version, then the optional parts this binary was
/// built with (`-V` gives the version alone), so that a bug report or a
/// cluster's module says whether `--nproc`, NCCL and libjpeg-turbo are in.
fn long_version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        let mut parts = vec![if cfg!(feature = "engine") {
            "engine (libtorch)"
        } else {
            "no engine (light build: reports, serve, history)"
        }];
        #[cfg(feature = "dist")]
        parts.push(if crate::nas::dist::NCCL_BUILT {
            "dist (Gloo, NCCL)"
        } else {
            "dist (Gloo)"
        });
        if cfg!(feature = "turbojpeg") {
            parts.push("turbojpeg (libjpeg-turbo)");
        } else if cfg!(feature = "engine") {
            parts.push("JPEG by zune-jpeg (no turbojpeg)");
        }
        format!(
            "{}\nbuilt with: {}",
            env!("CARGO_PKG_VERSION"),
            parts.join(", ")
        )
    })
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one search from a config and record it in the database.
    Search(search::SearchCmd),
    /// Train a searched cell from scratch (DARTS protocol) and record its test accuracy.
    Train(train::TrainCmd),
    /// Expand a sweep file into runs and run them on the local GPUs or CPU.
    #[command(subcommand)]
    Sweep(sweep::SweepCmd),
    /// Get the CIFAR datasets (download, verify, unpack) and list what the data folder holds.
    #[command(subcommand)]
    Data(data::DataCmd),
    /// Query the run history.
    #[command(subcommand)]
    Runs(runs::RunsCmd),
    /// Read-only SQL on the run history, as a table, CSV or JSON.
    Sql(sql::SqlCmd),
    /// Execute one claimed run of a sweep (started by `ddsas sweep run`).
    #[command(hide = true)]
    Worker(worker::WorkerCmd),
    /// Draw the paper's figures and tables from the database.
    #[command(subcommand)]
    Report(report::ReportCmd),
    /// NAS-Bench-201 benchmark tables (`ddsas nb201 import`).
    #[command(subcommand)]
    Nb201(report::Nb201Cmd),
    /// Serve a read-only web view of sweeps, runs, curves and figures.
    Serve(serve::ServeCmd),
    /// Benchmarks: search-step and training-step time (comparable with the
    /// PyTorch references), loader throughput, and the run history under
    /// the load of many workers.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
}

/// Arguments shared by every command that opens the database.
#[derive(Debug, Clone, clap::Args)]
pub struct DbArgs {
    /// The run history: a SQLite file (`search` and `sweep run` create it)
    /// or a PostgreSQL URL, postgres://user@host:port/database.
    #[arg(long, default_value = "results.db", env = crate::store::DB_VARIABLE)]
    pub db: DbLocation,
}

/// How a sweep's workers are watched and retried: the same for `sweep run`
/// on one machine and the pull workers of `sweep submit --slurm`.
#[derive(Debug, Clone, clap::Args)]
pub struct FaultArgs {
    /// Retries of a run whose worker died (not of a run whose search
    /// failed); with --slurm, per task.
    #[arg(long, default_value_t = 2)]
    pub max_retries: u32,
    /// Take over a `running` run whose heartbeat is older than this many
    /// seconds (its orchestrator, task or node is gone); a worker silent
    /// that long (stopped, frozen) is killed and its run retried from its
    /// checkpoint.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub stale_after: f64,
    /// Kill and retry a run whose worker heartbeats but has finished no
    /// batch for this many seconds (a deadlock, a stuck GPU kernel, a hung
    /// file system). Default: 20 times its own mean batch time, at least 5
    /// minutes.
    #[arg(long, value_name = "SECONDS")]
    pub stall_after: Option<f64>,
}

/// What `search` and `train` share: where the config comes from, where
/// the run is recorded, and where and how it runs.
#[derive(Debug, Clone, clap::Args)]
pub struct JobArgs {
    /// YAML config; missing keys take the paper's defaults (`--print-config` lists every key).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Override a config key, e.g. `--set epochs=3`; values are YAML.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    #[command(flatten)]
    pub db: DbArgs,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Continue an interrupted or failed run from its last epoch checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Folder for epoch checkpoints (default: `checkpoints/<fingerprint>` beside the database).
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// CPU threads for libtorch (0: libtorch's default, all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Print only the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print every config key with its value (after --config and --set)
    /// and what it means, as YAML that --config reads back; run nothing.
    #[arg(long)]
    pub print_config: bool,
}

impl DbArgs {
    /// The run history, read-write (created with its schema if missing):
    /// what commands that record or change runs open, once.
    pub fn open(&self, rt: &Runtime) -> anyhow::Result<Store> {
        Ok(rt.block_on(Store::connect(&self.db))?)
    }

    /// The run history through a read-only connection: what commands that
    /// answer questions open, once, so that SQL the user writes cannot
    /// change anything or hold the write lock.
    pub fn open_read_only(&self, rt: &Runtime) -> anyhow::Result<ReadOnlyDb> {
        Ok(rt.block_on(ReadOnlyDb::open(&self.db))?)
    }
}

/// The default of `--query-timeout` for commands that run the user's SQL
/// (`ddsas sql`, `runs list --where`): generous, since a person waits and
/// can lift it.
pub const CLI_QUERY_TIMEOUT: u64 = 60;

/// `--query-timeout SECS` as a time limit: 0 lifts it.
pub fn query_limit(secs: u64) -> Option<std::time::Duration> {
    (secs > 0).then(|| std::time::Duration::from_secs(secs))
}

/// Says that `run` (a "run" or a "train run") is done already, with its
/// result: a done config is never run again.
pub fn say_already_done(kind: &str, run: &crate::store::RunRow, result: &str) {
    crate::outln!(
        "{kind} {} ({}) is already done: {result}\n(a done config is never run again; change a key, e.g. the seed, for a new run)",
        run.id,
        run.fingerprint
    );
}

impl Command {
    /// The command as typed (`search`, `sweep run`...) when it runs on
    /// libtorch: it trains, runs a worker, or starts workers (`sweep run`,
    /// and `sweep submit`, whose Slurm tasks run this same binary).
    fn needs_engine(&self) -> Option<&'static str> {
        match self {
            Command::Search(_) => Some("search"),
            Command::Train(_) => Some("train"),
            Command::Worker(_) => Some("worker"),
            Command::Sweep(sweep::SweepCmd::Run(_)) => Some("sweep run"),
            Command::Sweep(sweep::SweepCmd::Submit(_)) => Some("sweep submit"),
            Command::Bench(cmd) => cmd.needs_engine(),
            _ => None,
        }
    }

    /// Runs the command.
    fn run(self, rt: &Runtime) -> anyhow::Result<ExitCode> {
        match self {
            #[cfg(feature = "engine")]
            Command::Search(cmd) => cmd.run(rt),
            #[cfg(feature = "engine")]
            Command::Train(cmd) => cmd.run(rt),
            #[cfg(feature = "engine")]
            Command::Worker(cmd) => cmd.run(rt),
            #[cfg(not(feature = "engine"))]
            cmd @ (Command::Search(_) | Command::Train(_) | Command::Worker(_)) => {
                Ok(no_engine(cmd.needs_engine().unwrap_or_default()))
            }
            Command::Sweep(cmd) => cmd.run(rt),
            Command::Data(cmd) => cmd.run(),
            Command::Runs(cmd) => cmd.run(rt),
            Command::Sql(cmd) => cmd.run(rt),
            Command::Report(cmd) => cmd.run(rt),
            Command::Nb201(cmd) => cmd.run(rt),
            Command::Serve(cmd) => cmd.run(rt),
            Command::Bench(cmd) => cmd.run(rt),
        }
    }
}

/// Exit status of a command that this build cannot run (see [`no_engine`]).
pub const EXIT_NO_ENGINE: u8 = 2;

/// Says, in one line, that `ddsas <cmd>` needs the training engine that
/// this build was made without, and returns [`EXIT_NO_ENGINE`].
///
/// The light build (`cargo build --no-default-features`) exists so that a
/// results.db copied to a laptop can be reported on and served without a
/// 2.5 GB libtorch, and so that every command that does not train starts
/// without loading it; the training commands stay in its `--help` (the
/// command line is the same in both builds) and end here.
pub fn no_engine(cmd: &str) -> ExitCode {
    crate::errln!(
        "error: this ddsas was built without the training engine (cargo feature `engine`); `ddsas {cmd}` needs it: build with `cargo build --release` (default features)"
    );
    ExitCode::from(EXIT_NO_ENGINE)
}

/// The one async runtime of the process: database access, signals and the
/// orchestrator's worker processes. Two threads: the work that matters is
/// libtorch's, on its own threads.
fn runtime() -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Parses the arguments, runs the command, maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(cmd) = cli
        .command
        .needs_engine()
        .filter(|_| !cfg!(feature = "engine"))
    {
        return no_engine(cmd);
    }
    let workload = match &cli.command {
        Command::Train(_) => Some(crate::exec::memory::Workload::Training),
        Command::Search(_) => Some(crate::exec::memory::Workload::Search),
        Command::Bench(cmd) => cmd.workload(),
        _ => None,
    };
    if let Some(workload) = workload {
        // Before any thread starts: the allocator settings of the workload.
        crate::exec::memory::restart_with(workload);
    }
    crate::exec::guard::install_panic_hook();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("DDSAS_LOG"))
        .with_writer(std::io::stderr)
        .try_init();
    let result = runtime().and_then(|rt| cli.command.run(&rt));
    match result {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            crate::errln!("error: {}", error_text(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by `: `, leaving out a cause whose text
/// an outer message already quotes (many of ours say `...: {source}`, and
/// SQLite's errors repeat themselves through sqlx).
fn error_text(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
