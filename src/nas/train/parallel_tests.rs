//! Exactness of a data-parallel step: two rank processes (the lib test
//! binary re-executed, as in `nas::dist::tests`) take steps of a tiny
//! darts_v2 network through [`data_parallel_step`], and every rank also
//! computes, alone, the one-process step that the ranks must equal. The
//! ranks must hold bit-identical parameters after every step, and the
//! reference's within float tolerance.
//!
//! With batch norm per rank (DDP's default) one process taking the whole
//! global batch normalises with other statistics than the ranks, so the
//! comparable reference computes each shard's gradients separately
//! ([`Trainer::gradients`] per shard), weighs them by the shard's share of
//! the global batch, and takes one [`Trainer::apply`]. With synchronised
//! batch norm the ranks must equal one process taking the whole global
//! batch in one step, batch norm's running statistics included: that is
//! what synchronised batch norm is for.

use tch::{Device, Kind, Tensor};

use super::*;
use crate::arch::genotype;
use crate::arch::shape::Stem;
use crate::nas::dist::tests::{assert_ok, rank_spec, run_ranks_of, stdout};

const WORKER: &str = "nas::train::parallel_tests::rank_worker";
/// Global batches of the steps: 8 splits 4 + 4, 9 splits 5 + 4 (the
/// shares weigh the gradients).
const BATCHES: [i64; 2] = [8, 9];
const LR: f64 = 0.1;
/// Largest difference, relative to the tensor's largest magnitude, that a
/// parameter of the ranks may have from the one-process reference: the
/// two weigh the shards' gradients in another order (the ranks scale the
/// loss, the reference the gradients). Measured: 0 after the even step,
/// 1.05e-5 after the uneven one.
const TOLERANCE: f64 = 5e-5;
/// The same with synchronised batch norm, whose forward and backward
/// passes are autograd's through sums and sums of squares instead of
/// libtorch's fused batch norm: the running statistics agree to 3e-6, the
/// parameters to 1.8e-4 after a step (a gradient that many terms nearly
/// cancel in, relative to a parameter that starts at 0), where a backward
/// pass that did not sum across the ranks would be off by far more.
const SYNC_TOLERANCE: f64 = 1e-3;

fn tiny_trainer(seed: i64) -> Trainer {
    tch::manual_seed(seed);
    let shape = EvalShape {
        layers: 3,
        channels: 8,
        in_channels: 3,
        classes: 10,
        auxiliary: true,
        stem: Stem::Cifar,
        image_size: 16,
    };
    let genotype = genotype::parse_trained("darts_v2").unwrap();
    let net = EvalNetwork::new(&genotype, shape, Device::Cpu);
    Trainer::new(net, [0.9, 3e-4, 5.0, 0.4])
}

/// The global batch of step `step`: the same on every rank.
fn global_batch(step: usize, n: i64) -> (Tensor, Tensor) {
    tch::manual_seed(100 + step as i64);
    let x = Tensor::randn([n, 3, 16, 16], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(10, [n], (Kind::Int64, Device::Cpu));
    (x, y)
}

/// Rows `rank`, `rank + size`, ... of a batch: the rank's shard, as the
/// loaders cut it.
fn shard(x: &Tensor, y: &Tensor, world: World) -> (Tensor, Tensor) {
    let rows: Vec<i64> = (0..x.size()[0]).collect();
    let rows = Tensor::from_slice(&world.shard(&rows));
    (x.index_select(0, &rows), y.index_select(0, &rows))
}

/// The largest difference of `a` from `b` over all tensors, relative to
/// each tensor's largest magnitude.
fn max_relative_difference(a: &[Tensor], b: &[Tensor]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| {
            let diff = (a - b).abs().max().double_value(&[]);
            let scale = b.abs().max().double_value(&[]).max(1e-12);
            diff / scale
        })
        .fold(0.0, f64::max)
}

