//! What every build of `ddsas` runs, the light one (`cargo build
//! --no-default-features`, no libtorch) included: the commands that only
//! read the run history start and answer, and in the light build the
//! commands that train keep their `--help` but end with one line saying
//! what is missing and exit status 2. The end-to-end tests in `tests/e2e`
//! need the training engine to make their databases.

use std::path::Path;
use std::process::{Command, Output};

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_ddsas");

fn ddsas(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("DDSAS_DB")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An empty run history, with its schema, at `db`.
fn create_db(db: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = ddsas::store::Store::open(db).await.unwrap();
        store.close().await;
    });
}

#[test]
fn version_and_a_fresh_history_answer() {
    let out = ddsas(&["-V"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("ddsas {}", env!("CARGO_PKG_VERSION"))
    );
    // --version adds what the binary was built with.
    let out = ddsas(&["--version"]);
    let long = String::from_utf8_lossy(&out.stdout).into_owned();
    let built = long.lines().nth(1).unwrap_or_default();
    let engine = if cfg!(feature = "engine") {
        "built with: engine (libtorch)"
    } else {
        "built with: no engine (light build: reports, serve, history)"
    };
    assert!(built.starts_with(engine), "{long}");
    assert_eq!(
        built.contains("dist (Gloo"),
        cfg!(feature = "dist"),
        "{long}"
    );
    assert_eq!(
        built.contains("libjpeg-turbo"),
        cfg!(feature = "turbojpeg"),
        "{long}"
    );

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    create_db(&db);
    let db = db.to_str().unwrap();
    let out = ddsas(&["runs", "list", "--db", db]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ddsas(&["sql", "--db", db, "SELECT count(*) AS n FROM runs"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// Each command that trains, or starts what trains, refuses in one line
/// that names it and says how to get a build that runs it.
#[cfg(not(feature = "engine"))]
#[test]
fn training_commands_need_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    let db = db.to_str().unwrap();
    let commands: [(&str, &[&str]); 7] = [
        ("search", &["search", "--set", "epochs=1", "--db", db]),
        ("train", &["train", "--genotype", "darts_v2", "--db", db]),
        ("worker", &["worker", "--sweep", "s", "--db", db]),
        ("sweep run", &["sweep", "run", "sweep.yaml", "--db", db]),
        (
            "sweep submit",
            &["sweep", "submit", "sweep.yaml", "--slurm", "--db", db],
        ),
        ("bench step", &["bench", "step"]),
        ("bench train", &["bench", "train"]),
    ];
    for (name, args) in commands {
        let out = ddsas(args);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        assert!(out.stdout.is_empty(), "{name}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{name}: {}", text(&out));
        assert!(
            err.starts_with("error: this ddsas was built without the training engine")
                && err.contains(&format!("`ddsas {name}` needs it"))
                && err.contains("cargo build --release"),
            "{name}: {}",
            text(&out)
        );
    }
    // Nothing was written: the refusal comes before any database is opened.
    assert!(!Path::new(db).exists());
    // The command line is the same as in the full build.
    let out = ddsas(&["search", "--help"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--print-config"));
}
