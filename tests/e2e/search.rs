//! End-to-end tests of `ddsas search`: real libtorch training on the bundled
//! digits, a real SQLite file, checked through SQL.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::util::{scalar, sqlite, text, tmp, try_sqlite, Hold, BIN};

/// A tiny network so that a test search takes seconds on one core.
const TINY: &[&str] = &[
    "layers=2",
    "init_channels=4",
    "batch_size=16",
    "L=16",
    "M=2",
];

fn search(db: &Path, sets: &[&str], extra: &[&str]) -> Output {
    search_command(db, sets, extra)
        .arg("--quiet")
        .output()
        .expect("ddsas runs")
}

/// `ddsas search` of the tiny network, not quiet.
fn search_command(db: &Path, sets: &[&str], extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["search", "--threads", "1", "--db"])
        .arg(db)
        // CIFAR without data_dir looks here: an empty folder, not the
        // machine's cache.
        .env("DDSAS_DATA", db.with_file_name("data"));
    for s in TINY.iter().chain(sets) {
        cmd.args(["--set", s]);
    }
    cmd.args(extra);
    cmd
}

/// The measurements of every epoch that must not depend on timing.
const EPOCH_NUMBERS: &str =
    "SELECT epoch, train_acc, train_loss, valid_acc, valid_loss, lr, genotype, \
     skip_normal, skip_reduce, cosine_distance FROM epochs ORDER BY epoch";

