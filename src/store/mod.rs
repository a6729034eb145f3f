//! The SQLite run history (docs/design.md §3, §5, §6): every run, its life cycle
//! and every epoch's measurements, in one database file shared by the
//! orchestrators and workers of a machine.
//!
//! One concrete [`Store`] over a sqlx pool; the schema lives in
//! `migrations/` and is applied whenever a database is opened. Writers begin
//! their transactions with `BEGIN IMMEDIATE` and wait up to
//! [`BUSY_TIMEOUT`] for the write lock, so many worker processes can write
//! to one WAL database without "database is locked" errors.

mod epochs;
mod error;
mod history;
mod nb201;
mod queries;
mod report_queries;
mod rows;
mod runs;
pub mod slurm;
pub mod sql_text;
mod sweeps;
#[cfg(test)]
mod tests;
mod train;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

pub use error::StoreError;
pub use history::{KnownRun, RunFilter, SweepGlance};
pub use nb201::{Nb201Accuracy, NB201_DATASETS};
pub use queries::{QueryError, QueryRows, ReadOnlyDb};
pub use report_queries::{
    EpochPoint, RatioPoint, ReportRun, SamplingPoint, StepPoint, SubspacePoint, SweepInfo,
};
pub use rows::{Claim, EpochRow, RunRow, RunStatus};
pub use sweeps::{RunProgress, SweepRow};
pub use train::{TrainEpoch, TRAIN_METHOD};

/// The schema migrations, embedded at build time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another process's write lock before
/// failing. Long, because an epoch write is milliseconds but sixteen workers
/// may queue behind each other and a failed write would kill a run.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections per `Store`: a process has few concurrent queries, and SQLite
/// serializes writers anyway.
const MAX_CONNECTIONS: u32 = 4;

/// SQLite's "file is not a database" result code.
pub(crate) const SQLITE_NOTADB: &str = "26";

/// The run history: a pool on one SQLite database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if missing) the database at `path` and brings its
    /// schema up to date. WAL with `synchronous = NORMAL`, so that readers
    /// (`ddsas runs`, reports) never block writers and a commit does not wait
    /// for an fsync; foreign keys on, so deleting a run deletes its records.
    ///
    /// Opening races with other processes opening the same file (sixteen
    /// workers of a sweep start together): switching a fresh file to WAL and
    /// recovering a WAL can answer "database is locked" without waiting on
    /// the busy timeout, so such an answer is retried until [`BUSY_TIMEOUT`].
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let deadline = tokio::time::Instant::now() + BUSY_TIMEOUT;
        let mut pause = Duration::from_millis(10);
        loop {
            match Self::open_once(path).await {
                Err(e) if e.is_busy() && tokio::time::Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                result => return result,
            }
        }
    }

    async fn open_once(path: &Path) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = file_pool(path, options).await?;
        Self::migrated(pool, path.to_owned()).await
    }

    /// Opens an existing database read-only, without touching its schema
    /// (`ddsas serve`): the pool's connections are opened with SQLite's
    /// read-only flag, so no statement through it can change the file, and
    /// reports drawn through it read what the workers write meanwhile (WAL).
    pub async fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Open {
                path: path.to_owned(),
                source: sqlx::Error::Configuration("no such database file".into()),
                hint: path_hint(path),
            });
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = file_pool(path, options).await?;
        Ok(Store {
            pool,
            path: path.to_owned(),
        })
    }

    /// A private in-memory database (tests). One connection that never
    /// expires, because the database lives only as long as a connection.
    pub async fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|e| open_error(&path, e))?
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|e| open_error(&path, e))?;
        Self::migrated(pool, path).await
    }

    /// The pool, for ad-hoc queries (`ddsas sql`, reports).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The database file (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every connection, waiting for them; after this the database
    /// file is consistent without its WAL (a clean shutdown).
    pub async fn close(self) {
        self.pool.close().await;
    }

    async fn migrated(pool: SqlitePool, path: PathBuf) -> Result<Store, StoreError> {
        let store = Store { pool, path };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the pending migrations under the write lock: several
    /// processes opening a fresh database at once would otherwise all try to
    /// create the tables, and all but one would fail.
    async fn migrate(&self) -> Result<(), StoreError> {
        let path = &self.path;
        if self.schema_is_current().await {
            return Ok(());
        }
        let mut tx = self.begin_write().await.map_err(|e| open_error(path, e))?;
        check_is_ddsas(&mut tx, path).await?;
        MIGRATOR
            .run_direct(&mut *tx)
            .await
            .map_err(|e| migrate_error(path, e))?;
        tx.commit().await.map_err(|e| open_error(path, e))
    }

    /// Whether every migration of this build is applied already (a plain
    /// read): then opening takes no write lock, so a process that holds it
    /// (a hung worker) cannot keep the next orchestrator from starting and
    /// clearing it away.
    async fn schema_is_current(&self) -> bool {
        let applied: Result<Vec<i64>, _> = sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await;
        let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        applied.is_ok_and(|applied| applied == known)
    }

    /// Begins a write transaction that holds the write lock from its first
    /// statement. A deferred transaction that reads and then writes gets
    /// SQLITE_BUSY immediately (no busy wait) when another process wrote in
    /// between; an immediate one waits for the lock instead.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }
}

