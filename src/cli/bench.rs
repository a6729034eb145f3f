//! `ddsas bench`: numbers that the speed targets are checked against.
//!
//! `bench step` mirrors `shared/bench/ref_search_step.py` knob for knob and
//! prints the same two lines, so the two can be run side by side. `bench
//! store` runs `exec::load` and prints its figures.

use std::process::ExitCode;
use std::time::Duration;

use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use indicatif::ProgressBar;

use crate::exec::load::{self, Latencies, LoadPlan, LoadReport};
use crate::store::Backend;

/// The benchmarks that run steps and batches on libtorch.
#[cfg(feature = "engine")]
mod engine;

/// Benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCmd {
    /// Median seconds per search step (architecture step + weight step) on
    /// random data, after one warm-up step; same knobs and output as the
    /// PyTorch reference `ref_search_step.py`.
    Step(StepArgs),
    /// Median seconds per training step of the evaluation network (the
    /// searched cell trained from scratch), after one warm-up step; same
    /// knobs and output as the PyTorch reference `ref_train_step.py`.
    #[command(
        after_help = "Example, side by side with the reference:\n  ddsas bench train --layers 8 --C 16 --batch 32 --threads 1\n  python bench/ref_train_step.py --layers 8 --C 16 --batch 32 --threads 1\n  ddsas bench train --imagenet --batch 8 --threads 2\n  python bench/ref_train_step.py --imagenet --channels-last --batch 8 --threads 2"
    )]
    Train(TrainArgs),
    /// Images per second of the augmenting loader on CIFAR-shaped data, or
    /// with --imagenet DIR of the whole ImageNet training pipeline (read,
    /// decode, crop, flip, jitter, normalise, batch) on that folder.
    #[command(
        after_help = "Example, side by side with torchvision (one worker each):\n  ddsas bench data --imagenet /tmp/inbench --threads 1 --batch 64 --crop 224 --batches 40\n  python bench/ref_imagenet_loader.py /tmp/inbench --workers 1 --batch 64 --crop 224 --batches 40\nbench/make_imagenet_bench.py makes such a folder from photographs that scikit-learn ships."
    )]
    Data(DataArgs),
    /// The run history under load: simulated pull workers (no training),
    /// each with its own connection pool, claim runs of a fresh sweep and
    /// write full DARTS-space epoch records with heartbeats in between;
    /// prints rates, latencies, errors and growth, and checks that no run
    /// was claimed twice and no acknowledged record was lost (exit status 1
    /// if either happened). Writes a sweep and its runs into the database:
    /// point it at a scratch one.
    #[command(
        after_help = "Examples:\n  ddsas bench store --db postgres://postgres@127.0.0.1:55432/load --workers 256 --seconds 180\n  ddsas bench store --db /tmp/load.db --workers 16 --seconds 180\n  ddsas bench store --db /tmp/load.db --workers 16 --seconds 60 --epoch-every 0   # the ceiling"
    )]
    Store(StoreArgs),
}

/// Knobs of `bench step` (named as in the reference script).
#[derive(Debug, clap::Args)]
#[allow(non_snake_case)]
pub struct StepArgs {
    /// ddsas or darts (or gdas).
    #[arg(long, default_value = "ddsas")]
    method: String,
    /// DDSAS subspace size: ops per cell type, `none` included, as the
    /// reference counts them (14..=112).
    #[arg(long = "L", default_value_t = 28)]
    L: u32,
    /// Batch size of both steps.
    #[arg(long, default_value_t = 64)]
    batch: i64,
    /// Cells of the DARTS supernet.
    #[arg(long, default_value_t = 8)]
    layers: u32,
    /// Initial channels.
    #[arg(long = "C", default_value_t = 16)]
    C: u32,
    /// Image side (at least 4: the supernet halves it twice).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(i64).range(4..))]
    size: i64,
    /// Timed steps (after one warm-up step).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    steps: u64,
    /// CPU threads (0: libtorch's default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// `wall` seconds, or `cpu`: this thread's CPU seconds, which a busy
    /// machine does not inflate (meaningful with `--threads 1` on CPU).
    #[arg(long, value_enum, default_value_t = Clock::Wall)]
    clock: Clock,
    /// On CUDA, let cuDNN time its convolution algorithms for each new
    /// shape and keep the fastest (the reference leaves this off).
    #[arg(long)]
    cudnn_benchmark: bool,
    /// Activation layout: `auto` (channels-last on CPU, channels-first on
    /// CUDA, as searches run), `nchw` or `nhwc`.
    #[arg(long, value_enum, default_value_t = Layout::Auto)]
    layout: Layout,
    /// DDSAS: run this subspace instead of drawing one: a JSON
    /// `[cell type][edge][op]` of booleans, e.g. the reference's own mask
    /// from `bench/ref_mask.py`, so both time exactly the same ops (at one
    /// L both draw as many ops, but not the same ones).
    #[arg(long)]
    mask: Option<std::path::PathBuf>,
}