#[test]
fn ddsas_search_learns_and_records_every_epoch() {
    let (_dir, db) = tmp();
    let out = search(
        &db,
        &[
            "epochs=3",
            "batch_size=32",
            "layers=3",
            "L=56",
            "M=30",
            "seed=1",
            "steps_per_epoch=20",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(scalar(&db, "SELECT status FROM runs"), "done");
    let acc: f64 = scalar(&db, "SELECT valid_acc FROM epochs WHERE epoch = 2")
        .parse()
        .unwrap();
    assert!(
        acc > 0.4,
        "valid accuracy {acc} after 3 epochs is not far above chance (0.1)"
    );
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM epochs"), "3");
    assert_eq!(scalar(&db, "SELECT COUNT(DISTINCT epoch) FROM epochs"), "3");
    // Sampling counts add up: per epoch and cell, the ops sampled so far,
    // `none` included, equal the sizes of the subspaces drawn so far (each
    // has L = 56).
    let mismatches = scalar(
        &db,
        "SELECT COUNT(*) FROM (
           SELECT e.epoch, c.cell,
                  (SELECT SUM(count) FROM sampling_counts s
                    WHERE s.run_id = e.run_id AND s.epoch = e.epoch AND s.cell = c.cell) AS counted,
                  (SELECT SUM(size) FROM subspaces u
                    WHERE u.run_id = e.run_id AND u.epoch <= e.epoch AND u.cell = c.cell) AS drawn
           FROM epochs e, (SELECT 'normal' AS cell UNION SELECT 'reduce') c)
         WHERE counted IS NULL OR counted != drawn",
    );
    assert_eq!(mismatches, "0");
    let sizes = sqlite(&db, "SELECT DISTINCT size FROM subspaces");
    assert_eq!(sizes, vec![vec!["56".to_string()]]);
    // One subspace at the start, then one before every step that follows
    // M = 30 weight steps (the 60th step is the last: no draw after it).
    let expected = 1 + (3 * 20 - 1) / 30;
    assert_eq!(
        scalar(&db, "SELECT COUNT(DISTINCT iteration) FROM subspaces"),
        expected.to_string()
    );
    // The ratio histogram counts exactly the combinations of the subspaces.
    let hist = scalar(&db, "SELECT SUM(count) FROM ratio_hist WHERE epoch = 2");
    let combos = scalar(&db, "SELECT SUM(combinations) FROM subspaces");
    assert_eq!(hist, combos);
    // Done configs are never run again.
    let again = search(
        &db,
        &[
            "epochs=3",
            "batch_size=32",
            "layers=3",
            "L=56",
            "M=30",
            "seed=1",
            "steps_per_epoch=20",
        ],
        &[],
    );
    assert!(again.status.success());
    assert!(text(&again).contains("already done"), "{}", text(&again));
    assert_eq!(scalar(&db, "SELECT attempts FROM runs"), "1");
}

#[test]
fn same_config_and_seed_give_identical_numbers() {
    let (_a, db_a) = tmp();
    let (_b, db_b) = tmp();
    let sets = ["epochs=2", "steps_per_epoch=4", "seed=3"];
    assert!(search(&db_a, &sets, &[]).status.success());
    assert!(search(&db_b, &sets, &[]).status.success());
    let a = sqlite(&db_a, EPOCH_NUMBERS);
    assert_eq!(a.len(), 2);
    assert_eq!(a, sqlite(&db_b, EPOCH_NUMBERS));
    let counts = "SELECT epoch, cell, edge, op, count FROM sampling_counts ORDER BY 1, 2, 3, 4";
    assert_eq!(sqlite(&db_a, counts), sqlite(&db_b, counts));
}

#[test]
fn interrupted_then_resumed_run_matches_an_uninterrupted_one() {
    let sets = ["epochs=3", "steps_per_epoch=6", "seed=5", "M=3"];
    let (_a, straight) = tmp();
    assert!(search(&straight, &sets, &[]).status.success());

    let (b, db) = tmp();
    // Held at the second step of epoch 2 (6 steps an epoch) until stopped.
    let hold = Hold::every_run(b.path(), 8);
    let (var, value) = hold.env();
    let mut cmd = Command::new(BIN);
    cmd.args(["search", "--quiet", "--threads", "1", "--db"])
        .arg(&db)
        .env(var, value);
    for s in TINY.iter().chain(&sets) {
        cmd.args(["--set", s]);
    }
    let mut child = cmd.spawn().unwrap();
    // Stop it once the first epoch is stored (it is then in epoch 2).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "first epoch never stored");
        let stored = try_sqlite(&db, "SELECT COUNT(*) FROM epochs");
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
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM epochs"), "1");
    let resumed = search(&db, &sets, &["--resume"]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert_eq!(sqlite(&db, EPOCH_NUMBERS), sqlite(&straight, EPOCH_NUMBERS));
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM epochs"), "3");
}

/// A run stopped part-way through an epoch (Ctrl-C, or Slurm's SIGUSR2 to
/// a pull worker) is checkpointed at that step and resumes from it: stopped
/// in epoch 2 and again in epoch 3, each method's records (per-step,
/// subspace and sampling tables included) equal an uninterrupted run's.
#[test]
fn a_run_stopped_part_way_through_an_epoch_resumes_from_that_step() {
    let tables = [
        "SELECT epoch, train_acc, train_loss, valid_acc, valid_loss, lr, tau, genotype, \
         cosine_distance FROM epochs ORDER BY epoch",
        "SELECT step, epoch, cosine_distance, minibatch_acc FROM steps ORDER BY step",
        "SELECT iteration, epoch, cell, size, combinations FROM subspaces ORDER BY 1, 3",
        "SELECT epoch, cell, edge, op, count FROM sampling_counts ORDER BY 1, 2, 3, 4",
    ];
    for method in ["ddsas", "darts", "gdas"] {
        let method_set = format!("method={method}");
        let sets = [
            method_set.as_str(),
            "epochs=3",
            "steps_per_epoch=6",
            "seed=5",
            "log_steps=true",
        ];
        let (_a, straight) = tmp();
        assert!(search(&straight, &sets, &[]).status.success());
        let (dir, db) = tmp();
        // Stops before weight steps 9 (epoch 2, 2 steps done) and 14
        // (epoch 3, 1 step done); a process never stops at its first step.
        let stopped = |expect: &[&str]| {
            // Not quiet: the resume's first line says where it goes on.
            let out = search_command(&db, &sets, &["--resume"])
                .env("DDSAS_FAULT_STOP_AT_STEPS", "9,14")
                .output()
                .unwrap();
            let said = text(&out);
            for part in expect {
                assert!(said.contains(part), "{method}: {part:?} not in {said}");
            }
            out.status.code()
        };
        assert_eq!(
            stopped(&["interrupted at step 2 of epoch 2, checkpointed there"]),
            Some(130)
        );
        assert_eq!(scalar(&db, "SELECT status FROM runs"), "interrupted");
        assert_eq!(scalar(&db, "SELECT COUNT(*) FROM epochs"), "1");
        let checkpoints = dir.path().join("checkpoints");
        let fingerprint = std::fs::read_dir(&checkpoints).unwrap().next().unwrap();
        let saved = fingerprint
            .unwrap()
            .path()
            .join("state-0001-step-000002.json");
        assert!(saved.is_file(), "{}", saved.display());
        assert_eq!(
            stopped(&[
                "resuming at step 2 of epoch 2 of 3",
                "interrupted at step 1 of epoch 3",
            ]),
            Some(130)
        );
        assert_eq!(stopped(&["resuming at step 1 of epoch 3 of 3"]), Some(0));
        for table in tables {
            assert_eq!(
                sqlite(&db, table),
                sqlite(&straight, table),
                "{method}: {table}"
            );
        }
    }
}

/// Starts (or resumes) a search held before weight step `hold_at` and
/// sends `signal` once it has stored another epoch (before that step).
fn signal_after_next_epoch(
    db: &Path,
    sets: &[&str],
    signal: i32,
    hold_at: u64,
) -> std::process::ExitStatus {
    let hold = Hold::every_run(db.parent().unwrap(), hold_at);
    let (var, value) = hold.env();
    let mut cmd = Command::new(BIN);
    cmd.args(["search", "--quiet", "--threads", "1", "--resume", "--db"])
        .arg(db)
        .env(var, value)
        .stderr(std::process::Stdio::null());
    for s in TINY.iter().chain(sets) {
        cmd.args(["--set", s]);
    }
    let stored_before = try_sqlite(db, "SELECT COUNT(*) FROM epochs")
        .map(|rows| rows[0][0].clone())
        .unwrap_or_else(|_| "0".into());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "no epoch stored");
        let stored = try_sqlite(db, "SELECT COUNT(*) FROM epochs");
        if stored.is_ok_and(|rows| rows[0][0] != stored_before) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    child.wait().unwrap()
}

#[test]
fn a_hangup_interrupts_and_a_killed_search_is_taken_over_at_once() {
    let sets = ["epochs=4", "steps_per_epoch=6", "seed=9"];
    let (_dir, db) = tmp();
    // A closed terminal (SIGHUP) stops at a safe point, like Ctrl-C
    // (held at the 2nd step of epoch 2, 6 steps an epoch)...
    let status = signal_after_next_epoch(&db, &sets, libc::SIGHUP, 8);
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert_eq!(scalar(&db, "SELECT status FROM runs"), "interrupted");
    // kill -9 leaves the run `running` with a dead pid (held at the 2nd
    // step of epoch 3)...
    let status = signal_after_next_epoch(&db, &sets, libc::SIGKILL, 14);
    assert!(status.code().is_none(), "{status:?}");
    assert_eq!(scalar(&db, "SELECT status FROM runs"), "running");
    // ...which the next search of this host takes over without waiting for
    // the heartbeat to go stale.
    let resumed = search(&db, &sets, &["--resume"]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM epochs"), "4");
}

#[test]
fn bench_step_times_a_given_mask_in_each_layout_and_refuses_a_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let mask = dir.path().join("mask.json");
    // One op per edge (sep_conv_3x3), plus `none` on edge 0, both cell types.
    let cell: Vec<Vec<bool>> = (0..14)
        .map(|e| (0..8).map(|k| k == 4 || (e == 0 && k == 0)).collect())
        .collect();
    std::fs::write(
        &mask,
        serde_json::to_string(&vec![cell.clone(), cell]).unwrap(),
    )
    .unwrap();
    let args = [
        "bench", "step", "--layers", "3", "--C", "4", "--size", "8", "--batch", "4",
    ];
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args(args)
            .args(["--steps", "1", "--threads", "1", "--mask"])
            .arg(&mask)
            .args(extra)
            .output()
            .unwrap()
    };
    for layout in ["auto", "nchw", "nhwc"] {
        let out = run(&["--layout", layout]);
        assert!(out.status.success(), "{layout}: {}", text(&out));
        assert!(text(&out).contains("median_step_s="), "{}", text(&out));
    }
    let out = run(&["--method", "darts"]);
    assert!(
        text(&out).contains("only applies to --method ddsas"),
        "{}",
        text(&out)
    );
    std::fs::write(&mask, "[[[true]]]").unwrap();
    let out = run(&[]);
    assert!(text(&out).contains("must be 2 x 14 x 8"), "{}", text(&out));
}

