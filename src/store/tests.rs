//! Tests of the run history against in-memory and temporary file databases.

use std::time::Instant;

use super::*;
use crate::arch::metrics::{EpochRecord, SamplingCount, StepRecord, SubspaceRecord, TrainEpoch};
use crate::arch::space::SearchSpace;
use crate::arch::space::SpaceKind;
use crate::config::train::DistBackend;
use crate::config::{ResolvedConfig, SearchConfig};

/// Runs each store test on both backends: an in-memory SQLite database, a
/// fresh PostgreSQL database of its own (see `test_postgres`), and one on
/// the server that accepts only TLS.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Store::open_in_memory().await.unwrap()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(db) = super::super::test_postgres::TestDatabase::create().await else {
                        return;
                    };
                    let location = super::DbLocation::Postgres(db.url().to_owned());
                    let store = super::Store::connect(&location).await.unwrap();
                    super::$name(store.clone()).await;
                    store.close().await;
                    db.drop_now().await;
                }
            )*
        }
        /// The same suite on a server that accepts only TLS connections,
        /// connected with `sslmode=verify-full` (see `test_postgres`).
        mod postgres_tls {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(server) = super::super::test_postgres::tls_server_or_skip() else {
                        return;
                    };
                    let db = super::super::test_postgres::TestDatabase::create_on(&server)
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    let location = super::DbLocation::Postgres(db.url().to_owned());
                    let store = super::Store::connect(&location).await.unwrap();
                    super::$name(store.clone()).await;
                    store.close().await;
                    db.drop_now().await;
                }
            )*
        }
    };
}

on_both_backends!(
    ensure_run_is_idempotent_per_fingerprint,
    claim_is_exclusive,
    claim_next_gives_each_caller_a_different_run,
    stale_takeover_only_past_stale_after_s,
    life_cycle_finish_fail_interrupt,
    record_epoch_writes_exactly_the_expected_rows,
    nb201_records_use_its_cell_and_op_names,
    nb201_runs_store_the_benchmark_accuracy_whenever_the_table_comes,
    bad_indices_and_unknown_runs_write_nothing,
    redoing_an_epoch_replaces_it_and_what_followed,
    truncate_after_rewinds_records_and_progress,
    deleting_a_run_cascades_to_its_records,
    run_summary_exposes_config_columns_for_where_clauses,
    searches_and_train_runs_are_registered_with_their_kind,
    train_epochs_keep_top5_skipped_images_and_madds,
    a_train_run_is_redone_truncated_and_finished_by_the_one_path,
    a_transfer_to_imagenet_reports_its_top5_and_madds,
    claims_record_a_train_runs_ranks_and_backend,
);

/// The TLS-only server refuses, each in one line that names what did not
/// match and the setting to change: a CA that did not sign its
/// certificate, a host name its certificate does not name (it names
/// 127.0.0.1 only, not `localhost`), and a plain connection.
#[tokio::test]
async fn postgres_over_tls_refusals_say_what_did_not_match() {
    let Some(server) = super::test_postgres::tls_server_or_skip() else {
        return;
    };
    let server = url::Url::parse(&server).unwrap();
    let other_ca = tempfile::tempdir().unwrap();
    let ca = other_ca.path().join("other-ca.crt");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-new", "-nodes", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-days", "1"])
        .args(["-subj", "/CN=another CA", "-keyout"])
        .arg(other_ca.path().join("other-ca.key"))
        .arg("-out")
        .arg(&ca)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");

    let refusal = |url: url::Url| async move {
        let location = DbLocation::Postgres(url.to_string());
        let err = Store::connect(&location).await.unwrap_err().to_string();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!err.contains(url.password().unwrap_or("-")), "{err}");
        err
    };
    let wrong_ca = refusal(with_param(&server, "sslrootcert", ca.to_str().unwrap())).await;
    assert!(wrong_ca.contains("not signed by a CA"), "{wrong_ca}");
    assert!(wrong_ca.contains("set sslrootcert"), "{wrong_ca}");

    let mut by_name = server.clone();
    by_name.set_host(Some("localhost")).unwrap();
    let wrong_host = refusal(by_name).await;
    assert!(
        wrong_host.contains("not valid for the host name \"localhost\""),
        "{wrong_host}"
    );
    assert!(wrong_host.contains("sslmode=verify-ca"), "{wrong_host}");

    let plain = refusal(with_param(&server, "sslmode", "disable")).await;
    assert!(
        plain.contains("accepts only encrypted connections"),
        "{plain}"
    );
    assert!(plain.contains("sslmode=require"), "{plain}");
}

/// `url` with `key` set to `value` (replacing what it had).
fn with_param(url: &url::Url, key: &str, value: &str) -> url::Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut url = url.clone();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(key, value);
    url
}

fn cfg(overrides: &[&str]) -> ResolvedConfig {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    SearchConfig::default()
        .with_overrides(&overrides)
        .unwrap()
        .resolve()
        .unwrap()
}

fn darts() -> SearchSpace {
    SearchSpace::new(SpaceKind::Darts)
}

/// A full DARTS-space DDSAS record: 2x14x8 sampling counts, two subspaces
/// per cell type, a ratio histogram per cell type and `steps` steps.
fn darts_record(epoch: u32, valid_acc: f64, steps: u64) -> EpochRecord {
    let mut sampling_counts = Vec::new();
    for cell in 0..2 {
        for edge in 0..14 {
            for op in 0..8 {
                let count = u64::from(epoch + 1) * (op as u64 + edge as u64);
                sampling_counts.push(SamplingCount {
                    cell,
                    edge,
                    op,
                    count,
                });
            }
        }
    }
    let subspaces = (0..2u64)
        .flat_map(|i| {
            (0..2).map(move |cell| SubspaceRecord {
                iteration: u64::from(epoch) * 2 + i,
                cell,
                size: 28,
                combinations: 60 + i,
            })
        })
        .collect();
    let steps = (0..steps)
        .map(|i| StepRecord {
            step: u64::from(epoch) * steps + i,
            cosine_distance: (i > 0).then_some(0.25),
            minibatch_acc: 0.5,
        })
        .collect();
    EpochRecord {
        epoch,
        train_acc: 0.5,
        train_loss: 1.2,
        valid_acc,
        valid_loss: 1.3,
        lr: 0.025,
        tau: None,
        genotype: format!("normal=[...] reduce=[...] epoch {epoch}"),
        skip_normal: epoch,
        skip_reduce: Some(1),
        cosine_distance: (epoch > 0).then_some(0.1),
        wall_s: 12.5,
        images_per_s: 900.0,
        peak_mem_bytes: Some(1 << 30),
        sampling_counts,
        subspaces,
        ratio_hist: vec![[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]],
        steps,
    }
}