/// What `bench step` times with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Clock {
    /// Wall-clock seconds.
    Wall,
    /// This thread's CPU seconds.
    Cpu,
}

/// Activation layout of `bench step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// As searches run: channels-last on CPU, channels-first on CUDA.
    Auto,
    /// Channels-first.
    Nchw,
    /// Channels-last.
    Nhwc,
}

/// Knobs of `bench train`: those of `bench/ref_train_step.py`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The mobile-setting ImageNet network (DARTS's NetworkImageNet): its
    /// stem, and 14 cells, C 48, 224 px, 1000 classes, no drop path unless
    /// given.
    #[arg(long)]
    imagenet: bool,
    /// Cells of the evaluation network [default: 20; 14 with --imagenet].
    #[arg(long, value_parser = clap::value_parser!(i64).range(3..))]
    layers: Option<i64>,
    /// Initial channels [default: 36; 48 with --imagenet].
    #[arg(long = "C", value_parser = clap::value_parser!(i64).range(1..))]
    channels: Option<i64>,
    /// Batch size.
    #[arg(long, default_value_t = 96, value_parser = clap::value_parser!(i64).range(1..))]
    batch: i64,
    /// Image side (at least 8: the network halves it twice; a multiple of
    /// 32 with --imagenet, whose stem divides it by 8 first) [default: 32;
    /// 224 with --imagenet].
    #[arg(long, value_parser = clap::value_parser!(i64).range(8..))]
    size: Option<i64>,
    /// Classes [default: 10; 1000 with --imagenet].
    #[arg(long, value_parser = clap::value_parser!(i64).range(2..))]
    classes: Option<i64>,
    /// Timed steps (after one warm-up step).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    steps: u64,
    /// CPU threads (0: libtorch's default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// The cell: a published name (darts_v1, darts_v2, nasnet_a,
    /// amoebanet_a), a genotype text, or `@FILE` / `@FILE:NAME` (a file,
    /// or one genotype of a genotypes.py).
    #[arg(long, default_value = "darts_v2")]
    genotype: String,
    /// Weight of the auxiliary head's loss (0: no auxiliary head).
    #[arg(long, default_value_t = 0.4)]
    auxiliary: f64,
    /// Drop-path probability [default: 0.3; 0 with --imagenet].
    #[arg(long = "drop-path")]
    drop_path: Option<f64>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Clock of the timings.
    #[arg(long, value_enum, default_value_t = Clock::Wall)]
    clock: Clock,
}

/// The network `bench train` times, its defaults filled in.
#[cfg(feature = "engine")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct TrainKnobs {
    /// The evaluation network's shape.
    pub shape: crate::arch::shape::EvalShape,
    /// Drop-path probability.
    pub drop_path: f64,
}

#[cfg(feature = "engine")]
impl TrainArgs {
    /// The reference's defaults for what was not given: CIFAR's network
    /// (20 cells, C 36, 32 px, 10 classes, drop path 0.3), or with
    /// `--imagenet` the mobile setting's (14 cells, C 48, 224 px, 1000
    /// classes, no drop path).
    pub(crate) fn knobs(&self) -> anyhow::Result<TrainKnobs> {
        use crate::arch::shape::{EvalShape, Stem};
        let (layers, channels, size, classes, drop_path, stem) = if self.imagenet {
            (14, 48, 224, 1000, 0.0, Stem::ImageNet)
        } else {
            (20, 36, 32, 10, 0.3, Stem::Cifar)
        };
        let size = self.size.unwrap_or(size);
        if self.imagenet && size % 32 != 0 {
            anyhow::bail!("--size {size}: the ImageNet network takes multiples of 32 px (its stem divides the side by 8, and the two reductions halve it exactly)");
        }
        let drop_path = self.drop_path.unwrap_or(drop_path);
        if !(0.0..1.0).contains(&drop_path) {
            anyhow::bail!("--drop-path {drop_path}: a probability in [0, 1)");
        }
        Ok(TrainKnobs {
            shape: EvalShape {
                layers: self.layers.unwrap_or(layers),
                channels: self.channels.unwrap_or(channels),
                in_channels: 3,
                classes: self.classes.unwrap_or(classes),
                auxiliary: self.auxiliary > 0.0,
                stem,
                image_size: size,
            },
            drop_path,
        })
    }
}

