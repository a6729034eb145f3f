//! `bench step`, `bench train` and `bench data` (`engine` build only):
//! steps and batches timed on libtorch.

use std::time::Instant;

use anyhow::Context;
use rand::SeedableRng;
use tch::{Device, Kind, Tensor};

use super::{Clock, DataArgs, Layout, StepArgs, TrainArgs};
use crate::config::SearchConfig;
use crate::data::{imagenet, Augment, Dataset, DatasetKind, ImageSet, Loader};
use crate::exec::device::{parse_device, set_threads};
use crate::nas::search::Searcher;
use crate::nas::supernet::random_batch;

fn synchronize(device: Device) {
    if let Device::Cuda(n) = device {
        tch::Cuda::synchronize(n as i64);
    }
}

pub(super) fn bench_step(a: StepArgs) -> anyhow::Result<()> {
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
pub(super) fn bench_train(a: TrainArgs) -> anyhow::Result<()> {
    set_threads(a.threads)?;
    let device = parse_device(&a.device)?;
    let genotype = crate::arch::genotype::read_trained(&a.genotype)?;
    let knobs = a.knobs()?;
    tch::manual_seed(0);
    let net = crate::nas::evalnet::EvalNetwork::new(&genotype, knobs.shape, device);
    let params = net.params_without_aux();
    let mut trainer = crate::nas::evalnet::Trainer::new(net, [0.9, 3e-4, 5.0, a.auxiliary]);
    let (side, classes) = (knobs.shape.image_size, knobs.shape.classes);
    let (x, y) = random_batch(a.batch, 3, side, classes, device);
    let median = median_step(device, a.clock, a.steps, || {
        let _ = trainer.step(&x, &y, 0.025, knobs.drop_path);
    });
    crate::outln!(
        "genotype={} network={} layers={} C={} batch={} size={side} classes={classes} threads={} params_without_aux={params}",
        a.genotype,
        if a.imagenet { "imagenet" } else { "cifar" },
        knobs.shape.layers,
        knobs.shape.channels,
        a.batch,
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

pub(super) fn bench_data(a: DataArgs) -> anyhow::Result<()> {
    if let Some(dir) = &a.imagenet {
        return bench_imagenet_data(dir, &a);
    }
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

/// `bench data --imagenet DIR`: training images per second of the whole
/// ImageNet pipeline, timed from the first batch out (the workers' start
/// and the first decodes are not counted, as the reference times its
/// persistent workers) over `--batches` batches.
fn bench_imagenet_data(dir: &std::path::Path, a: &DataArgs) -> anyhow::Result<()> {
    let folder = imagenet::Folder::open(dir)?;
    let threads = match a.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let loader = imagenet::ImageNetLoader::new(folder.train, a.crop, a.batch, threads);
    anyhow::ensure!(
        loader.batches_per_epoch() > 0,
        "{}: too few training images for one batch",
        dir.display()
    );
    let (mut seen, mut skipped, mut t0) = (0i64, 0usize, None);
    let mut left = a.batches + 1;
    for seed in 1.. {
        let mut epoch = loader.epoch(seed);
        let before = left;
        for (x, _) in epoch.by_ref().take(left as usize) {
            left -= 1;
            match t0 {
                None => t0 = Some(Instant::now()),
                Some(_) => seen += x.size()[0],
            }
        }
        skipped += epoch.skipped();
        anyhow::ensure!(
            left < before,
            "{}: no readable batch in an epoch ({skipped} images skipped)",
            dir.display()
        );
        if left == 0 {
            break;
        }
    }
    let secs = t0.map_or(0.0, |t| t.elapsed().as_secs_f64());
    crate::outln!(
        "images={seen} batch={} crop={} threads={threads} skipped={skipped} decoder={}",
        a.batch,
        a.crop,
        imagenet::DECODER
    );
    crate::outln!("images_per_s={:.0}", seen as f64 / secs);
    Ok(())
}