fn claim(owner: &str, stale_after_s: Option<f64>) -> Claim {
    Claim {
        owner: owner.into(),
        device: "cpu".into(),
        pid: 42,
        stale_after_s,
        ranks: Ranks::ONE,
    }
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// Rows of every per-epoch table of run `id`: epochs, sampling counts,
/// subspaces, ratio bins, steps.
async fn table_counts(store: &Store, id: i64) -> [i64; 5] {
    let mut out = [0; 5];
    for (i, table) in [
        "epochs",
        "sampling_counts",
        "subspaces",
        "ratio_hist",
        "steps",
    ]
    .iter()
    .enumerate()
    {
        out[i] = sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE run_id = $1"))
            .bind(id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    }
    out
}

#[tokio::test]
async fn migrations_apply_on_a_fresh_file_and_reopen_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    let store = Store::open(&path).await.unwrap();
    let id = store.ensure_run(&cfg(&[])).await.unwrap().id;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(count(&store, "PRAGMA foreign_keys").await, 1);
    store.close().await;

    let store = Store::open(&path).await.unwrap();
    assert_eq!(
        count(&store, "SELECT count(*) FROM _sqlx_migrations").await,
        SQLITE_MIGRATOR.iter().count() as i64
    );
    assert_eq!(store.run(id).await.unwrap().unwrap().id, id);
    assert_eq!(store.ensure_run(&cfg(&[])).await.unwrap().id, id);
}

#[tokio::test]
async fn a_file_that_is_not_ours_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![b'x'; 8192]).unwrap();
    let err = Store::open(&junk).await.unwrap_err().to_string();
    assert!(
        err.contains("junk.db") && err.contains("is not a ddsas database"),
        "{err}"
    );

    let other = dir.path().join("other.db");
    let options = SqliteConnectOptions::new()
        .filename(&other)
        .create_if_missing(true);
    let mut conn = sqlx::ConnectOptions::connect(&options).await.unwrap();
    sqlx::query("CREATE TABLE notes (x TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
    let err = Store::open(&other).await.unwrap_err().to_string();
    assert!(err.contains("other.db") && err.contains("notes"), "{err}");
}

async fn ensure_run_is_idempotent_per_fingerprint(store: Store) {
    let c = cfg(&["L=42", "seed=3"]);
    let a = store.ensure_run(&c).await.unwrap();
    let b = store.ensure_run(&c).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.fingerprint, c.fingerprint());
    assert_eq!(a.config_json, c.canonical_json());
    assert_eq!(
        (a.method, a.space, a.dataset),
        (
            Some(crate::config::Method::Ddsas),
            SpaceKind::Darts,
            crate::data::DatasetKind::Digits
        )
    );
    assert_eq!(
        (a.seed, a.epochs_total, a.epochs_done, a.attempts),
        (3, 50, 0, 0)
    );
    assert_eq!(a.status, RunStatus::Queued);
    let other = store.ensure_run(&cfg(&["L=42", "seed=4"])).await.unwrap();
    assert_ne!(other.id, a.id);
    assert_eq!(
        store
            .run_by_fingerprint(&c.fingerprint())
            .await
            .unwrap()
            .unwrap()
            .id,
        a.id
    );
    assert!(store.run(999).await.unwrap().is_none());
}

async fn claim_is_exclusive(store: Store) {
    let id = store.ensure_run(&cfg(&[])).await.unwrap().id;
    let (claim_a, claim_b) = (claim("a", None), claim("b", None));
    let (a, b) = tokio::join!(store.claim_run(id, &claim_a), store.claim_run(id, &claim_b));
    assert!(a.unwrap() ^ b.unwrap(), "exactly one claim wins");
    let row = store.run(id).await.unwrap().unwrap();
    assert_eq!(row.status, RunStatus::Running);
    assert_eq!(
        (row.attempts, row.pid, row.device.as_deref()),
        (0, Some(42), Some("cpu")),
        "a claim counts no attempt; the started worker's confirm does"
    );
    assert!(row.started_at.is_some() && row.heartbeat_at.is_some());
    assert!(!store.claim_run(id, &claim("c", None)).await.unwrap());
    let err = store.claim_run(999, &claim("a", None)).await.unwrap_err();
    assert_eq!(err.to_string(), "run 999 not found");
}

async fn claim_next_gives_each_caller_a_different_run(store: Store) {
    let mut planned = Vec::new();
    for seed in 0..5 {
        let id = store
            .ensure_run(&cfg(&[&format!("seed={seed}")]))
            .await
            .unwrap()
            .id;
        planned.push((id, seed));
    }
    store
        .register_sweep("pull", None, "pull.yaml", "name: pull", &planned)
        .await
        .unwrap();
    let mut claimers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let store = store.clone();
        claimers.spawn(async move {
            store
                .claim_next("pull", &claim(&format!("w{w}"), None))
                .await
        });
    }
    let mut ids: Vec<i64> = claimers
        .join_all()
        .await
        .into_iter()
        .filter_map(|r| r.unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected: Vec<i64> = planned.iter().map(|(id, _)| *id).collect();
    expected.sort_unstable();
    assert_eq!(ids, expected, "each run claimed exactly once");
    assert_eq!(
        store
            .claim_next("pull", &claim("late", None))
            .await
            .unwrap(),
        None
    );
    store.interrupt_run(expected[2]).await.unwrap();
    assert_eq!(
        store
            .claim_next("pull", &claim("late", None))
            .await
            .unwrap(),
        Some(expected[2]),
        "an interrupted run is claimable again"
    );
}

async fn stale_takeover_only_past_stale_after_s(store: Store) {
    let id = store.ensure_run(&cfg(&[])).await.unwrap().id;
    assert!(store.claim_run(id, &claim("a", None)).await.unwrap());
    store.heartbeat(id).await.unwrap();
    assert!(!store.claim_run(id, &claim("b", Some(60.0))).await.unwrap());
    // The owner died 100 s ago.
    sqlx::query("UPDATE runs SET heartbeat_at = heartbeat_at - 100 WHERE id = $1")
        .bind(id)
        .execute(store.pool())
        .await
        .unwrap();
    let started = store.run(id).await.unwrap().unwrap().started_at;
    assert!(!store.claim_run(id, &claim("b", None)).await.unwrap());
    assert!(!store
        .claim_run(id, &claim("b", Some(3600.0)))
        .await
        .unwrap());
    assert!(store.claim_run(id, &claim("b", Some(60.0))).await.unwrap());
    let row = store.run(id).await.unwrap().unwrap();
    assert_eq!((row.owner.as_deref(), row.attempts), (Some("b"), 0));
    assert_eq!(row.started_at, started, "started_at is the first claim");
    assert!(!store.claim_run(id, &claim("c", Some(60.0))).await.unwrap());
}

async fn life_cycle_finish_fail_interrupt(store: Store) {
    let id = store.ensure_run(&cfg(&[])).await.unwrap().id;
    store.interrupt_run(id).await.unwrap();
    assert_eq!(
        store.run(id).await.unwrap().unwrap().status,
        RunStatus::Queued
    );
    assert!(store.claim_run(id, &claim("a", None)).await.unwrap());
    store.interrupt_run(id).await.unwrap();
    assert_eq!(
        store.run(id).await.unwrap().unwrap().status,
        RunStatus::Interrupted
    );
    assert!(store.claim_run(id, &claim("a", None)).await.unwrap());
    store.fail_run(id, "CUDA out of memory").await.unwrap();
    let row = store.run(id).await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.error.as_deref()),
        (RunStatus::Failed, Some("CUDA out of memory"))
    );
    assert!(store.claim_run(id, &claim("a", None)).await.unwrap());
    assert_eq!(store.run(id).await.unwrap().unwrap().error, None);
    store
        .set_checkpoint_path(id, "/tmp/ck/run.ot")
        .await
        .unwrap();
    store
        .finish_run(
            id,
            RunResult::Search {
                genotype: "normal=[] reduce=[]",
                final_valid_acc: 0.91,
                wall_s: 3600.0,
            },
        )
        .await
        .unwrap();
    store.fail_run(id, "late error").await.unwrap();
    let row = store.run(id).await.unwrap().unwrap();
    assert_eq!(row.status, RunStatus::Done);
    assert_eq!(
        (row.final_valid_acc, row.wall_s, row.attempts),
        (Some(0.91), Some(3600.0), 0)
    );
    assert_eq!(row.checkpoint_path.as_deref(), Some("/tmp/ck/run.ot"));
    assert!(row.finished_at.is_some() && row.error.is_none());
    assert!(
        !store.claim_run(id, &claim("b", Some(0.0))).await.unwrap(),
        "done is never claimed"
    );
    for err in [
        store
            .finish_run(
                77,
                RunResult::Search {
                    genotype: "",
                    final_valid_acc: 0.0,
                    wall_s: 0.0,
                },
            )
            .await
            .unwrap_err(),
        store.fail_run(77, "x").await.unwrap_err(),
        store.interrupt_run(77).await.unwrap_err(),
        store.heartbeat(77).await.unwrap_err(),
        store.set_checkpoint_path(77, "x").await.unwrap_err(),
    ] {
        assert_eq!(err.to_string(), "run 77 not found");
    }
}