#[test]
fn a_nan_loss_fails_the_run_and_keeps_earlier_epochs() {
    let (_dir, db) = tmp();
    let out = Command::new(BIN)
        .args(["search", "--quiet", "--threads", "1", "--db"])
        .arg(&db)
        .args(
            TINY.iter()
                .chain(&["epochs=3", "steps_per_epoch=4"])
                .flat_map(|s| ["--set", s]),
        )
        .env("DDSAS_FAULT_NAN_AT_STEP", "6")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out);
    // Weight step 6 of a 4-step-per-epoch run: the second step of the
    // second epoch, counted from 1 as in the progress lines.
    assert!(err.contains("epoch 2, step 2"), "{err}");
    assert_eq!(scalar(&db, "SELECT status FROM runs"), "failed");
    assert!(scalar(&db, "SELECT error FROM runs").contains("diverged"));
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM epochs"), "1");
}

#[test]
fn bad_configs_are_rejected_before_training_naming_the_key() {
    let (dir, db) = tmp();
    let cases: &[(&[&str], &str)] = &[
        (&["learning_rate=0.1"], "learning_rate"),
        (&["L=5"], "`L`"),
        (&["M=0"], "`M`"),
        (&["method=enas"], "enas"),
        (&["space=nasnet"], "nasnet"),
        (&["dataset=cifar10"], "data_dir"),
        (
            &["dataset=cifar10", "data_dir=/nonexistent/cifar"],
            "/nonexistent/cifar",
        ),
        (&["epochs=ten"], "epochs"),
    ];
    for (sets, needle) in cases {
        let out = search(&db, sets, &[]);
        assert!(!out.status.success(), "{sets:?} accepted");
        assert!(text(&out).contains(needle), "{sets:?}: {}", text(&out));
    }
    let yaml = dir.path().join("bad.yaml");
    std::fs::write(&yaml, "method: ddsas\nepochs: [1\n").unwrap();
    let out = Command::new(BIN)
        .args(["search", "--config"])
        .arg(&yaml)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("bad.yaml"), "{}", text(&out));
    assert!(!db.exists(), "nothing may be written for a rejected config");
}