/// The pool every store on a file uses: [`MAX_CONNECTIONS`], waiting up to
/// [`BUSY_TIMEOUT`] for a connection.
async fn file_pool(path: &Path, options: SqliteConnectOptions) -> Result<SqlitePool, StoreError> {
    SqlitePoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(BUSY_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| open_error(path, e))
}

/// Refuses a database that has tables but not ours (another program's
/// file), before the migration would add our tables to it.
async fn check_is_ddsas(conn: &mut SqliteConnection, path: &Path) -> Result<(), StoreError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(conn)
    .await
    .map_err(|e| open_error(path, e))?;
    let ours = ["_sqlx_migrations", "runs"];
    if tables.is_empty() || ours.iter().all(|t| tables.iter().any(|n| n == t)) {
        return Ok(());
    }
    Err(StoreError::NotDdsas {
        path: path.to_owned(),
        reason: format!(
            "it has the tables {} but no ddsas run history",
            tables.join(", ")
        ),
    })
}

fn open_error(path: &Path, source: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &source {
        if db.code().as_deref() == Some(SQLITE_NOTADB) {
            return StoreError::NotDdsas {
                path: path.to_owned(),
                reason: "not a SQLite file".into(),
            };
        }
    }
    StoreError::Open {
        path: path.to_owned(),
        source,
        hint: path_hint(path),
    }
}

/// Why a database path cannot be opened, in the user's terms (SQLite only
/// says "unable to open database file").
pub(crate) fn path_hint(path: &Path) -> String {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if path.is_dir() {
        format!(
            "; {} is a directory, and --db takes a file such as {}/results.db",
            path.display(),
            path.display()
        )
    } else if !parent.is_dir() {
        format!(
            "; the folder {} does not exist: create it, or point --db elsewhere",
            parent.display()
        )
    } else if std::fs::metadata(path).is_ok_and(|m| m.permissions().readonly())
        || std::fs::metadata(parent).is_ok_and(|m| m.permissions().readonly())
    {
        "; the file or its folder is read-only: fix the permissions, or point --db elsewhere".into()
    } else {
        String::new()
    }
}

fn migrate_error(path: &Path, source: MigrateError) -> StoreError {
    match source {
        MigrateError::VersionMissing(version) => StoreError::TooNew {
            path: path.to_owned(),
            version,
        },
        source => StoreError::Migrate {
            path: path.to_owned(),
            source,
        },
    }
}

/// Now, in unix seconds: the unit of every time column, and the one clock
/// heartbeats and staleness are measured with.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