/// Knobs of `bench data`.
#[derive(Debug, clap::Args)]
pub struct DataArgs {
    /// Batch size.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(i64).range(1..))]
    batch: i64,
    /// Images in the synthetic CIFAR-shaped set.
    #[arg(long, default_value_t = 25_000, value_parser = clap::value_parser!(i64).range(1..))]
    images: i64,
    /// CPU threads (0: libtorch's default); with --imagenet, the decoding
    /// workers (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// An ImageNet-layout folder (train/<wnid>/*.JPEG, val/...): time the
    /// ImageNet training pipeline on its training images instead.
    #[arg(long, value_name = "DIR")]
    imagenet: Option<std::path::PathBuf>,
    /// With --imagenet: the crop side.
    #[arg(long, default_value_t = 224, value_parser = clap::value_parser!(i64).range(1..))]
    crop: i64,
    /// With --imagenet: batches timed after one warm-up batch (epochs
    /// repeat, with new seeds, until there are enough).
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..))]
    batches: u64,
}

/// Knobs of `bench store`.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The database to load: a SQLite file or a PostgreSQL URL (no
    /// default: the test writes a sweep and its runs into it).
    #[arg(long)]
    db: crate::store::DbLocation,
    /// Simulated workers, each with its own store (2 connections).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    workers: u64,
    /// Seconds the workers claim and write.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: u64,
    /// Runs in the sweep (default: 4 per worker); a worker that finds none
    /// left stops.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    runs: Option<u64>,
    /// Epochs per run.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    epochs: u32,
    /// Seconds between two epoch records of a run (0: back to back, the
    /// ceiling). The default is 10x the paper's rate: its 64-point grid is
    /// about 64 x 3 GPU-hours of 50-epoch searches, one epoch per 216 s.
    #[arg(long, default_value = "21.6", value_parser = seconds)]
    epoch_every: Duration,
    /// Seconds between two heartbeats of a run.
    #[arg(long, default_value = "5", value_parser = positive_seconds)]
    heartbeat_every: Duration,
}

/// A number of seconds, 0 or more.
fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("`{text}`: seconds must be a finite number, 0 or more"))
}

/// A number of seconds above 0.
fn positive_seconds(text: &str) -> Result<Duration, String> {
    seconds(text).and_then(|d| {
        if d.is_zero() {
            Err("must be more than 0 seconds".into())
        } else {
            Ok(d)
        }
    })
}

impl BenchCmd {
    /// What it computes, for the allocator settings of that workload
    /// (`exec::memory`): `bench train` trains, `bench step` searches.
    pub fn workload(&self) -> Option<crate::exec::memory::Workload> {
        match self {
            BenchCmd::Train(_) => Some(crate::exec::memory::Workload::Training),
            BenchCmd::Step(_) => Some(crate::exec::memory::Workload::Search),
            BenchCmd::Data(_) | BenchCmd::Store(_) => None,
        }
    }

    /// The command, when it runs on libtorch (everything but `bench
    /// store`, whose simulated workers write records without computing).
    pub fn needs_engine(&self) -> Option<&'static str> {
        match self {
            BenchCmd::Step(_) => Some("bench step"),
            BenchCmd::Train(_) => Some("bench train"),
            BenchCmd::Data(_) => Some("bench data"),
            BenchCmd::Store(_) => None,
        }
    }

    /// Runs the benchmark and prints its figures; `bench store` exits with
    /// 1 when an invariant failed.
    pub fn run(self, rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
        match self {
            BenchCmd::Store(args) => bench_store(args, rt),
            #[cfg(feature = "engine")]
            BenchCmd::Step(args) => engine::bench_step(args).map(|()| ExitCode::SUCCESS),
            #[cfg(feature = "engine")]
            BenchCmd::Train(args) => engine::bench_train(args).map(|()| ExitCode::SUCCESS),
            #[cfg(feature = "engine")]
            BenchCmd::Data(args) => engine::bench_data(args).map(|()| ExitCode::SUCCESS),
            #[cfg(not(feature = "engine"))]
            other => Ok(crate::cli::no_engine(
                other.needs_engine().unwrap_or("bench"),
            )),
        }
    }
}

