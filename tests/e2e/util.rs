//! Helpers every end-to-end test module uses.

use std::path::{Path, PathBuf};
use std::process::Output;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ddsas");

/// Exit status, stdout and stderr of a finished command, for messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A temporary folder and `results.db` inside it (not created).
pub fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    (dir, db)
}

/// A single-threaded runtime for a test's own database reads.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Rows of `sql` on `db` (read-only) as text: reals in scientific notation
/// with 12 digits, NULL as `NULL`.
pub fn sqlite(db: &Path, sql: &str) -> Vec<Vec<String>> {
    try_sqlite(db, sql).unwrap()
}

/// [`sqlite`], with the error: a database another process is still
/// creating is expected when polling.
pub fn try_sqlite(db: &Path, sql: &str) -> Result<Vec<Vec<String>>, sqlx::Error> {
    rt().block_on(async {
        use sqlx::Row;
        let url = format!("sqlite://{}?mode=ro", db.display());
        let pool = sqlx::SqlitePool::connect(&url).await?;
        let rows = sqlx::query(sql).fetch_all(&pool).await?;
        pool.close().await;
        Ok(rows
            .iter()
            .map(|r| {
                (0..r.columns().len())
                    .map(|i| {
                        r.try_get::<String, _>(i)
                            .or_else(|_| r.try_get::<f64, _>(i).map(|v| format!("{v:.12e}")))
                            .or_else(|_| r.try_get::<i64, _>(i).map(|v| v.to_string()))
                            .unwrap_or_else(|_| "NULL".into())
                    })
                    .collect()
            })
            .collect())
    })
}

/// The first column of the first row of `sql`.
pub fn scalar(db: &Path, sql: &str) -> String {
    sqlite(db, sql).remove(0).remove(0)
}

/// Whether a run's checkpoint folder holds a checkpoint (`state-NNNN.json`).
pub fn has_checkpoint(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("state-") && name.ends_with(".json")
        })
    })
}

/// Runs held before one weight step (`DDSAS_FAULT_HOLD_AT_STEP`) while
/// the test does what must happen while they still run (a kill, a page
/// load, a cancel): armed while its files exist, one for every run or one
/// per seed. Released (its files deleted) when dropped, so that a failing
/// test leaves nothing waiting.
pub struct Hold {
    step: u64,
    /// The file the variable names (`{seed}` in it for a hold per seed).
    pattern: PathBuf,
    files: Vec<PathBuf>,
}

impl Hold {
    /// Holds every run given [`Hold::env`] before weight step `step`,
    /// its file in `dir`.
    pub fn every_run(dir: &Path, step: u64) -> Hold {
        Hold::arm(dir.join("hold"), step, vec![dir.join("hold")])
    }

    /// Holds the runs of each of `seeds` until [`Hold::release_seed`].
    pub fn seeds(dir: &Path, step: u64, seeds: &[u64]) -> Hold {
        let files = seeds
            .iter()
            .map(|s| dir.join(format!("hold-seed-{s}")))
            .collect();
        Hold::arm(dir.join("hold-seed-{seed}"), step, files)
    }

    fn arm(pattern: PathBuf, step: u64, files: Vec<PathBuf>) -> Hold {
        for file in &files {
            std::fs::write(file, b"held\n").unwrap();
        }
        Hold {
            step,
            pattern,
            files,
        }
    }

    /// The variable and value that hold a process started with them.
    pub fn env(&self) -> (&'static str, String) {
        let value = format!("{}:{}", self.step, self.pattern.display());
        ("DDSAS_FAULT_HOLD_AT_STEP", value)
    }

    /// Lets every held run go on, and later ones pass.
    pub fn release(&self) {
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }

    /// Lets the run of `seed` go on, and its retries pass.
    pub fn release_seed(&self, seed: u64) {
        let file = self
            .pattern
            .to_string_lossy()
            .replace("{seed}", &seed.to_string());
        let _ = std::fs::remove_file(file);
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.release();
    }
}
