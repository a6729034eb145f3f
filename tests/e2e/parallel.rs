//! End-to-end tests of `ddsas train --nproc 2` (the `dist` build): two rank
//! processes on loopback (Gloo) train one run data-parallel; rank 0 alone
//! records it.

use std::path::Path;
use std::process::{Command, Output};

use super::util::{scalar, sqlite, text, tmp, BIN};

/// A small darts_v2 on the digits: two whole epochs (44 steps each), a global
/// batch of 32 split 16 + 16.
const SMALL: &[&str] = &[
    "layers=3",
    "init_channels=8",
    "batch_size=32",
    "cutout=4",
    "steps_per_epoch=null",
    "epochs=2",
];

fn train(db: &Path, env: &[(&str, &str)], extra: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["train", "--quiet", "--threads", "2", "--nproc", "2"])
        .args(["--genotype", "darts_v2", "--db"])
        .arg(db)
        .env("DDSAS_PARAM_CHECKSUM", "1")
        .env("DDSAS_DIST_TIMEOUT_S", "30");
    for s in SMALL {
        cmd.args(["--set", s]);
    }
    cmd.envs(env.iter().copied()).args(extra);
    cmd.output().expect("ddsas runs")
}

/// The parameter checksums the ranks printed, by rank.
fn checksums(out: &Output) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut lines: Vec<(String, String)> = stderr
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("rank ")?;
            let (rank, sum) = rest.split_once(" of 2: parameter checksum ")?;
            Some((rank.to_owned(), sum.to_owned()))
        })
        .collect();
    lines.sort();
    lines.into_iter().map(|(_, sum)| sum).collect()
}

#[test]
fn two_ranks_train_darts_v2_with_identical_weights_and_one_history() {
    let (_dir, db) = tmp();
    let out = train(&db, &[], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let sums = checksums(&out);
    assert_eq!(sums.len(), 2, "{}", text(&out));
    assert_eq!(
        sums[0],
        sums[1],
        "the ranks' weights differ: {}",
        text(&out)
    );
    assert_eq!(
        sqlite(&db, "SELECT method, status, epochs_done FROM runs"),
        vec![vec!["train", "done", "2"]]
    );
    // Rank 0 recorded the world and the backend `auto` picks on CPU.
    assert_eq!(
        sqlite(&db, "SELECT world_size, dist_backend FROM runs"),
        vec![vec!["2", "gloo"]]
    );
    let show = Command::new(BIN)
        .args(["runs", "show", "1", "--db"])
        .arg(&db)
        .output()
        .expect("ddsas runs");
    let shown = text(&show);
    assert!(
        shown
            .lines()
            .any(|l| l.contains("ranks") && l.contains("2 (gloo)")),
        "{shown}"
    );
    assert_eq!(
        sqlite(&db, "SELECT epoch FROM train_epochs ORDER BY epoch"),
        vec![vec!["0"], vec!["1"]]
    );
    let acc: f64 = scalar(&db, "SELECT test_acc FROM train_epochs WHERE epoch = 1")
        .parse()
        .unwrap();
    assert!(
        acc > 0.4,
        "test accuracy {acc} after 2 epochs is near chance (0.1)"
    );
}

#[test]
fn a_rank_that_dies_ends_the_run_interrupted_and_a_resume_finishes_it() {
    let (_dir, db) = tmp();
    let out = train(&db, &[("DDSAS_DIST_DIE_AT", "1 20")], &[]);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("rank 1") && all.contains("stopped answering"),
        "{all}"
    );
    assert_eq!(scalar(&db, "SELECT status FROM runs"), "interrupted");
    let again = train(&db, &[], &["--resume"]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(
        sqlite(&db, "SELECT status, epochs_done FROM runs"),
        vec![vec!["done", "2"]]
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(DISTINCT epoch) FROM train_epochs"),
        "2"
    );
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM train_epochs"), "2");
}