/// `bench store`: runs the load test and prints its figures.
fn bench_store(a: StoreArgs, rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    let workers = usize::try_from(a.workers)?;
    let plan = LoadPlan {
        workers,
        duration: Duration::from_secs(a.seconds),
        runs: a.runs.map_or(Ok(4 * workers), usize::try_from)?,
        epochs: a.epochs,
        epoch_every: a.epoch_every,
        heartbeat_every: a.heartbeat_every,
    };
    let bar = ProgressBar::new(a.seconds);
    let report = rt.block_on(load::run(&a.db, plan, bar.clone()));
    bar.finish_and_clear();
    let report = report?;
    print_load_report(&report);
    Ok(if report.invariants.hold() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_load_report(r: &LoadReport) {
    let p = &r.plan;
    let pace = if p.epoch_every.is_zero() {
        "back to back".to_owned()
    } else {
        format!("one every {:.1} s (±10 %)", p.epoch_every.as_secs_f64())
    };
    crate::outln!(
        "bench store: {} workers on {} ({}), sweep {}",
        p.workers,
        match r.backend {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        },
        r.database,
        r.sweep
    );
    crate::outln!(
        "{} runs of {} epochs, epochs {pace}, a heartbeat every {:.1} s; {} of {} stores opened in {:.1} s",
        p.runs,
        p.epochs,
        p.heartbeat_every.as_secs_f64(),
        r.connected,
        p.workers,
        r.connect_s
    );
    crate::outln!("{}", operations_table(r));
    crate::outln!(
        "runs: {} finished, {} handed back at the deadline, {} given up after an error; {} workers found no run left",
        r.finished,
        r.left,
        r.abandoned,
        r.ran_dry
    );
    if r.ran_dry > 0 && r.window_s < p.duration.as_secs_f64() {
        crate::outln!(
            "note: the sweep ran out of runs after {:.1} s of {} s; the rates are over those seconds (more runs: --runs)",
            r.window_s,
            p.duration.as_secs()
        );
    }
    crate::outln!("{}", size_line(r));
    if r.errors.is_empty() {
        crate::outln!("errors: none");
    } else {
        crate::outln!("errors:");
        for (error, count) in &r.errors {
            crate::outln!("  {count} x {error}");
        }
    }
    crate::outln!("{}", invariants_line(r));
}

/// Counts, rates and latencies of the three operations over the window.
fn operations_table(r: &LoadReport) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec![
        format!("{:.1} s", r.window_s),
        "done".into(),
        "per s".into(),
        "p50".into(),
        "p99".into(),
    ]);
    for (what, latencies) in [
        ("claims", &r.claims),
        ("epoch writes", &r.epoch_writes),
        ("heartbeats", &r.heartbeats),
    ] {
        table.add_row(vec![
            what.to_owned(),
            latencies.count().to_string(),
            format!("{:.2}", r.rate(latencies.count())),
            milliseconds(latencies, 0.5),
            milliseconds(latencies, 0.99),
        ]);
    }
    for column in 1..5 {
        if let Some(c) = table.column_mut(column) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

fn milliseconds(latencies: &Latencies, q: f64) -> String {
    latencies
        .quantile(q)
        .map_or_else(|| "-".into(), |s| format!("{:.1} ms", s * 1e3))
}

fn size_line(r: &LoadReport) -> String {
    let mib = |bytes: f64| bytes / f64::from(1u32 << 20);
    let growth = r.growth_per_1000_epochs().map_or_else(
        || "no epochs written".into(),
        |g| format!("{:.2} MiB per 1,000 epochs", mib(g)),
    );
    format!(
        "database size: {:.1} MiB before, {:.1} MiB after: {growth}",
        mib(r.size_before as f64),
        mib(r.size_after as f64)
    )
}

/// The line the test's verdict is read from.
fn invariants_line(r: &LoadReport) -> String {
    let i = &r.invariants;
    format!(
        "invariants: {}: {} double claims ({} runs claimed by two workers, {} with attempts > 1, {} with another owner), {} lost records ({} acknowledged epochs checked)",
        if i.hold() { "held" } else { "FAILED" },
        i.double_claims(),
        i.claimed_twice,
        i.attempted_twice,
        i.wrong_owner,
        i.lost,
        i.acknowledged
    )
}