/// One process's step equal to the ranks' with per-rank batch norm: the
/// shards' gradients, each weighed by its share of the batch, summed.
fn reference_step_per_rank_bn(reference: &mut Trainer, x: &Tensor, y: &Tensor, size: usize) {
    let n = x.size()[0] as f64;
    let mut sum: Option<Vec<Tensor>> = None;
    for rank in 0..size {
        let (xs, ys) = shard(x, y, World { rank, size });
        let weight = xs.size()[0] as f64 / n;
        let (_, _, grads) = reference.gradients(&xs, &ys, 0.0);
        let weighted: Vec<Tensor> = grads.iter().map(|g| g * weight).collect();
        sum = Some(match sum {
            None => weighted,
            Some(s) => s.iter().zip(&weighted).map(|(a, b)| a + b).collect(),
        });
    }
    reference.apply(&sum.expect("one rank at least"), LR);
}

#[test]
fn two_ranks_step_as_one_process_on_the_same_shards() {
    assert_ranks_agree("per-rank-bn");
}

#[test]
fn two_ranks_with_synchronised_batch_norm_step_as_one_process_on_the_whole_batch() {
    assert_ranks_agree("sync-bn");
}

/// Runs `scenario` on 2 ranks: each must end with "SCENARIO: ok" and the
/// ranks' parameter checksums after every step must be equal.
fn assert_ranks_agree(scenario: &str) {
    let outputs = run_ranks_of(WORKER, scenario, 2);
    assert_ok(&outputs);
    let sums: Vec<Vec<String>> = outputs
        .iter()
        .map(|o| {
            let out = stdout(o);
            assert!(out.contains(&format!("{scenario}: ok")), "{out}");
            out.lines()
                .filter(|l| l.starts_with("checksum "))
                .map(str::to_owned)
                .collect()
        })
        .collect();
    assert_eq!(sums[0].len(), BATCHES.len(), "{:?}", sums[0]);
    assert_eq!(sums[0], sums[1], "the ranks' parameters differ");
}

/// Synchronised batch norm's cost per step against per-rank batch norm,
/// at the paper's CIFAR network on 2 ranks of one thread each
/// (BENCHMARKS.md): `cargo test --release --features dist --lib
/// nas::train::parallel_tests::bench_sync_bn -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_sync_bn() {
    let outputs = run_ranks_of(WORKER, "bench-sync-bn", 2);
    assert_ok(&outputs);
    print!("{}", stdout(&outputs[0]));
}

/// The bench's global batch (the appendix's 96: 48 per rank).
const BENCH_BATCH: i64 = 96;
/// Rounds after a warm-up round, each taking [`BENCH_STEPS`] steps per-rank
/// then as many synchronised, so that a change in the machine's load
/// falls on both.
const BENCH_ROUNDS: usize = 3;
const BENCH_STEPS: usize = 3;

/// A rank of [`bench_sync_bn`]: the CIFAR network of 20 cells and 36
/// channels (auxiliary head on, drop path off) on one fixed random batch,
/// timed step by step, alternating the two batch norms; rank 0 prints
/// each round's mean and the medians.
fn bench_sync_bn_steps() {
    let world = parallel::world();
    tch::manual_seed(1);
    let shape = EvalShape {
        layers: 20,
        channels: 36,
        in_channels: 3,
        classes: 10,
        auxiliary: true,
        stem: Stem::Cifar,
        image_size: 32,
    };
    let genotype = genotype::parse_trained("darts_v2").unwrap();
    let net = EvalNetwork::new(&genotype, shape, Device::Cpu);
    let mut trainer = Trainer::new(net, [0.9, 3e-4, 5.0, 0.4]);
    parallel::combine(
        &mut sorted_variables(&trainer.net, |_| true),
        Combine::FromRankZero,
    )
    .unwrap();
    tch::manual_seed(100);
    let x = Tensor::randn([BENCH_BATCH, 3, 32, 32], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(10, [BENCH_BATCH], (Kind::Int64, Device::Cpu));
    let (xs, ys) = shard(&x, &y, world);
    let mut times = [Vec::new(), Vec::new()];
    for round in 0..=BENCH_ROUNDS {
        for (which, sync) in [false, true].into_iter().enumerate() {
            parallel::set_sync_batch_norm(sync);
            let mut round_times = Vec::new();
            for _ in 0..BENCH_STEPS {
                let start = std::time::Instant::now();
                let _ = data_parallel_step(&mut trainer, (&xs, &ys), 0.025, 0.0, 1.0).unwrap();
                round_times.push(start.elapsed().as_secs_f64());
            }
            let mean = round_times.iter().sum::<f64>() / round_times.len() as f64;
            let label = if sync { "sync_bn" } else { "per-rank BN" };
            let kind = if round == 0 { "warm-up" } else { "round" };
            println!("{kind} {round} {label}: {mean:.3} s/step {round_times:.3?}");
            if round > 0 {
                times[which].extend(round_times);
            }
        }
    }
    let [per_rank, sync] = times.map(|mut t| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    });
    println!(
        "median s/step: per-rank BN {per_rank:.3}, sync_bn {sync:.3} ({:+.1} %)",
        100.0 * (sync / per_rank - 1.0)
    );
}

