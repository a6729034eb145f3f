//! End-to-end tests of `ddsas train`: a searched cell trained from scratch
//! on the bundled digits with real libtorch, recorded in a real SQLite file.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::util::{scalar, sqlite, text, tmp, try_sqlite, Hold, BIN};

/// A small network that learns the digits in seconds on one thread.
const SMALL: &[&str] = &[
    "layers=3",
    "init_channels=8",
    "batch_size=32",
    "cutout=4",
    "steps_per_epoch=12",
];

fn train(db: &Path, sets: &[&str], extra: &[&str]) -> Output {
    command(db, sets, extra).output().expect("ddsas runs")
}

/// The command of [`train`], not started.
fn command(db: &Path, sets: &[&str], extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["train", "--quiet", "--threads", "1", "--db"])
        .arg(db);
    for s in SMALL.iter().chain(sets) {
        cmd.args(["--set", s]);
    }
    cmd.args(extra);
    cmd
}

/// The parameter checksum a training printed ([`CHECKSUM`] set).
fn checksum(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let sum = stderr
        .lines()
        .find_map(|l| l.strip_prefix("rank 0 of 1: parameter checksum "));
    sum.unwrap_or_else(|| panic!("no checksum: {}", text(out)))
        .to_owned()
}

/// Makes a training print its parameters' checksum at its end.
const CHECKSUM: (&str, &str) = ("DDSAS_PARAM_CHECKSUM", "1");

/// The numbers of every epoch that must not depend on timing.
const EPOCH_NUMBERS: &str =
    "SELECT epoch, train_acc, train_loss, test_acc, test_loss, lr, drop_path_prob \
                             FROM train_epochs ORDER BY epoch";