async fn record_epoch_writes_exactly_the_expected_rows(store: Store) {
    let id = store.ensure_run(&cfg(&[])).await.unwrap().id;
    store
        .record_epoch(id, EpochOf::Search(&darts(), &darts_record(0, 0.4, 3)))
        .await
        .unwrap();
    assert_eq!(table_counts(&store, id).await, [1, 224, 4, 10, 3]);

    let (label, count): (String, i64) = sqlx::query_as(
        "SELECT edge_label, count FROM sampling_counts
         WHERE run_id = $1 AND epoch = 0 AND cell = 'reduce' AND edge = 13 AND op = 'dil_conv_5x5'",
    )
    .bind(id)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!((label.as_str(), count), ("(4,5)", 20));
    let bins: Vec<(String, i64)> = sqlx::query_as(
        "SELECT bin, count FROM ratio_hist WHERE run_id = $1 AND cell = 'normal' ORDER BY bin_index",
    )
    .bind(id)
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(bins[2], ("0.9-1.1".to_string(), 3));
    assert_eq!(bins[4], (">=1.2".to_string(), 5));

    let epochs = store.epochs(id).await.unwrap();
    assert_eq!(epochs.len(), 1);
    let e = &epochs[0];
    assert_eq!(
        (e.epoch, e.valid_acc, e.skip_reduce, e.peak_mem_bytes),
        (0, 0.4, Some(1), Some(1 << 30))
    );
    assert_eq!((e.tau, e.cosine_distance), (None, None));
    let run = store.run(id).await.unwrap().unwrap();
    assert_eq!((run.epochs_done, run.best_valid_acc), (1, Some(0.4)));
}

async fn nb201_records_use_its_cell_and_op_names(store: Store) {
    let id = store
        .ensure_run(&cfg(&["space=nb201", "L=12"]))
        .await
        .unwrap()
        .id;
    let space = SearchSpace::new(SpaceKind::Nb201);
    let mut rec = darts_record(0, 0.3, 0);
    rec.sampling_counts = vec![SamplingCount {
        cell: 0,
        edge: 5,
        op: 3,
        count: 7,
    }];
    rec.subspaces.retain(|s| s.cell == 0);
    rec.ratio_hist.truncate(1);
    rec.skip_reduce = None;
    store
        .record_epoch(id, EpochOf::Search(&space, &rec))
        .await
        .unwrap();
    let row: (String, String, String) =
        sqlx::query_as("SELECT cell, edge_label, op FROM sampling_counts WHERE run_id = $1")
            .bind(id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(row, ("cell".into(), "(2,3)".into(), "nor_conv_3x3".into()));
}

/// A NB201 epoch of architecture `arch` (the rest as in a DARTS record
/// cut down to the one NB201 cell).
fn nb201_record(epoch: u32, arch: &str) -> EpochRecord {
    let mut rec = darts_record(epoch, 0.3, 0);
    rec.sampling_counts.clear();
    rec.subspaces.retain(|s| s.cell == 0);
    rec.ratio_hist.truncate(1);
    rec.skip_reduce = None;
    rec.genotype = arch.into();
    rec
}

async fn nb201_runs_store_the_benchmark_accuracy_whenever_the_table_comes(store: Store) {
    const A: &str =
        "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|";
    const B: &str = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|";
    let space = SearchSpace::new(SpaceKind::Nb201);
    let ran = |seed: u32| {
        let store = store.clone();
        let space = space.clone();
        async move {
            let id = store
                .ensure_run(&cfg(&["space=nb201", "L=12", &format!("seed={seed}")]))
                .await
                .unwrap()
                .id;
            store
                .record_epoch(id, EpochOf::Search(&space, &nb201_record(0, B)))
                .await
                .unwrap();
            store
                .record_epoch(id, EpochOf::Search(&space, &nb201_record(1, A)))
                .await
                .unwrap();
            store
                .finish_run(
                    id,
                    RunResult::Search {
                        genotype: A,
                        final_valid_acc: 0.3,
                        wall_s: 1.0,
                    },
                )
                .await
                .unwrap();
            id
        }
    };
    let epoch_accs = |id: i64| {
        let store = store.clone();
        async move {
            sqlx::query_as::<_, (Option<f64>, Option<f64>, Option<f64>)>(
                "SELECT nb201_cifar10, nb201_cifar100, nb201_imagenet16 FROM epochs WHERE run_id = $1 ORDER BY epoch",
            )
            .bind(id)
            .fetch_all(store.pool())
            .await
            .unwrap()
        }
    };
    // Searched before any table: nothing known, nothing made up.
    let before = ran(1).await;
    assert!(store.nb201_imported().await.unwrap().is_empty());
    assert_eq!(
        store.nb201_of_run(before).await.unwrap(),
        Nb201Accuracy::default()
    );
    // Importing fills in the runs already recorded.
    store
        .import_nb201("cifar10", "t.pickle", &[(A.into(), 93.5), (B.into(), 10.0)])
        .await
        .unwrap();
    store
        .import_nb201("ImageNet16-120", "t.pickle", &[(A.into(), 41.0)])
        .await
        .unwrap();
    assert_eq!(
        store.nb201_imported().await.unwrap(),
        vec!["cifar10", "ImageNet16-120"]
    );
    assert_eq!(
        epoch_accs(before).await,
        vec![(Some(10.0), None, None), (Some(93.5), None, Some(41.0))]
    );
    let expected = Nb201Accuracy {
        nb201_cifar10: Some(93.5),
        nb201_cifar100: None,
        nb201_imagenet16: Some(41.0),
    };
    assert_eq!(store.nb201_of_run(before).await.unwrap(), expected);
    // A run searched after the import gets it as each epoch is recorded.
    let after = ran(2).await;
    assert_eq!(epoch_accs(after).await, epoch_accs(before).await);
    assert_eq!(store.nb201_of_run(after).await.unwrap(), expected);
    // DARTS-space runs are left alone.
    let darts_run = store.ensure_run(&cfg(&[])).await.unwrap().id;
    store
        .record_epoch(
            darts_run,
            EpochOf::Search(&darts(), &darts_record(0, 0.3, 0)),
        )
        .await
        .unwrap();
    assert_eq!(epoch_accs(darts_run).await, vec![(None, None, None)]);
}

async fn bad_indices_and_unknown_runs_write_nothing(store: Store) {
    let id = store.ensure_run(&cfg(&[])).await.unwrap().id;
    let mut rec = darts_record(0, 0.4, 0);
    rec.sampling_counts[5].op = 8;
    let err = store
        .record_epoch(id, EpochOf::Search(&darts(), &rec))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("epoch 0 of run") && err.contains("op index 8"),
        "{err}"
    );
    let mut rec = darts_record(0, 0.4, 0);
    rec.ratio_hist.push([0; 5]);
    let err = store
        .record_epoch(id, EpochOf::Search(&darts(), &rec))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cell index 2"), "{err}");
    assert_eq!(table_counts(&store, id).await, [0; 5]);
    let err = store
        .record_epoch(999, EpochOf::Search(&darts(), &darts_record(0, 0.4, 0)))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "run 999 not found");
}