/// One rank of a scenario, when re-executed by `run_ranks_of`.
#[test]
fn rank_worker() {
    let Some((scenario, rv)) = rank_spec() else {
        return;
    };
    tch::set_num_threads(1);
    parallel::join(&rv).unwrap();
    match scenario.as_str() {
        "per-rank-bn" => per_rank_bn(),
        "sync-bn" => sync_bn(),
        "bench-sync-bn" => bench_sync_bn_steps(),
        other => panic!("unknown scenario {other}"),
    }
}

/// The ranks start from rank 0's weights (each built its own from another
/// seed), take two steps, and after each step hold bit-identical
/// parameters, within [`TOLERANCE`] of the reference.
fn per_rank_bn() {
    let (world, mut trainer, mut reference) = start_from_rank_zero();
    for (step, n) in BATCHES.into_iter().enumerate() {
        let (x, y) = global_batch(step, n);
        rank_step(&mut trainer, &x, &y, world);
        reference_step_per_rank_bn(&mut reference, &x, &y, world.size);
        let diff = max_relative_difference(trainer.params(), reference.params());
        report(step, diff, TOLERANCE, &trainer);
    }
    println!("per-rank-bn: ok");
}

/// As [`per_rank_bn`] with synchronised batch norm, against one process
/// stepping on the whole batch; batch norm's running statistics (the
/// same on every rank) must match the reference's too.
fn sync_bn() {
    let (world, mut trainer, mut reference) = start_from_rank_zero();
    for (step, n) in BATCHES.into_iter().enumerate() {
        let (x, y) = global_batch(step, n);
        parallel::set_sync_batch_norm(true);
        rank_step(&mut trainer, &x, &y, world);
        parallel::set_sync_batch_norm(false);
        let (_, _, grads) = reference.gradients(&x, &y, 0.0);
        reference.apply(&grads, LR);
        let params = max_relative_difference(trainer.params(), reference.params());
        let stats = max_relative_difference(
            &sorted_variables(&trainer.net, |grad| !grad),
            &sorted_variables(&reference.net, |grad| !grad),
        );
        println!("step {step}: parameters {params:e}, running statistics {stats:e}");
        let diff = params.max(stats);
        report(step, diff, SYNC_TOLERANCE, &trainer);
    }
    println!("sync-bn: ok");
}

/// This rank's trainer, after taking rank 0's weights (each rank builds
/// its own from another seed), and a one-process reference built as rank
/// 0's, equal to it.
fn start_from_rank_zero() -> (World, Trainer, Trainer) {
    let world = parallel::world();
    let trainer = tiny_trainer(1 + world.rank as i64);
    parallel::combine(
        &mut sorted_variables(&trainer.net, |_| true),
        Combine::FromRankZero,
    )
    .unwrap();
    let reference = tiny_trainer(1);
    assert_eq!(
        max_relative_difference(trainer.params(), reference.params()),
        0.0
    );
    (world, trainer, reference)
}

/// The rank's step on its shard of the global batch `(x, y)`.
fn rank_step(trainer: &mut Trainer, x: &Tensor, y: &Tensor, world: World) {
    let (xs, ys) = shard(x, y, world);
    let share = (xs.size()[0] * world.size as i64) as f64 / x.size()[0] as f64;
    let _ = data_parallel_step(trainer, (&xs, &ys), LR, 0.0, share).unwrap();
}

/// Prints the step's difference from the reference and the checksum the
/// parent compares across ranks; fails beyond `tolerance`.
fn report(step: usize, diff: f64, tolerance: f64, trainer: &Trainer) {
    println!("step {step}: largest relative difference from one process {diff:e}");
    assert!(diff <= tolerance, "step {step}: {diff:e}");
    println!(
        "checksum {step} {:016x}",
        parallel::checksum(trainer.params())
    );
}
