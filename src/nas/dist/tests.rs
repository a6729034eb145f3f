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
    let exe = std::env::current_exe().unwrap();
    let port = free_port();
    let children: Vec<_> = (0..world)
        .map(|rank| {
            Command::new(&exe)
                .args(["--exact", "nas::dist::tests::rank_worker", "--nocapture"])
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

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn assert_ok(outputs: &[Output]) {
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
    let Ok(spec) = std::env::var(RANK_ENV) else {
        return;
    };
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
    let pg = ProcessGroup::connect(&rv).unwrap();
    match words[0] {
        "exact" => exact(&pg),
        "dies" => dies(&pg),
        "bench" => bench(&pg),
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