#[test]
fn darts_and_gdas_run_on_both_spaces() {
    let (_dir, db) = tmp();
    for method in ["darts", "gdas"] {
        for space in ["darts", "nb201"] {
            let layers = if space == "nb201" {
                "layers=1"
            } else {
                "layers=2"
            };
            let out = search(
                &db,
                &[
                    &format!("method={method}"),
                    &format!("space={space}"),
                    layers,
                    "epochs=2",
                    "steps_per_epoch=3",
                ],
                &[],
            );
            assert!(out.status.success(), "{method} on {space}: {}", text(&out));
            // A NB201 search's test accuracy is the benchmark's: without an
            // imported table the summary says how to get it.
            assert_eq!(
                text(&out).contains("no benchmark table imported"),
                space == "nb201",
                "{}",
                text(&out)
            );
        }
    }
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'"),
        "4"
    );
    for genotype in sqlite(&db, "SELECT final_genotype FROM runs WHERE space = 'nb201'") {
        assert!(
            genotype[0].starts_with('|') && genotype[0].matches('~').count() == 6,
            "{}",
            genotype[0]
        );
    }
    // GDAS samples one op per edge per weight step: 2 epochs x 3 steps.
    let per_edge = sqlite(
        &db,
        "SELECT SUM(count) FROM sampling_counts s JOIN runs r ON r.id = s.run_id
         WHERE r.method = 'gdas' AND s.epoch = 1 GROUP BY s.run_id, s.cell, s.edge",
    );
    assert!(per_edge.iter().all(|r| r[0] == "6"), "{per_edge:?}");
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM sampling_counts s JOIN runs r ON r.id = s.run_id WHERE r.method = 'darts'"), "0");
    let taus = sqlite(&db, "SELECT tau FROM epochs e JOIN runs r ON r.id = e.run_id WHERE r.method = 'gdas' AND r.space = 'nb201' ORDER BY epoch");
    assert_eq!(taus.len(), 2);
    let taus: Vec<f64> = taus.iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(
        (taus[0] - 10.0).abs() < 1e-9 && (taus[1] - 0.1).abs() < 1e-9,
        "{taus:?}"
    );
}

