//! Two processes on loopback: the test binary re-executes itself as each
//! rank (`rank_worker`, which does nothing unless `RANK_ENV` is set), so
//! the ranks are real processes with their own libtorch, as in training.

use super::*;
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::Instant;
use tch::{Device, Kind};

/// "SCENARIO RANK WORLD PORT" for a re-executed rank.
const RANK_ENV: &str = "DDSAS_DIST_TEST_RANK";
const TIMEOUT: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Runs `scenario` as `world` processes and answers their outputs by rank.
fn run_ranks(scenario: &str, world: usize) -> Vec<Output> {
    run_ranks_of("nas::dist::tests::rank_worker", scenario, world)
}

/// Runs `scenario` as `world` processes of the test `worker` (a test that
/// reads [`RANK_ENV`] with [`rank_spec`], and does nothing without it),
/// and answers their outputs by rank.
pub(crate) fn run_ranks_of(worker: &str, scenario: &str, world: usize) -> Vec<Output> {
    let exe = std::env::current_exe().unwrap();
    let port = free_port();
    let children: Vec<_> = (0..world)
        .map(|rank| {
            Command::new(&exe)
                .args(["--exact", worker, "--nocapture"])
                .env(RANK_ENV, format!("{scenario} {rank} {world} {port}"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// The scenario and rendezvous of a re-executed rank, if this process is
/// one.
pub(crate) fn rank_spec() -> Option<(String, Rendezvous)> {
    let spec = std::env::var(RANK_ENV).ok()?;
    let words: Vec<&str> = spec.split(' ').collect();
    let rv = Rendezvous {
        master_addr: "127.0.0.1".into(),
        master_port: words[3].parse().unwrap(),
        rank: words[1].parse().unwrap(),
        world_size: words[2].parse().unwrap(),
        timeout: TIMEOUT,
        backend: crate::config::train::DistBackend::Gloo,
        device: tch::Device::Cpu,
    };
    Some((words[0].to_owned(), rv))
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn assert_ok(outputs: &[Output]) {
    for (rank, o) in outputs.iter().enumerate() {
        assert!(
            o.status.success(),
            "rank {rank}: {}\n{}",
            stdout(o),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn two_ranks_broadcast_and_all_reduce_exactly() {
    let outputs = run_ranks("exact", 2);
    assert_ok(&outputs);
    for o in &outputs {
        assert!(stdout(o).contains("exact: ok"), "{}", stdout(o));
    }
}

#[test]
fn gradients_are_averaged_while_the_backward_pass_runs() {
    let outputs = run_ranks("reducer", 2);
    assert_ok(&outputs);
    for o in &outputs {
        assert!(stdout(o).contains("reducer: ok"), "{}", stdout(o));
    }
}

#[test]
fn a_rank_that_dies_is_named_within_the_timeout() {
    let start = Instant::now();
    let outputs = run_ranks("dies", 2);
    assert_eq!(outputs[1].status.code(), Some(9));
    assert_ok(&outputs[..1]);
    let out = stdout(&outputs[0]);
    let line = out
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {out}"));
    assert!(
        line.contains("rank 1 (host") && line.contains("stopped answering"),
        "{line}"
    );
    assert!(start.elapsed() < TIMEOUT, "{:?}", start.elapsed());
}

/// The all-reduce cost per step at the paper's networks' gradient sizes
/// (BENCHMARKS.md): `cargo test --release --features dist --lib
/// nas::dist::tests::bench_all_reduce -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_all_reduce() {
    let outputs = run_ranks("bench", 2);
    assert_ok(&outputs);
    print!("{}", stdout(&outputs[0]));
}

/// One rank of a scenario, when re-executed by `run_ranks`.
#[test]
fn rank_worker() {
    let Some((scenario, rv)) = rank_spec() else {
        return;
    };
    let pg = ProcessGroup::connect(&rv).unwrap();
    match scenario.as_str() {
        "exact" => exact(&pg),
        "dies" => dies(&pg),
        "bench" => bench(&pg),
        "reducer" => reducer(&pg),
        other => panic!("unknown scenario {other}"),
    }
}

fn exact(pg: &ProcessGroup) {
    let r = pg.rank() as f64;
    tch::manual_seed(7);
    let weights = Tensor::randn([5, 3], (Kind::Float, Device::Cpu));
    let mut mine = vec![if pg.rank() == 0 {
        weights.copy()
    } else {
        Tensor::zeros([5, 3], (Kind::Float, Device::Cpu))
    }];
    pg.broadcast(&mut mine, 0, DEFAULT_BUCKET_BYTES).unwrap();
    assert!(mine[0].equal(&weights));

    // Mixed dtypes and a bucket smaller than one tensor: several buckets.
    for bucket in [8, DEFAULT_BUCKET_BYTES] {
        let mut grads = vec![
            Tensor::full([3, 4], r + 1.0, (Kind::Float, Device::Cpu)),
            Tensor::arange(10, (Kind::Double, Device::Cpu)) * (r + 1.0),
            Tensor::full([7], (pg.rank() as i64 + 1) * 5, (Kind::Int64, Device::Cpu)),
        ];
        pg.all_reduce(&mut grads, Reduce::Sum, bucket).unwrap();
        assert!(grads[0].equal(&Tensor::full([3, 4], 3.0, (Kind::Float, Device::Cpu))));
        assert!(grads[1].equal(&(Tensor::arange(10, (Kind::Double, Device::Cpu)) * 3.0)));
        assert!(grads[2].equal(&Tensor::full([7], 15, (Kind::Int64, Device::Cpu))));
        pg.all_reduce(&mut grads, Reduce::Average, bucket).unwrap();
        assert!(grads[0].equal(&Tensor::full([3, 4], 3.0, (Kind::Float, Device::Cpu))));
        assert!(grads[2].equal(&Tensor::full([7], 15, (Kind::Int64, Device::Cpu))));
    }
    let mut halves = vec![Tensor::full([4], r, (Kind::Float, Device::Cpu))];
    pg.all_reduce(&mut halves, Reduce::Average, DEFAULT_BUCKET_BYTES)
        .unwrap();
    assert!(halves[0].equal(&Tensor::full([4], 0.5, (Kind::Float, Device::Cpu))));
    pg.barrier().unwrap();
    println!("exact: ok");
}

/// A chain of three layers and a parameter the pass does not reach, in
/// buckets of one parameter: the hooks start the reached ones during the
/// pass, `finish` leaves the unreached one undefined, and every gradient
/// is the mean of the ranks' (each rank's input is its rank + 1).
fn reducer(pg: &ProcessGroup) {
    let opts = (Kind::Float, Device::Cpu);
    tch::manual_seed(3);
    let params: Vec<Tensor> = [[4, 3], [3, 3], [3, 2], [2, 2]]
        .iter()
        .map(|s| Tensor::randn(*s, opts).set_requires_grad(true))
        .collect();
    let reducer = pg.reducer(&params, 1).unwrap();
    assert!(reducer.watches(&params));
    let pass = |scale: f64| {
        let x = Tensor::ones([5, 4], opts) * scale;
        let y = x
            .matmul(&params[0])
            .tanh()
            .matmul(&params[1])
            .tanh()
            .matmul(&params[2]);
        Tensor::run_backward(&[y.sum(Kind::Float)], &params, false, false)
    };
    let mine = pass(pg.rank() as f64 + 1.0);
    let mean: Vec<Tensor> = pass(1.0)
        .iter()
        .zip(pass(2.0))
        .map(|(a, b)| {
            if a.defined() {
                (a + b) / 2.0
            } else {
                Tensor::new()
            }
        })
        .collect();
    for _ in 0..2 {
        reducer.arm();
        let mut grads = pass(pg.rank() as f64 + 1.0);
        reducer.finish(&mut grads).unwrap();
        assert_eq!(
            reducer.overlapped(),
            3,
            "three buckets filled during the pass"
        );
        assert!(!grads[3].defined());
        for (g, m) in grads.iter().zip(&mean).take(3) {
            assert!(g.allclose(m, 1e-6, 1e-6, false), "{g} vs {m}");
        }
    }
    // Without arming, a pass starts nothing and `finish` reduces it all.
    let mut grads = mine;
    reducer.finish(&mut grads).unwrap();
    assert_eq!(reducer.overlapped(), 0);
    assert!(grads[0].allclose(&mean[0], 1e-6, 1e-6, false));
    pg.barrier().unwrap();
    println!("reducer: ok");
}

/// Rank 1 leaves abruptly after joining (as `kill -9` would); rank 0's
/// next collective fails with one line naming it.
fn dies(pg: &ProcessGroup) {
    if pg.rank() == 1 {
        // SAFETY: ends this process at once, without unwinding or cleanup.
        unsafe { libc::_exit(9) };
    }
    let mut grads = vec![Tensor::ones([1000], (Kind::Float, Device::Cpu))];
    let err = pg
        .all_reduce(&mut grads, Reduce::Average, DEFAULT_BUCKET_BYTES)
        .unwrap_err();
    assert!(!err.0.contains('\n'));
    println!("error: {err}");
    // Leave without the group's destructors, as a failed training would.
    std::process::exit(0);
}

/// Parameter counts of the paper's networks: darts_v2 on CIFAR-10 (20
/// cells, 36 channels) and in the ImageNet mobile setting.
const NETWORKS: [(&str, i64); 2] = [
    ("CIFAR darts_v2 20x36", 3_300_000),
    ("ImageNet darts_v2 14x48", 4_700_000),
];
/// About as many parameter tensors as those networks have.
const TENSORS: i64 = 300;
const STEPS: u32 = 20;

fn bench(pg: &ProcessGroup) {
    for (name, params) in NETWORKS {
        let each = params / TENSORS;
        let mut grads: Vec<Tensor> = (0..TENSORS)
            .map(|_| Tensor::randn([each], (Kind::Float, Device::Cpu)))
            .collect();
        let bytes = each * TENSORS * 4;
        pg.all_reduce(&mut grads, Reduce::Average, DEFAULT_BUCKET_BYTES)
            .unwrap();
        pg.barrier().unwrap();
        let start = Instant::now();
        for _ in 0..STEPS {
            pg.all_reduce(&mut grads, Reduce::Average, DEFAULT_BUCKET_BYTES)
                .unwrap();
        }
        let per_step = start.elapsed().as_secs_f64() / f64::from(STEPS);
        println!(
            "{name}: {} params, {bytes} bytes, {:.4} s per all-reduce step ({:.0} MB/s), 2 ranks, Gloo, loopback",
            each * TENSORS,
            per_step,
            bytes as f64 / per_step / 1e6
        );
    }
}