async fn redoing_an_epoch_replaces_it_and_what_followed(store: Store) {
    let id = store.ensure_run(&cfg(&[])).await.unwrap().id;
    store
        .record_epoch(id, EpochOf::Search(&darts(), &darts_record(0, 0.4, 3)))
        .await
        .unwrap();
    store
        .record_epoch(id, EpochOf::Search(&darts(), &darts_record(0, 0.45, 3)))
        .await
        .unwrap();
    assert_eq!(table_counts(&store, id).await, [1, 224, 4, 10, 3]);
    assert_eq!(store.epochs(id).await.unwrap()[0].valid_acc, 0.45);

    store
        .record_epoch(id, EpochOf::Search(&darts(), &darts_record(1, 0.9, 3)))
        .await
        .unwrap();
    store
        .record_epoch(id, EpochOf::Search(&darts(), &darts_record(2, 0.6, 3)))
        .await
        .unwrap();
    // A crash during epoch 1 after the database had epoch 2: redo epoch 1.
    store
        .record_epoch(id, EpochOf::Search(&darts(), &darts_record(1, 0.5, 3)))
        .await
        .unwrap();
    assert_eq!(table_counts(&store, id).await, [2, 448, 8, 20, 6]);
    let run = store.run(id).await.unwrap().unwrap();
    assert_eq!((run.epochs_done, run.best_valid_acc), (2, Some(0.5)));
}

async fn truncate_after_rewinds_records_and_progress(store: Store) {
    let id = store.ensure_run(&cfg(&[])).await.unwrap().id;
    for (epoch, acc) in [0.3, 0.4, 0.8, 0.5, 0.6].into_iter().enumerate() {
        store
            .record_epoch(
                id,
                EpochOf::Search(&darts(), &darts_record(epoch as u32, acc, 2)),
            )
            .await
            .unwrap();
    }
    assert_eq!(table_counts(&store, id).await, [5, 1120, 20, 50, 10]);
    store
        .truncate_after(id, RunKind::Search, Some(1))
        .await
        .unwrap();
    assert_eq!(table_counts(&store, id).await, [2, 448, 8, 20, 4]);
    let run = store.run(id).await.unwrap().unwrap();
    assert_eq!((run.epochs_done, run.best_valid_acc), (2, Some(0.4)));
    store
        .truncate_after(id, RunKind::Search, None)
        .await
        .unwrap();
    assert_eq!(table_counts(&store, id).await, [0; 5]);
    let run = store.run(id).await.unwrap().unwrap();
    assert_eq!((run.epochs_done, run.best_valid_acc), (0, None));
    assert_eq!(
        store
            .truncate_after(5, RunKind::Search, None)
            .await
            .unwrap_err()
            .to_string(),
        "run 5 not found"
    );
}

async fn deleting_a_run_cascades_to_its_records(store: Store) {
    let id = store.ensure_run(&cfg(&[])).await.unwrap().id;
    store
        .record_epoch(id, EpochOf::Search(&darts(), &darts_record(0, 0.4, 3)))
        .await
        .unwrap();
    sqlx::query("DELETE FROM runs WHERE id = $1")
        .bind(id)
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(table_counts(&store, id).await, [0; 5]);
}

async fn run_summary_exposes_config_columns_for_where_clauses(store: Store) {
    let wanted = store.ensure_run(&cfg(&["L=28", "M=10"])).await.unwrap().id;
    let small_m = store.ensure_run(&cfg(&["L=28", "M=5"])).await.unwrap().id;
    let other_l = store.ensure_run(&cfg(&["L=42", "M=20"])).await.unwrap().id;
    let darts_run = store.ensure_run(&cfg(&["method=darts"])).await.unwrap().id;
    store
        .record_epoch(wanted, EpochOf::Search(&darts(), &darts_record(0, 0.4, 0)))
        .await
        .unwrap();
    store
        .record_epoch(wanted, EpochOf::Search(&darts(), &darts_record(1, 0.5, 0)))
        .await
        .unwrap();
    for sweep in ["grid", "ablation"] {
        sqlx::query("INSERT INTO sweeps (name) VALUES ($1)")
            .bind(sweep)
            .execute(store.pool())
            .await
            .unwrap();
        sqlx::query("INSERT INTO sweep_runs (sweep, run_id) VALUES ($1, $2)")
            .bind(sweep)
            .bind(wanted)
            .execute(store.pool())
            .await
            .unwrap();
    }

    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM run_summary WHERE L = 28 AND M >= 10")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(ids, vec![wanted]);
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM run_summary WHERE L = 28 ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(ids, vec![wanted, small_m], "baselines have no L");

    type Summary = (
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        f64,
        i64,
        Option<i64>,
        String,
        Option<String>,
    );
    let row: Summary = sqlx::query_as(
        "SELECT L, M, approximation, epochs, batch_size, layers, ucb_c, init_channels,
                skip_normal, status, sweep
         FROM run_summary WHERE id = $1",
    )
    .bind(wanted)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            28,
            10,
            1,
            50,
            64,
            8,
            1.44,
            16,
            Some(1),
            "queued".into(),
            Some("ablation,grid".into())
        )
    );
    let (l, layers, method): (Option<i64>, i64, String) =
        sqlx::query_as("SELECT L, layers, method FROM run_summary WHERE id = $1")
            .bind(darts_run)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!((l, layers, method.as_str()), (None, 8, "darts"));
    let row = sqlx::query("SELECT * FROM run_summary LIMIT 1")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let columns: Vec<String> = sqlx::Row::columns(&row)
        .iter()
        .map(|c| store.backend().shown_name(sqlx::Column::name(c)))
        .collect();
    let expected = "id fingerprint status method space dataset seed definitions L M approximation epochs batch_size \
                    layers init_channels ucb_c epochs_done valid_acc best_valid_acc genotype skip_normal \
                    wall_s device error params test_acc best_test_acc nb201_cifar10 nb201_cifar100 nb201_imagenet16 parent sweep";
    assert_eq!(columns.join(" "), expected);
    assert_ne!(other_l, wanted);
}