/// A run recorded before L counted `none` (definitions 1, the fingerprint of
/// the config alone) is not taken for the same experiment: the search runs
/// again as a new run, and `runs list` marks the old row.
#[test]
fn runs_of_older_definitions_stay_readable_and_are_not_taken_for_done() {
    let (_dir, db) = tmp();
    let sets = ["epochs=1", "steps_per_epoch=2"];
    let out = search(&db, &sets, &[]);
    assert!(out.status.success(), "{}", text(&out));
    // Make the run look as a session-3 ddsas registered it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE runs SET definitions = 1, fingerprint = 'old' || fingerprint")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let again = search(&db, &sets, &[]);
    let said = text(&again);
    assert!(again.status.success(), "{said}");
    assert!(!said.contains("already done"), "{said}");
    assert_eq!(
        sqlite(&db, "SELECT definitions, status FROM runs ORDER BY id"),
        vec![vec!["1", "done"], vec!["3", "done"]]
    );
    let list = Command::new(BIN)
        .args(["runs", "list", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let listed = text(&list);
    assert!(list.status.success(), "{listed}");
    assert!(
        listed.contains("v1 (older)") && listed.contains("L counts `none`"),
        "{listed}"
    );
    assert_eq!(listed.matches("v1 (older)").count(), 1, "{listed}");
}

#[test]
fn a_full_disk_interrupts_and_a_damaged_checkpoint_falls_back_to_the_one_before() {
    let sets = ["epochs=4", "steps_per_epoch=4", "seed=3", "M=3"];
    let (_a, straight) = tmp();
    assert!(search(&straight, &sets, &[]).status.success());

    let (dir, db) = tmp();
    let ckpt = dir.path().join("ckpt");
    std::fs::create_dir_all(&ckpt).unwrap();
    // The checkpoint of epoch 3 meets a full disk: /dev/full answers every
    // write with ENOSPC, as a full file system does.
    std::os::unix::fs::symlink("/dev/full", ckpt.join("tensors-0002.ot.tmp")).unwrap();
    // --resume from the start: a fresh search empties its checkpoint folder.
    let dir_arg = ["--checkpoint-dir", ckpt.to_str().unwrap(), "--resume"];
    let out = search(&db, &sets, &dir_arg);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(75), "{said}");
    assert!(said.contains("no space left on the disk of"), "{said}");
    assert!(said.contains("tensors-0002.ot"), "{said}");
    assert!(said.contains("plus --resume"), "{said}");
    assert_eq!(scalar(&db, "SELECT status FROM runs"), "interrupted");
    // No half-written file stands for a checkpoint.
    assert!(!ckpt.join("tensors-0002.ot.tmp").exists());
    assert!(!ckpt.join("tensors-0002.ot").exists());

    // Now the newest checkpoint (epoch 2) is damaged: the run goes on from
    // epoch 1's, says so in one line, and ends where an undisturbed one does.
    let newest = ckpt.join("tensors-0001.ot");
    let len = std::fs::metadata(&newest).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let resumed = search(&db, &sets, &dir_arg);
    let said = text(&resumed);
    assert!(resumed.status.success(), "{said}");
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    let report: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("is damaged"))
        .collect();
    assert_eq!(report.len(), 1, "{said}");
    assert!(
        report[0].contains("state-0001.json")
            && report[0].ends_with("resuming from the checkpoint of epoch 1"),
        "{said}"
    );
    assert!(!said.contains("frame #"), "{said}");
    assert_eq!(sqlite(&db, EPOCH_NUMBERS), sqlite(&straight, EPOCH_NUMBERS));
}
