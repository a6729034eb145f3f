//! `ddsas bench`: numbers that the speed targets are checked against.
//!
//! `bench step` mirrors `shared/bench/ref_search_step.py` knob for knob and
//! prints the same two lines, so the two can be run side by side. `bench
//! store` runs `exec::load` and prints its figures.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use indicatif::ProgressBar;
use rand::SeedableRng;
use tch::{Device, Kind, Tensor};

use crate::config::SearchConfig;
use crate::data::{Augment, Dataset, DatasetKind, ImageSet, Loader};
use crate::exec::device::{parse_device, set_threads};
use crate::exec::load::{self, Latencies, LoadPlan, LoadReport};
use crate::nas::search::Searcher;
use crate::nas::supernet::random_batch;
use crate::store::Backend;

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
        after_help = "Example, side by side with the reference:\n  ddsas bench train --layers 8 --C 16 --batch 32 --threads 1\n  python bench/ref_train_step.py --layers 8 --C 16 --batch 32 --threads 1"
    )]
    Train(TrainArgs),
    /// Images per second of the augmenting loader on CIFAR-shaped data.
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
    /// Cells of the evaluation network.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(3..))]
    layers: i64,
    /// Initial channels.
    #[arg(long = "C", default_value_t = 36, value_parser = clap::value_parser!(i64).range(1..))]
    channels: i64,
    /// Batch size.
    #[arg(long, default_value_t = 96, value_parser = clap::value_parser!(i64).range(1..))]
    batch: i64,
    /// Image side (at least 8: the network halves it twice).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(i64).range(8..))]
    size: i64,
    /// Timed steps (after one warm-up step).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    steps: u64,
    /// CPU threads (0: libtorch's default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// The cell: a published name (darts_v1, darts_v2), a genotype text, or
    /// `@FILE` / `@FILE:NAME` (a file, or one genotype of a genotypes.py).
    #[arg(long, default_value = "darts_v2")]
    genotype: String,
    /// Weight of the auxiliary head's loss (0: no auxiliary head).
    #[arg(long, default_value_t = 0.4)]
    auxiliary: f64,
    /// Drop-path probability.
    #[arg(long = "drop-path", default_value_t = 0.3)]
    drop_path: f64,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Clock of the timings.
    #[arg(long, value_enum, default_value_t = Clock::Wall)]
    clock: Clock,
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
    /// CPU threads (0: libtorch's default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
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
    /// Whether it trains the evaluation network (and so wants the
    /// allocator settings of training, `exec::memory`).
    pub fn trains(&self) -> bool {
        matches!(self, BenchCmd::Train(_))
    }

    /// Runs the benchmark and prints its figures; `bench store` exits with
    /// 1 when an invariant failed.
    pub fn run(self, rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
        match self {
            BenchCmd::Step(args) => bench_step(args),
            BenchCmd::Train(args) => bench_train(args),
            BenchCmd::Data(args) => bench_data(args),
            BenchCmd::Store(args) => return bench_store(args, rt),
        }
        .map(|()| ExitCode::SUCCESS)
    }
}

fn synchronize(device: Device) {
    if let Device::Cuda(n) = device {
        tch::Cuda::synchronize(n as i64);
    }
}

fn bench_step(a: StepArgs) -> anyhow::Result<()> {
    set_threads(a.threads)?;
    let device = parse_device(&a.device)?;
    if a.cudnn_benchmark {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let overrides = vec![
        format!("method={}", a.method),
        format!("L={}", a.L),
        format!("M={}", a.steps + 10),
        format!("layers={}", a.layers),
        format!("init_channels={}", a.C),
        format!("batch_size={}", a.batch),
    ];
    let cfg = SearchConfig::default()
        .with_overrides(&overrides)?
        .resolve()?;
    let mut searcher = Searcher::new(&cfg, 3, 10, device);
    match a.layout {
        Layout::Nchw => searcher.net.set_channels_last(false),
        Layout::Nhwc => searcher.net.set_channels_last(true),
        Layout::Auto => {}
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let arch = &searcher.arch;
    let _ = searcher.method.start_epoch(&cfg, 0, arch, &mut rng);
    if let Some(path) = &a.mask {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the mask {}", path.display()))?;
        let mask: Vec<Vec<Vec<bool>>> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not a JSON [cell][edge][op] of booleans",
                path.display()
            )
        })?;
        let space = &searcher.net.space;
        let fits = mask.len() == 2
            && mask
                .iter()
                .all(|c| c.len() == space.edges() && c.iter().all(|e| e.len() == space.num_ops()));
        anyhow::ensure!(
            fits,
            "{}: the mask must be 2 x {} x {} (DARTS space)",
            path.display(),
            space.edges(),
            space.num_ops()
        );
        anyhow::ensure!(
            searcher.method.set_subspace(&mask),
            "--mask only applies to --method ddsas"
        );
    }
    let (xt, yt) = random_batch(a.batch, 3, a.size, 10, device);
    let (xv, yv) = random_batch(a.batch, 3, a.size, 10, device);
    let median = median_step(device, a.clock, a.steps, || {
        searcher.arch_step(&xv, &yv);
        let _ = searcher.weight_step(&xt, &yt, 0.025);
    });
    crate::outln!(
        "method={} L={} batch={} layers={} C={} size={} threads={}",
        a.method,
        a.L,
        a.batch,
        a.layers,
        a.C,
        a.size,
        tch::get_num_threads()
    );
    crate::outln!("median_step_s={median:.4}");
    Ok(())
}