/// One writer: opens its own `Store` on `path`, registers a run of its own,
/// claims it, writes 5 DARTS epochs and finishes it.
async fn write_five_epochs(path: &std::path::Path, worker: u64) -> Result<(), StoreError> {
    let store = Store::open(path).await?;
    let run = store.ensure_run(&cfg(&[&format!("seed={worker}")])).await?;
    assert!(
        store
            .claim_run(run.id, &claim(&format!("w{worker}"), None))
            .await?
    );
    for epoch in 0..5 {
        store
            .record_epoch(
                run.id,
                EpochOf::Search(&darts(), &darts_record(epoch, 0.5, 10)),
            )
            .await?;
        store.heartbeat(run.id).await?;
    }
    store
        .finish_run(
            run.id,
            RunResult::Search {
                genotype: "g",
                final_valid_acc: 0.5,
                wall_s: 1.0,
            },
        )
        .await?;
    store.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_stores_on_one_file_write_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    let tasks: Vec<_> = (0..16)
        .map(|w| {
            let path = path.clone();
            tokio::spawn(async move { write_five_epochs(&path, w).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let store = Store::open(&path).await.unwrap();
    assert_eq!(count(&store, "SELECT count(*) FROM epochs").await, 80);
    assert_eq!(
        count(&store, "SELECT count(*) FROM sampling_counts").await,
        80 * 224
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM runs WHERE status = 'done'").await,
        16
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_claims_from_sixteen_stores_have_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    let id = Store::open(&path)
        .await
        .unwrap()
        .ensure_run(&cfg(&[]))
        .await
        .unwrap()
        .id;
    let tasks: Vec<_> = (0..16)
        .map(|w| {
            let path = path.clone();
            tokio::spawn(async move {
                let store = Store::open(&path).await.unwrap();
                store
                    .claim_run(id, &claim(&format!("o{w}"), None))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.run(id).await.unwrap().unwrap().attempts, 0);
}

const CHILD_DB: &str = "DDSAS_STORE_TEST_DB";
const CHILD_WORKER: &str = "DDSAS_STORE_TEST_WORKER";

/// The body of one writer process of the test below (run by it, with the
/// database in the environment; does nothing when run by hand).
#[tokio::test]
#[ignore = "run as a child process by sixteen_processes_on_one_file_write_concurrently"]
async fn writer_process() {
    if let (Ok(path), Ok(worker)) = (std::env::var(CHILD_DB), std::env::var(CHILD_WORKER)) {
        write_five_epochs(path.as_ref(), worker.parse().unwrap())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn sixteen_processes_on_one_file_write_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..16)
        .map(|w| {
            tokio::process::Command::new(&exe)
                .args([
                    "store::tests::writer_process",
                    "--exact",
                    "--ignored",
                    "--test-threads=1",
                ])
                .env(CHILD_DB, &path)
                .env(CHILD_WORKER, w.to_string())
                .output()
        })
        .collect();
    for child in children {
        let out = child.await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "writer failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let store = Store::open(&path).await.unwrap();
    assert_eq!(count(&store, "SELECT count(*) FROM epochs").await, 80);
    assert_eq!(
        count(
            &store,
            "SELECT count(DISTINCT owner) FROM runs WHERE status = 'done'"
        )
        .await,
        16
    );
}

/// Prints the time to write one DARTS-space epoch (224 sampling counts, 4
/// subspaces, 10 ratio bins; with and without 391 per-step rows) to a file
/// database, averaged over 50 epochs.
#[tokio::test]
async fn record_epoch_timing_darts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("runs.db")).await.unwrap();
    for (seed, steps) in [(0u64, 0u64), (1, 391)] {
        let id = store
            .ensure_run(&cfg(&[&format!("seed={seed}")]))
            .await
            .unwrap()
            .id;
        let records: Vec<_> = (0..50).map(|e| darts_record(e, 0.5, steps)).collect();
        let start = Instant::now();
        for rec in &records {
            store
                .record_epoch(id, EpochOf::Search(&darts(), rec))
                .await
                .unwrap();
        }
        let per_epoch = start.elapsed() / 50;
        crate::outln!("record_epoch, DARTS space, {steps} steps: {per_epoch:?} per epoch (mean of 50, file db)");
        assert_eq!(table_counts(&store, id).await[1], 50 * 224);
        assert!(per_epoch.as_secs_f64() < 1.0, "{per_epoch:?} per epoch");
    }
}

/// A train run of the published DARTS V2 cell on the bundled digits.
pub(super) fn train_cfg() -> crate::config::train::ResolvedTrain {
    crate::config::train::TrainConfig {
        genotype: "darts_v2".into(),
        dataset: crate::data::DatasetKind::Digits,
        ..Default::default()
    }
    .resolve()
    .unwrap()
}

async fn searches_and_train_runs_are_registered_with_their_kind(store: Store) {
    let search = store.ensure_run(&cfg(&[])).await.unwrap();
    let train = store.ensure_train_run(&train_cfg()).await.unwrap();
    assert_eq!((search.kind, train.kind), (RunKind::Search, RunKind::Train));
    assert_eq!(train.method, None);
    assert_eq!(train.space, SpaceKind::Darts);
    // SQL written against the history still finds train runs by method.
    let stored: (String, String) = sqlx::query_as("SELECT method, kind FROM runs WHERE id = $1")
        .bind(train.id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(stored, ("train".to_owned(), "train".to_owned()));
    // A kind this build does not know (written by a newer ddsas) is
    // refused when the row is read, naming the kind.
    sqlx::query("UPDATE runs SET kind = 'transfer' WHERE id = $1")
        .bind(search.id)
        .execute(store.pool())
        .await
        .unwrap();
    let err = store.run(search.id).await.unwrap_err().to_string();
    assert!(err.contains("transfer"), "{err}");
}

/// A train epoch as a CIFAR run records it (`top5` and `skipped` aside).
fn train_epoch(epoch: i64, top5: Option<f64>, skipped: Option<i64>) -> TrainEpoch {
    TrainEpoch {
        epoch,
        train_acc: 0.5,
        train_loss: 1.5,
        test_acc: 0.25,
        test_loss: 2.0,
        train_top5: top5,
        test_top5: top5.map(|t| t / 2.0),
        skipped_images: skipped,
        lr: 0.025,
        drop_path_prob: 0.1,
        wall_s: 3.0,
        images_per_s: 100.0,
        peak_mem_bytes: 1 << 20,
    }
}

async fn train_epochs_keep_top5_skipped_images_and_madds(store: Store) {
    let train = store.ensure_train_run(&train_cfg()).await.unwrap();
    let epochs = [
        train_epoch(0, Some(0.75), Some(3)),
        train_epoch(1, None, None),
    ];
    for e in &epochs {
        store
            .record_epoch(train.id, EpochOf::Train(e))
            .await
            .unwrap();
    }
    assert_eq!(store.train_epochs(train.id).await.unwrap(), epochs);
    assert_eq!(store.madds(train.id).await.unwrap(), None);
    store.set_madds(train.id, 574_000_000).await.unwrap();
    assert_eq!(store.madds(train.id).await.unwrap(), Some(574_000_000));
    assert_eq!(store.madds(train.id + 100).await.unwrap(), None);
}

/// Every claim path records the world size and backend of the processes
/// that will run a train run (the last claim's, so a resume with another
/// `--nproc` shows it), and nothing on a search; the read-only history
/// reads them back as the store does.
async fn claims_record_a_train_runs_ranks_and_backend(store: Store) {
    let train = store.ensure_train_run(&train_cfg()).await.unwrap();
    assert_eq!((train.world_size, train.ranks_text()), (None, None));
    let two = Claim {
        ranks: Ranks {
            world_size: 2,
            backend: Some(DistBackend::Gloo),
        },
        ..claim("rank0", None)
    };
    assert!(store.claim_run(train.id, &two).await.unwrap());
    let row = store.run(train.id).await.unwrap().unwrap();
    assert_eq!(
        (row.world_size, row.dist_backend.as_deref()),
        (Some(2), Some("gloo"))
    );
    assert_eq!(row.ranks_text().as_deref(), Some("2 (gloo)"));
    store.interrupt_run(train.id).await.unwrap();
    assert!(store
        .claim_run(train.id, &claim("one", None))
        .await
        .unwrap());
    let row = store.run(train.id).await.unwrap().unwrap();
    assert_eq!(
        (row.world_size, row.dist_backend.as_deref()),
        (Some(1), None)
    );
    assert_eq!(row.ranks_text().as_deref(), Some("1"));
    let nccl = Claim {
        ranks: Ranks {
            world_size: 8,
            backend: Some(DistBackend::Nccl),
        },
        ..claim("eight", None)
    };
    assert!(store
        .take_over_run(train.id, &nccl, Some("one"), Some(42))
        .await
        .unwrap());
    let row = store.run(train.id).await.unwrap().unwrap();
    assert_eq!(row.ranks_text().as_deref(), Some("8 (nccl)"));

    let search = store.ensure_run(&cfg(&[])).await.unwrap();
    store
        .register_sweep("pull", None, "pull.yaml", "name: pull", &[(search.id, 0)])
        .await
        .unwrap();
    assert_eq!(
        store.claim_next("pull", &two).await.unwrap(),
        Some(search.id)
    );
    let row = store.run(search.id).await.unwrap().unwrap();
    assert_eq!((row.world_size, row.dist_backend), (None, None));
    store.interrupt_run(train.id).await.unwrap();
    store.add_to_sweep("pull", train.id).await.unwrap();
    assert_eq!(
        store.claim_next("pull", &two).await.unwrap(),
        Some(train.id)
    );
    let row = store.run(train.id).await.unwrap().unwrap();
    assert_eq!(row.ranks_text().as_deref(), Some("2 (gloo)"));

    // An orchestrator claims a training of two ranks before they meet;
    // their rank 0 records the backend, while its owner holds the run.
    store.interrupt_run(train.id).await.unwrap();
    let orchestrator = Claim {
        ranks: Ranks {
            world_size: 2,
            backend: None,
        },
        ..claim("orch", None)
    };
    assert!(store.claim_run(train.id, &orchestrator).await.unwrap());
    let row = store.run(train.id).await.unwrap().unwrap();
    assert_eq!(row.ranks_text().as_deref(), Some("2"));
    let met = Ranks {
        world_size: 2,
        backend: Some(DistBackend::Gloo),
    };
    assert!(!store.record_ranks(train.id, "other", met).await.unwrap());
    assert!(store.record_ranks(train.id, "orch", met).await.unwrap());
    let row = store.run(train.id).await.unwrap().unwrap();
    assert_eq!(row.ranks_text().as_deref(), Some("2 (gloo)"));
    // A search is one process whatever records it.
    store.record_ranks(search.id, "rank0", met).await.unwrap();
    let row = store.run(search.id).await.unwrap().unwrap();
    assert_eq!((row.world_size, row.dist_backend), (None, None));
}

/// The read-only history (`runs show`, the run page) reads a train run's
/// ranks back as the store wrote them.
#[tokio::test]
async fn the_read_only_history_reads_a_train_runs_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let store = Store::open(&path).await.unwrap();
    let train = store.ensure_train_run(&train_cfg()).await.unwrap().id;
    let two = Claim {
        ranks: Ranks {
            world_size: 2,
            backend: Some(DistBackend::Gloo),
        },
        ..claim("rank0", None)
    };
    assert!(store.claim_run(train, &two).await.unwrap());
    store.close().await;
    let mut db = ReadOnlyDb::open(&path).await.unwrap();
    let card = db.run_card(train).await.unwrap().unwrap();
    assert_eq!(card.row.ranks_text().as_deref(), Some("2 (gloo)"));
}

/// A train run goes through the same writes as a search: a redone epoch
/// replaces what followed, a resume drops its epochs and rewinds the best
/// test accuracy, a run that is not there is said to be missing.
async fn a_train_run_is_redone_truncated_and_finished_by_the_one_path(store: Store) {
    let id = store.ensure_train_run(&train_cfg()).await.unwrap().id;
    let at = |epoch, test_acc| TrainEpoch {
        test_acc,
        ..train_epoch(epoch, None, None)
    };
    for (epoch, acc) in [0.3, 0.8, 0.5].into_iter().enumerate() {
        store
            .record_epoch(id, EpochOf::Train(&at(epoch as i64, acc)))
            .await
            .unwrap();
    }
    store
        .record_epoch(id, EpochOf::Train(&at(1, 0.6)))
        .await
        .unwrap();
    let progress = |store: &Store| {
        let store = store.clone();
        async move {
            let run = store.run(id).await.unwrap().unwrap();
            let epochs = store.train_epochs(id).await.unwrap().len();
            (epochs, run.epochs_done, run.best_test_acc)
        }
    };
    assert_eq!(progress(&store).await, (2, 2, Some(0.6)));
    store
        .truncate_after(id, RunKind::Train, Some(0))
        .await
        .unwrap();
    assert_eq!(progress(&store).await, (1, 1, Some(0.3)));
    store
        .truncate_after(id, RunKind::Train, None)
        .await
        .unwrap();
    assert_eq!(progress(&store).await, (0, 0, None));
    let end = RunResult::Train {
        final_test_acc: 0.7,
        wall_s: 2.0,
    };
    store.finish_run(id, end).await.unwrap();
    let run = store.run(id).await.unwrap().unwrap();
    assert_eq!(
        (run.status, run.final_test_acc, run.final_valid_acc),
        (RunStatus::Done, Some(0.7), None)
    );
    let missing = id + 100;
    for err in [
        store
            .record_epoch(missing, EpochOf::Train(&at(0, 0.1)))
            .await
            .unwrap_err(),
        store
            .truncate_after(missing, RunKind::Train, None)
            .await
            .unwrap_err(),
        store.finish_run(missing, end).await.unwrap_err(),
    ] {
        assert_eq!(err.to_string(), format!("run {missing} not found"));
    }
}

async fn a_transfer_to_imagenet_reports_its_top5_and_madds(store: Store) {
    let search = store.ensure_run(&cfg(&[])).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let imagenet = crate::config::train::TrainConfig {
        genotype: "darts_v2".into(),
        dataset: crate::data::DatasetKind::ImageNet,
        data_dir: Some(data.path().to_owned()),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    for (cfg, top5) in [(train_cfg(), 0.75), (imagenet, 0.9)] {
        let train = store.ensure_train_run(&cfg).await.unwrap();
        store.link_evaluation(search.id, train.id).await.unwrap();
        store
            .record_epoch(train.id, EpochOf::Train(&train_epoch(0, Some(top5), None)))
            .await
            .unwrap();
        store.set_madds(train.id, 574_000_000).await.unwrap();
        store
            .finish_run(
                train.id,
                RunResult::Train {
                    final_test_acc: 0.25,
                    wall_s: 1.0,
                },
            )
            .await
            .unwrap();
    }
    let run = store.report_run(search.id).await.unwrap().unwrap();
    let figures: Vec<(bool, Option<f64>, Option<i64>)> = run
        .trainings
        .iter()
        .map(|t| (t.on_imagenet(), t.test_top5, t.madds))
        .collect();
    // Read for ImageNet trainings only.
    assert_eq!(
        figures,
        [(false, None, None), (true, Some(0.45), Some(574_000_000))]
    );
}

/// `runs show` reads the kind from the row, or, in a database older than
/// migration 0007 that was only read (so never migrated), from the method;
/// a kind this build does not know is refused, naming it.
#[test]
fn a_run_card_names_its_kind_with_or_without_the_kind_column() {
    let kind = |columns: &[&str], row: &[&str]| {
        let rows = QueryRows {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: vec![row.iter().map(|v| serde_json::Value::from(*v)).collect()],
        };
        let cells = rows.cells().next().unwrap();
        let method: String = cells.get("method").unwrap();
        history_rows::read_kind(&cells, &method).map_err(|e| e.to_string())
    };
    assert_eq!(
        kind(&["method", "kind"], &["train", "train"]),
        Ok(RunKind::Train)
    );
    let unknown = kind(&["method", "kind"], &["darts", "transfer"]).unwrap_err();
    assert!(unknown.contains("transfer"), "{unknown}");
    assert_eq!(kind(&["method"], &["train"]), Ok(RunKind::Train));
    assert_eq!(kind(&["method"], &["gdas"]), Ok(RunKind::Search));
}

/// A SQLite file in a new folder with the migrations before `version`
/// applied (`count` of them) and an open connection to it: what an older
/// ddsas left.
async fn database_before_migration(
    version: &str,
    count: usize,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    sqlx::SqliteConnection,
) {
    let dir = tempfile::tempdir().unwrap();
    let old_migrations = dir.path().join("migrations");
    std::fs::create_dir(&old_migrations).unwrap();
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < version {
            std::fs::copy(&path, old_migrations.join(name)).unwrap();
        }
    }
    let path = dir.path().join("runs.db");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut conn = sqlx::ConnectOptions::connect(&options).await.unwrap();
    let old = Migrator::new(old_migrations.as_path()).await.unwrap();
    assert_eq!(old.iter().count(), count);
    old.run(&mut conn).await.unwrap();
    (dir, path, conn)
}

/// A database made before migration 0007 gets the kind of its runs from
/// their method text when a ddsas that knows kinds opens it.
#[tokio::test]
async fn migration_7_gives_old_train_runs_their_kind() {
    let (_dir, path, mut conn) = database_before_migration("0007", 6).await;
    sqlx::raw_sql(
        "INSERT INTO runs (fingerprint, method, space, dataset, seed, config_json, epochs_total)
         VALUES ('s', 'gdas', 'nb201', 'cifar10', 1, '{}', 5),
                ('t', 'train', 'darts', 'cifar100', 2, '{}', 600)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::Connection::close(conn).await.unwrap();

    let store = Store::open(&path).await.unwrap();
    let search = store.run_by_fingerprint("s").await.unwrap().unwrap();
    let train = store.run_by_fingerprint("t").await.unwrap().unwrap();
    assert_eq!(
        (search.kind, search.method, search.space),
        (
            RunKind::Search,
            Some(crate::config::Method::Gdas),
            SpaceKind::Nb201
        )
    );
    assert_eq!(
        (train.kind, train.method, train.dataset),
        (RunKind::Train, None, crate::data::DatasetKind::Cifar100)
    );
}

/// A train epoch recorded before migration 0008 reads back without top-5
/// or a skipped count, and the run without multiply-adds.
#[tokio::test]
async fn migration_8_keeps_older_train_epochs_readable() {
    let (_dir, path, mut conn) = database_before_migration("0008", 7).await;
    sqlx::raw_sql(
        "INSERT INTO runs (id, fingerprint, kind, method, space, dataset, seed, config_json, epochs_total)
         VALUES (1, 't', 'train', 'train', 'darts', 'cifar10', 0, '{}', 600);
         INSERT INTO train_epochs (run_id, epoch, train_acc, train_loss, test_acc, test_loss, lr,
                                   drop_path_prob, wall_s, images_per_s, peak_mem_bytes)
         VALUES (1, 0, 0.5, 1.5, 0.25, 2.0, 0.025, 0.1, 3.0, 100.0, 1048576)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::Connection::close(conn).await.unwrap();

    let store = Store::open(&path).await.unwrap();
    assert_eq!(
        store.train_epochs(1).await.unwrap(),
        [train_epoch(0, None, None)]
    );
    assert_eq!(store.madds(1).await.unwrap(), None);
}

/// Migration 0010 makes `slurm_jobs` again on SQLite (to drop `sweep`'s
/// NOT NULL): a sweep's jobs recorded before it are kept as they were.
#[tokio::test]
async fn migration_10_keeps_the_jobs_of_sweeps() {
    let (_dir, path, mut conn) = database_before_migration("0010", 9).await;
    sqlx::raw_sql(
        "INSERT INTO sweeps (name, file) VALUES ('grid', 'grid.yaml');
         INSERT INTO slurm_jobs (job_id, sweep, tasks, script_path, submitted_at)
         VALUES ('41', 'grid', 3, 'submit-1.sh', 1000.5)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::Connection::close(conn).await.unwrap();

    let store = Store::open(&path).await.unwrap();
    let jobs = store.slurm_jobs("grid").await.unwrap();
    assert_eq!(
        jobs,
        [crate::store::slurm::SlurmJob {
            job_id: "41".into(),
            sweep: Some("grid".into()),
            run_id: None,
            tasks: 3,
            script_path: "submit-1.sh".into(),
            submitted_at: 1000.5,
        }]
    );
}

/// Migrations are append-only: sqlx stores each applied migration's
/// checksum and refuses to open a database whose migration file changed
/// since, so editing one would lock every user out of their run history.
/// Change the schema with a new `migrations/{sqlite,postgres}/000N_*.sql`
/// pair and add their lines.
#[test]
fn applied_migrations_are_never_edited() {
    const SQLITE: &[(i64, &str)] = &[
        (1, "2c57689aa7f604c505431760683c48e579e2ea27c03cef0e6cdb9182e9b95557555228336263b393dc38e99706aa76a6"),
        (2, "a2ebfaca52b8aee08b8b25c9862558d5f83ba876d8e3025eb4ec435f99b95e994f84df6693745c3d6763c49277936cac"),
        (3, "f4cff340f8393cc4af7718b46880db6e80e5607aa776342483c4c808aef0eaa853a96fbf3f87cdbc36580c3fcc94f538"),
        (4, "a172918dd632c525c4c7160bfe500bf16de898f29adbc5bef6280d6fc32fefe7d7d5447dcb9e92139573d8cb4a5dbdef"),
        (5, "43cb1813632e1da7035c0e947615b373bfabab3a7f24033a77ebecafa0d056f2f172342709e4870b6a0689be89c38730"),
        (6, "9c4a08f169694a41ac45e7d39fbc4a0b970cb762ff20a2b7b57cabf408d6cdbc3aa1e10180a1b5aee4d0e8150b9ed9d2"),
        (7, "4b6009912da50341c0add943dec8e791729afe02d3a16b12a50e609b9f7551e059935e8a867f81cecff03385619f1b71"),
        (8, "1e8ae1926cee17c119b98f3a96867d0d815fd6d1e97872b02817daa87bae9fee4c466c7ec8ba557ad7c85fc581513390"),
        (9, "aa3c4dd48d9c3f6f4d41cc7daa27ce7c23bbebc1a63a41c087c9145c0f6597989d9684908f46e4b9b5e4deea9578ba8e"),
        (10, "1fa63d47b3be69c18a28e38695302d000726cb18213d78b82d919b8f43ec98a9f41988c23c34849e1a0133c8651fde53"),
    ];
    const POSTGRES: &[(i64, &str)] = &[
        (1, "45f4d135b0880fe489934225d77e9b8c9f4c9d9c665781fdbb10734af0ace96c78be9ddee868fede47ce61f17ad22740"),
        (2, "e143cb453c5dfb36152e7c79e988909569fe4767527c4b711e21523ff70a52f6dddfafe7ba50002aafef490d00413a3c"),
        (3, "5ebb1e04ad32f1b7157b0d33fec52b9838b1454d98be17fe5bd61099fd26843df8d70b3dc2992c1bd2b59b5fb5695c01"),
        (4, "2f73c3eb87dc587bede78e5bb79b682524886350ccb40274761f68e7316e3cbf75c72912c4b1ab81a74a7bf1a0281c98"),
        (5, "80586bc5609fe982e61241eca89288c934a0cdc215e3fbd379e0f3a9fee7922b14f6923f0b275e3faf12feaee83db619"),
        (6, "7209e5c7022e1fd5aaa3a8a13ef2d91f9859f1451de89ae4bedf70dc3369037fda352826b034dc5bf0d3757c2ffbe6b9"),
        (7, "fcabc0ab214c1f3d1d235bf1d1522c3192cfa770f366a7bd1aa0a0020ed537094af6f4d749cd89dc73bc6314a22f1b73"),
        (8, "6467e4408e907495205ffdd76d3b2626d1b5252aa3865753c64b1e00a00cf4c5669d5160bf0bca198ff15e227229538f"),
        (9, "085ad6ea39161b147eb999724274041a5a238bca95f50aeead7ef3972cbe7d36a94a4744f85545f9b04d0dfdc9e8289f"),
        (10, "ae4b8992bf0de39f7e374e907d95e67543414d870575bf5ffd23b84a2bc89ba96096b7f2a7e4014a7cd3e229df4bfe0e"),
    ];
    check_known(&SQLITE_MIGRATOR, SQLITE, "sqlite");
    check_known(&POSTGRES_MIGRATOR, POSTGRES, "postgres");
    let versions = |m: &Migrator| m.iter().map(|m| m.version).collect::<Vec<_>>();
    assert_eq!(
        versions(&SQLITE_MIGRATOR),
        versions(&POSTGRES_MIGRATOR),
        "every migration needs its twin in the other backend's folder"
    );
}

fn check_known(migrator: &Migrator, known: &[(i64, &str)], folder: &str) {
    let actual: Vec<(i64, String)> = migrator
        .iter()
        .map(|m| {
            let hex: String = m.checksum.iter().map(|b| format!("{b:02x}")).collect();
            (m.version, hex)
        })
        .collect();
    for (version, checksum) in known {
        let found = actual.iter().find(|(v, _)| v == version);
        assert_eq!(
            found.map(|(_, c)| c.as_str()),
            Some(*checksum),
            "migrations/{folder}: migration {version} changed (or was removed): existing databases will refuse to open; revert it and add a new migration instead"
        );
    }
    assert_eq!(
        actual.len(),
        known.len(),
        "migrations/{folder}: a new migration: add its (version, checksum) to the list: {actual:?}"
    );
}

/// The server ends a store session left idle inside a transaction (a
/// worker frozen mid-write), so its row locks cannot hold claims up for
/// good.
#[tokio::test]
async fn postgres_sessions_end_transactions_left_idle() {
    let Some(db) = super::test_postgres::TestDatabase::create().await else {
        return;
    };
    let store = Store::connect(&DbLocation::Postgres(db.url().to_owned()))
        .await
        .unwrap();
    let limit: String = sqlx::query_scalar("SHOW idle_in_transaction_session_timeout")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(limit, "1min");
    store.close().await;
    db.drop_now().await;
}

/// A first migration cut off by the server (the session ended mid-way)
/// leaves `_sqlx_migrations` alone: the next opener migrates it rather
/// than refusing it as another program's database.
#[tokio::test]
async fn a_cut_off_first_migration_is_redone_by_the_next_opener() {
    let Some(db) = super::test_postgres::TestDatabase::create().await else {
        return;
    };
    let location = DbLocation::Postgres(db.url().to_owned());
    let store = Store::connect(&location).await.unwrap();
    sqlx::query("DROP SCHEMA public CASCADE")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("CREATE SCHEMA public")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
         installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, \
         checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    store.close().await;
    let store = Store::connect(&location).await.unwrap();
    assert!(store.ensure_run(&cfg(&[])).await.unwrap().id > 0);
    store.close().await;
    db.drop_now().await;
}

/// A search with two epochs, in a sweep, whose cell a train run with one
/// epoch trains, in a SQLite file read back through the read-only
/// connection: what `runs show`, `sweep status` and the pages read.
#[tokio::test]
async fn history_questions_come_back_typed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let store = Store::open(&path).await.unwrap();
    let search = store.ensure_run(&cfg(&[])).await.unwrap().id;
    for epoch in 0..2 {
        store
            .record_epoch(
                search,
                EpochOf::Search(&darts(), &darts_record(epoch, 0.5, 0)),
            )
            .await
            .unwrap();
    }
    let train = store.ensure_train_run(&train_cfg()).await.unwrap().id;
    store.link_evaluation(search, train).await.unwrap();
    let epoch = crate::arch::metrics::TrainEpoch {
        epoch: 0,
        train_acc: 0.25,
        train_loss: 2.0,
        test_acc: 0.75,
        test_loss: 1.0,
        train_top5: Some(0.5),
        test_top5: Some(0.9),
        skipped_images: None,
        lr: 0.025,
        drop_path_prob: 0.1,
        wall_s: 3.0,
        images_per_s: 100.0,
        peak_mem_bytes: 1,
    };
    store
        .record_epoch(train, EpochOf::Train(&epoch))
        .await
        .unwrap();
    store
        .register_sweep("s", Some("a sweep"), "s.yaml", "{}", &[(search, 0)])
        .await
        .unwrap();
    store.close().await;

    let mut db = ReadOnlyDb::open(&path).await.unwrap();
    let card = db.run_card(search).await.unwrap().unwrap();
    assert_eq!(
        (
            card.row.kind,
            card.row.method,
            card.row.space,
            card.row.status
        ),
        (
            RunKind::Search,
            Some(crate::config::Method::Ddsas),
            SpaceKind::Darts,
            RunStatus::Queued
        )
    );
    assert_eq!(
        (card.row.epochs_done, card.sweeps.as_deref()),
        (2, Some("s"))
    );
    assert_eq!(card.method_text(), "ddsas");
    assert!(card.created.is_some() && card.started.is_none());
    let RunEpochs::Search(lines) = db.run_epochs(search, card.row.kind).await.unwrap() else {
        panic!("a search's epochs are search epochs");
    };
    assert_eq!(lines.iter().map(|l| l.epoch).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(lines[1].valid_acc, 0.5);
    let table = table_of(&lines);
    assert_eq!(table.columns[0], "epoch");
    assert_eq!(table.rows[1][0], serde_json::json!(2));

    let trained = db.run_card(train).await.unwrap().unwrap();
    assert_eq!(
        (trained.row.kind, trained.row.method),
        (RunKind::Train, None)
    );
    assert_eq!(trained.method_text(), "train");
    assert_eq!(trained.parent, Some(search.to_string()));
    assert_eq!(
        (trained.row.epochs_done, trained.row.final_test_acc),
        (1, None)
    );
    let epochs = db.run_epochs(train, RunKind::Train).await.unwrap();
    assert_eq!(epochs.len(), 1);
    assert_eq!(epochs.table().rows[0][3], serde_json::json!(0.75));
    let trainings = db.trainings_of(search).await.unwrap();
    assert_eq!(trainings.len(), 1);
    assert_eq!(
        (trainings[0].train_run_id, trainings[0].status),
        (train, RunStatus::Queued)
    );

    let header = db.sweep_header("s").await.unwrap().unwrap();
    assert_eq!(
        (
            header.description.as_deref(),
            header.file.as_deref(),
            header.cancelled
        ),
        (Some("a sweep"), Some("s.yaml"), false)
    );
    assert!(db.sweep_header("nope").await.unwrap().is_none());
    let progress = db.sweep_progress("s").await.unwrap();
    assert_eq!(progress.len(), 1);
    assert_eq!((progress[0].id, progress[0].last_acc), (search, Some(0.5)));
    let state = db.run_state(search).await.unwrap().unwrap();
    assert_eq!((state.epochs_done, state.status), (2, RunStatus::Queued));
    assert!(db.run_card(999).await.unwrap().is_none());
    assert!(db.run_state(999).await.unwrap().is_none());
}
