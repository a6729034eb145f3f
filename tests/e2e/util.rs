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