/// `bench train`: median seconds of an evaluation-network training step
/// (forward, backward, clip, SGD), as `bench/ref_train_step.py` times it.
fn bench_train(a: TrainArgs) -> anyhow::Result<()> {
    set_threads(a.threads)?;
    let device = parse_device(&a.device)?;
    let genotype = crate::arch::genotype::read(&a.genotype)?;
    tch::manual_seed(0);
    let shape = crate::arch::shape::EvalShape {
        layers: a.layers,
        channels: a.channels,
        in_channels: 3,
        classes: 10,
        auxiliary: a.auxiliary > 0.0,
    };
    let net = crate::nas::evalnet::EvalNetwork::new(&genotype, shape, device);
    let params = net.params_without_aux();
    let mut trainer = crate::nas::evalnet::Trainer::new(net, [0.9, 3e-4, 5.0, a.auxiliary]);
    let (x, y) = random_batch(a.batch, 3, a.size, 10, device);
    let median = median_step(device, a.clock, a.steps, || {
        let _ = trainer.step(&x, &y, 0.025, a.drop_path);
    });
    crate::outln!(
        "genotype={} layers={} C={} batch={} size={} threads={} params_without_aux={params}",
        a.genotype,
        a.layers,
        a.channels,
        a.batch,
        a.size,
        tch::get_num_threads()
    );
    crate::outln!("median_step_s={median:.4}");
    Ok(())
}

/// Median seconds of `step` over `steps` timed runs after one warm-up,
/// the device synchronised around each (`steps` is at least 1: clap says so).
fn median_step(device: Device, clock: Clock, steps: u64, mut step: impl FnMut()) -> f64 {
    let clock: fn() -> f64 = match clock {
        Clock::Cpu => thread_cpu_seconds,
        Clock::Wall => wall_seconds,
    };
    let mut times = Vec::with_capacity(steps as usize);
    for i in 0..=steps {
        synchronize(device);
        let t0 = clock();
        step();
        synchronize(device);
        if i > 0 {
            times.push(clock() - t0);
        }
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn wall_seconds() -> f64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// CPU seconds of the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn bench_data(a: DataArgs) -> anyhow::Result<()> {
    set_threads(a.threads)?;
    let device = parse_device(&a.device)?;
    tch::manual_seed(0);
    let images = Tensor::randint(256, [a.images, 3, 32, 32], (Kind::Uint8, Device::Cpu));
    let labels = Tensor::randint(10, [a.images], (Kind::Int64, Device::Cpu));
    let ds = Dataset {
        kind: DatasetKind::Cifar10,
        train: ImageSet { images, labels },
        test: ImageSet {
            images: Tensor::zeros([0, 3, 32, 32], (Kind::Uint8, Device::Cpu)),
            labels: Tensor::zeros([0], (Kind::Int64, Device::Cpu)),
        },
        classes: 10,
        channels: 3,
        size: 32,
        mean: vec![125.3, 123.0, 113.9],
        std: vec![63.0, 62.1, 66.7],
    };
    let loader = Loader::new(
        &ds.train,
        &ds,
        device,
        a.batch,
        Some(Augment::for_dataset(DatasetKind::Cifar10)),
    );
    let t0 = Instant::now();
    let mut seen = 0i64;
    for (x, _) in loader.epoch(1) {
        seen += x.size()[0];
    }
    synchronize(device);
    let secs = t0.elapsed().as_secs_f64();
    crate::outln!(
        "images={seen} batch={} threads={}",
        a.batch,
        tch::get_num_threads()
    );
    crate::outln!("images_per_s={:.0}", seen as f64 / secs);
    Ok(())
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