#[test]
fn darts_v2_learns_the_digits_and_records_every_epoch() {
    let (_dir, db) = tmp();
    let out = train(
        &db,
        &["epochs=3", "steps_per_epoch=null"],
        &["--genotype", "darts_v2"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        sqlite(&db, "SELECT method, status, epochs_done FROM runs"),
        vec![vec!["train", "done", "3"]]
    );
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM train_epochs"), "3");
    let acc: f64 = scalar(&db, "SELECT test_acc FROM train_epochs WHERE epoch = 2")
        .parse()
        .unwrap();
    assert!(
        acc > 0.5,
        "test accuracy {acc} after 3 epochs is not far above chance (0.1)"
    );
    let params: i64 = scalar(&db, "SELECT params FROM runs").parse().unwrap();
    assert!(params > 1000, "{params}");
    // Drop path rises linearly from 0; the learning rate falls by the cosine.
    let schedule = sqlite(
        &db,
        "SELECT lr, drop_path_prob FROM train_epochs ORDER BY epoch",
    );
    assert_eq!(schedule[0][1], format!("{:.12e}", 0.0));
    assert_eq!(schedule[2][1], format!("{:.12e}", 0.3 * 2.0 / 3.0));
    assert_eq!(schedule[0][0], format!("{:.12e}", 0.025));
    // run_summary shows it with its test accuracy; again is "already done".
    assert_eq!(
        scalar(&db, "SELECT test_acc = (SELECT test_acc FROM train_epochs WHERE epoch = 2) FROM run_summary"),
        "1"
    );
    let again = train(
        &db,
        &["epochs=3", "steps_per_epoch=null"],
        &["--genotype", "darts_v2"],
    );
    assert!(text(&again).contains("already done"), "{}", text(&again));
}

#[test]
fn an_interrupted_training_resumes_to_the_numbers_of_an_uninterrupted_one() {
    let sets = ["epochs=3", "seed=4"];
    let (_a, straight) = tmp();
    assert!(train(&straight, &sets, &["--genotype", "darts_v1"])
        .status
        .success());
    let (b, db) = tmp();
    // Held at the second step of epoch 2 (12 steps an epoch) until stopped.
    let hold = Hold::every_run(b.path(), 14);
    let (var, value) = hold.env();
    let mut cmd = Command::new(BIN);
    cmd.args([
        "train",
        "--quiet",
        "--threads",
        "1",
        "--genotype",
        "darts_v1",
        "--db",
    ])
    .arg(&db)
    .env(var, value)
    .stderr(std::process::Stdio::null());
    for s in SMALL.iter().chain(&sets) {
        cmd.args(["--set", s]);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "first epoch never stored");
        let stored = try_sqlite(&db, "SELECT COUNT(*) FROM train_epochs");
        if stored.is_ok_and(|rows| rows[0][0] != "0") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert_eq!(scalar(&db, "SELECT status FROM runs"), "interrupted");
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM train_epochs"), "1");
    let resumed = train(&db, &sets, &["--genotype", "darts_v1", "--resume"]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert_eq!(sqlite(&db, EPOCH_NUMBERS), sqlite(&straight, EPOCH_NUMBERS));
}

/// Slurm's warning (SIGUSR2) to a one-process training held before the
/// 5th step of epoch 2: it stops there as a rank does, checkpointed at the
/// step, `interrupted`, with the ranks' exit status; the resume goes on
/// from that step and ends with the records and the weights, bit for bit,
/// of an uninterrupted training.
#[test]
fn sigusr2_checkpoints_one_process_at_the_step_and_a_resume_goes_on() {
    let sets = ["epochs=3", "seed=4", "drop_path_prob=0.3"];
    let genotype = ["--genotype", "darts_v1"];
    let (_a, straight) = tmp();
    let fresh = command(&straight, &sets, &genotype)
        .env(CHECKSUM.0, CHECKSUM.1)
        .output()
        .unwrap();
    assert!(fresh.status.success(), "{}", text(&fresh));
    let (b, db) = tmp();
    // 12 steps an epoch: global step 17 is the 5th of epoch 2.
    let hold = Hold::every_run(b.path(), 17);
    let (var, value) = hold.env();
    let child = command(&db, &sets, &genotype)
        .env(var, value)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let held = b.path().join("hold.held");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !held.exists() {
        assert!(
            Instant::now() < deadline,
            "the training never reached the hold"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: plain kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGUSR2) };
    let out = child.wait_with_output().unwrap();
    hold.release();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(130), "{all}");
    assert!(all.contains("SIGUSR2"), "{all}");
    assert!(
        all.contains("interrupted at step 4 of epoch 2, checkpointed there"),
        "{all}"
    );
    assert!(all.contains("the same command plus --resume"), "{all}");
    assert_eq!(scalar(&db, "SELECT status FROM runs"), "interrupted");
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM train_epochs"), "1");
    // Not a `train --slurm` run: `runs cancel` has no job to scancel.
    let cancel = Command::new(BIN)
        .args(["runs", "cancel", "1", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(!cancel.status.success(), "{}", text(&cancel));
    assert!(
        text(&cancel).contains("run 1 has no Slurm job recorded"),
        "{}",
        text(&cancel)
    );
    let resumed = command(&db, &sets, &[genotype[0], genotype[1], "--resume"])
        .env(CHECKSUM.0, CHECKSUM.1)
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert_eq!(sqlite(&db, EPOCH_NUMBERS), sqlite(&straight, EPOCH_NUMBERS));
    assert_eq!(
        checksum(&resumed),
        checksum(&fresh),
        "the resumed run's weights differ"
    );
}

/// A training stopped part-way through an epoch resumes from that step:
/// stopped in epoch 2 and again in epoch 3, with drop path and cutout on
/// (both random), it records the numbers of an uninterrupted training.
#[test]
fn a_training_stopped_part_way_through_an_epoch_resumes_from_that_step() {
    let sets = ["epochs=3", "seed=4", "drop_path_prob=0.3"];
    let genotype = ["--genotype", "darts_v1"];
    let (_a, straight) = tmp();
    assert!(train(&straight, &sets, &genotype).status.success());
    let (_b, db) = tmp();
    let mut cmd = Command::new(BIN);
    cmd.args(["train", "--threads", "1", "--resume", "--db"])
        .arg(&db)
        .args(genotype)
        // 12 steps an epoch: step 17 is the 5th of epoch 2, 30 the 6th of 3.
        .env("DDSAS_FAULT_STOP_AT_STEPS", "17,30");
    for s in SMALL.iter().chain(&sets) {
        cmd.args(["--set", s]);
    }
    let said: Vec<(Option<i32>, String)> = (0..3)
        .map(|_| {
            let out = cmd.output().unwrap();
            (out.status.code(), text(&out))
        })
        .collect();
    assert_eq!(said[0].0, Some(130), "{}", said[0].1);
    assert!(
        said[0]
            .1
            .contains("interrupted at step 4 of epoch 2, checkpointed there"),
        "{}",
        said[0].1
    );
    assert_eq!(said[1].0, Some(130), "{}", said[1].1);
    assert!(
        said[1].1.contains("resuming at step 4 of epoch 2 of 3"),
        "{}",
        said[1].1
    );
    assert!(
        said[1].1.contains("interrupted at step 5 of epoch 3"),
        "{}",
        said[1].1
    );
    assert_eq!(said[2].0, Some(0), "{}", said[2].1);
    assert!(
        said[2].1.contains("resuming at step 5 of epoch 3 of 3"),
        "{}",
        said[2].1
    );
    assert_eq!(sqlite(&db, EPOCH_NUMBERS), sqlite(&straight, EPOCH_NUMBERS));
}

#[test]
fn from_run_trains_a_done_searchs_cell_and_refuses_the_others() {
    let (_dir, db) = tmp();
    let search = |sets: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.args(["search", "--quiet", "--threads", "1", "--db"])
            .arg(&db);
        for s in [
            "epochs=1",
            "layers=1",
            "init_channels=4",
            "batch_size=16",
            "steps_per_epoch=2",
        ]
        .iter()
        .chain(sets)
        {
            cmd.args(["--set", s]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    };
    search(&["L=56", "M=2"]);
    search(&["space=nb201", "L=12", "M=2"]);
    search(&["L=56", "M=2", "seed=3"]);
    let rt = super::util::rt();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE runs SET status = 'interrupted' WHERE id = 3")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let out = train(&db, &["epochs=1"], &["--from-run", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    let cell = scalar(&db, "SELECT final_genotype FROM runs WHERE id = 1");
    assert_eq!(
        sqlite(
            &db,
            "SELECT genotype, parent FROM run_summary WHERE method = 'train'"
        ),
        vec![vec![cell, "1".to_string()]]
    );
    for (run, words) in [
        ("2", "NAS-Bench-201"),
        ("3", "run 3 is interrupted"),
        ("9", "there is no run 9"),
        ("4", "is a train run"),
    ] {
        let out = train(&db, &["epochs=1"], &["--from-run", run]);
        let said = text(&out);
        assert!(
            !out.status.success() && said.contains(words),
            "{run}: {said}"
        );
    }
    let out = train(&db, &[], &["--genotype", "normal=[(sep_conv_3x3 0)]"]);
    let said = text(&out);
    assert!(
        said.contains("at character 23") && said.contains("expected `,`"),
        "{said}"
    );
    let out = train(&db, &[], &["--genotype", "darts_v2", "--dry-run"]);
    assert!(text(&out).contains("params="), "{}", text(&out));
    // Two train runs compare by their train keys.
    let other = train(&db, &["epochs=1", "lr=0.05"], &["--genotype", "darts_v2"]);
    assert!(other.status.success(), "{}", text(&other));
    let id = scalar(&db, "SELECT max(id) FROM runs");
    let compared = Command::new(BIN)
        .args(["runs", "compare", "4", &id, "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let said = text(&compared);
    assert!(compared.status.success(), "{said}");
    assert!(
        said.contains("genotype") && said.contains("lr") && said.contains("0.05"),
        "{said}"
    );
}

/// `ddsas train --dry-run ARGS` on a fresh machine: an empty data folder
/// and home, nothing of the environment's data settings.
fn fresh_dry_run(home: &Path, args: &[&str]) -> Output {
    let data = home.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["train", "--dry-run", "--db"])
        .arg(home.join("results.db"))
        .args(args)
        .env("HOME", home)
        .env("DDSAS_DATA", &data);
    for var in [
        "DDSAS_CACHE",
        "XDG_CACHE_HOME",
        "DDSAS_DB",
        "DDSAS_DATA_MIRROR",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().expect("ddsas runs")
}

/// The README's dry run once printed 3347398 on a fresh machine (the
/// default digits have one channel), and with `dataset=cifar10` it refused
/// because CIFAR-10 was not downloaded. A dry run reads no image: it takes
/// the shape from the dataset and says what it counted.
#[test]
fn a_dry_run_needs_no_data_and_says_what_it_counted() {
    let home = tempfile::tempdir().unwrap();
    for (sets, line) in [
        (
            &[][..],
            "params=3347398 madds=32903424 (digits: 1x8x8, 10 classes)",
        ),
        (
            &["--set", "dataset=cifar10"][..],
            "params=3349342 madds=528359040 (cifar10: 3x32x32, 10 classes)",
        ),
        (
            &[
                "--set",
                "dataset=cifar100",
                "--set",
                "data_dir=/no/such/folder",
            ][..],
            "params=3401272 madds=528410880 (cifar100: 3x32x32, 100 classes)",
        ),
        (
            &["--set", "dataset=imagenet"][..],
            "params=4718752 madds=529911552 (imagenet: 3x224x224, 1000 classes)",
        ),
        (
            &["--set", "dataset=imagenet", "--set", "crop_size=64"][..],
            "params=4718752 madds=43963392 (imagenet: 3x64x64, 1000 classes)",
        ),
    ] {
        let out = fresh_dry_run(
            home.path(),
            &[&["--genotype", "darts_v2"][..], sets].concat(),
        );
        assert!(out.status.success(), "{sets:?}: {}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{line}\n"),
            "{sets:?}"
        );
    }
    let data = std::fs::read_dir(home.path().join("data")).unwrap().count();
    assert_eq!(data, 0, "a dry run fetched data");
    assert!(
        !home.path().join("results.db").exists(),
        "a dry run opened the database"
    );
}

/// `--genotype @FILE:NAME` trains a genotype of a paper's
/// genotypes.py as it stands, and names the file when it is not there.
#[test]
fn genotype_at_file_name_reads_a_genotypes_py() {
    let home = tempfile::tempdir().unwrap();
    let py = home.path().join("genotypes.py");
    std::fs::write(
        &py,
        "from collections import namedtuple\n\
         Genotype = namedtuple('Genotype', 'normal normal_concat reduce reduce_concat')\n\
         PC_STYLE = Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0),\n    \
         ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)],\n    \
         normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2),\n    \
         ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)],\n    \
         reduce_concat=range(2, 6))\n",
    )
    .unwrap();
    let file = py.display().to_string();
    let cifar = ["--set", "dataset=cifar10"];
    let out = fresh_dry_run(
        home.path(),
        &[&["--genotype", &format!("@{file}:PC_STYLE")][..], &cifar].concat(),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("params=3349342 madds=528359040 (cifar10"),
        "{}",
        text(&out)
    );
    let out = fresh_dry_run(home.path(), &["--genotype", &format!("@{file}:DARTS_V2")]);
    let said = text(&out);
    assert!(
        !out.status.success()
            && said.contains(&format!("{file} has no genotype `DARTS_V2`"))
            && said.contains("the genotypes there are PC_STYLE"),
        "{said}"
    );
    let out = fresh_dry_run(home.path(), &["--genotype", "@nowhere/genotypes.py"]);
    let said = text(&out);
    assert!(
        !out.status.success() && said.contains("cannot read genotype file nowhere/genotypes.py"),
        "{said}"
    );
}
