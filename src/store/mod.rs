//! The run history (docs/design.md §3, §5, §6): every run, its life cycle
//! and every epoch's measurements, in one SQLite file shared by the
//! orchestrators and workers of a machine, or in one PostgreSQL database
//! shared by the nodes of a cluster.
//!
//! One concrete [`Store`] over a sqlx `Any` pool, every statement written
//! once in SQL both databases accept (`$1` parameters, `ON CONFLICT`,
//! `RETURNING`); the few differences are named by [`Backend`]. The schema
//! lives in `migrations/sqlite` and `migrations/postgres` (same versions)
//! and is applied whenever a database is opened. SQLite writers begin their
//! transactions with `BEGIN IMMEDIATE` and wait up to [`BUSY_TIMEOUT`] for
//! the write lock, so many worker processes can write to one WAL database
//! without "database is locked" errors.

mod epochs;
mod error;
mod history;
mod history_rows;
mod location;
mod nb201;
mod queries;
mod report_queries;
mod rows;
mod runs;
pub mod slurm;
pub mod sql_text;
mod sweeps;
#[doc(hidden)]
pub mod test_postgres;
#[cfg(test)]
mod tests;
mod tls;
mod train;
mod values;

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions, Connection, Executor, Transaction};

pub use epochs::EpochOf;
use error::Context as _;
pub use error::StoreError;
pub use history::{KnownRun, RunFilter, SweepGlance};
pub use history_rows::{
    table_of, RunCard, RunEpochs, RunState, SearchEpochLine, SweepHeader, SweepRunProgress,
    TableLine, TrainEpochLine, Training,
};
pub use location::{DbLocation, DB_VARIABLE};
pub use nb201::{Nb201Accuracy, NB201_DATASETS};
pub use queries::{Budget, Cut, QueryError, QueryRows, ReadOnlyDb, VALUE_LIMIT};
pub use report_queries::{
    EpochPoint, RatioPoint, ReportRun, ReportTraining, SamplingPoint, StepBucket, SubspacePoint,
    SweepInfo,
};
pub use rows::{method_text, Claim, EpochRow, Ranks, RunKind, RunRow, RunStatus};
pub use runs::RunResult;
pub use sweeps::{RunProgress, SweepRow};

/// The SQLite schema migrations, embedded at build time.
static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
/// The PostgreSQL twins of the same migrations (same versions).
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a statement waits for another process's write lock before
/// failing. Long, because an epoch write is milliseconds but sixteen workers
/// may queue behind each other and a failed write would kill a run.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections per `Store`: a process has few concurrent queries, and SQLite
/// serializes writers anyway; on PostgreSQL, 256 workers times this must
/// stay under the server's `max_connections`.
const MAX_CONNECTIONS: u32 = 2;

/// The PostgreSQL advisory lock key openers take while checking and
/// migrating a schema ("ddsas" in ASCII).
const MIGRATION_LOCK: i64 = 0x0064_6473_6173;

/// SQLite's "file is not a database" result code.
pub(crate) const SQLITE_NOTADB: &str = "26";

/// Which database a store talks to: the SQL of the two differs in a few
/// places (the clock, formatting times, lists bound as JSON), each spelled
/// out here so that every query is written once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (or memory).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The database's clock in unix seconds: heartbeats and staleness are
    /// measured on it, so that workers on nodes with skewed clocks agree.
    pub(crate) fn now(self) -> &'static str {
        match self {
            Backend::Sqlite => "((julianday('now') - 2440587.5) * 86400.0)",
            Backend::Postgres => "date_part('epoch', clock_timestamp())",
        }
    }

    /// `column` (unix seconds) as `YYYY-MM-DD HH:MM:SS` in UTC.
    pub(crate) fn datetime(self, column: &str) -> String {
        match self {
            Backend::Sqlite => format!("datetime({column}, 'unixepoch')"),
            Backend::Postgres => format!(
                "to_char(to_timestamp({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
            ),
        }
    }

    /// A subquery yielding the elements of the JSON array bound at
    /// `param` (e.g. `$1`), as text or, with `integers`, as integers.
    pub(crate) fn json_list(self, param: &str, integers: bool) -> String {
        match (self, integers) {
            (Backend::Sqlite, _) => format!("SELECT value FROM json_each({param})"),
            (Backend::Postgres, false) => {
                format!("SELECT jsonb_array_elements_text(CAST({param} AS TEXT)::jsonb)")
            }
            (Backend::Postgres, true) => format!(
                "SELECT CAST(jsonb_array_elements_text(CAST({param} AS TEXT)::jsonb) AS BIGINT)"
            ),
        }
    }

    /// A column's name as the user sees it: PostgreSQL folds unquoted
    /// names to lower case, so `run_summary`'s `L` and `M` come back as `l`
    /// and `m` there; they are shown with the paper's names on both.
    pub fn shown_name(self, name: &str) -> String {
        match (self, name) {
            (Backend::Postgres, "l") => "L".into(),
            (Backend::Postgres, "m") => "M".into(),
            _ => name.to_owned(),
        }
    }

    /// A column's name as stored, for quoting it (`ORDER BY "L"`): the
    /// inverse of [`Backend::shown_name`].
    pub fn stored_name(self, name: &str) -> String {
        match self {
            Backend::Postgres => name.to_ascii_lowercase(),
            Backend::Sqlite => name.to_owned(),
        }
    }

    /// The row-locking clause of a claim's candidate query on table alias
    /// `table`: PostgreSQL skips rows another claim has locked; SQLite's
    /// write lock already serializes claims.
    pub(crate) fn skip_locked(self, table: &str) -> String {
        match self {
            Backend::Sqlite => String::new(),
            Backend::Postgres => format!("FOR UPDATE OF {table} SKIP LOCKED"),
        }
    }

    /// The larger of two values (SQLite's two-argument `max`).
    pub(crate) fn greatest(self) -> &'static str {
        match self {
            Backend::Sqlite => "max",
            Backend::Postgres => "greatest",
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        }
    }
}

/// The run history: a pool on one SQLite file or PostgreSQL database,
/// through sqlx's `Any` driver, so that every query is written once.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    location: DbLocation,
    backend: Backend,
    clock: Clock,
}

/// The database's clock, read once on opening and carried forward by this
/// process's monotonic clock: every time a store writes (heartbeats,
/// claims, epochs) and every staleness it judges is on the database's
/// clock, so workers on nodes whose clocks are off, or jump, still agree,
/// and no write waits for an extra round trip to ask the time.
#[derive(Debug, Clone, Copy)]
struct Clock {
    /// The database's time at `at`, unix seconds.
    database: f64,
    at: Instant,
}

impl Clock {
    fn local() -> Clock {
        Clock {
            database: unix_now(),
            at: Instant::now(),
        }
    }

    fn now(&self) -> f64 {
        self.database + self.at.elapsed().as_secs_f64()
    }
}

/// Registers sqlx's SQLite and PostgreSQL drivers with `Any` (once).
pub(crate) fn install_drivers() {
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
}

impl Store {
    /// Opens (creating if missing) the SQLite database at `path` and brings
    /// its schema up to date.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        Self::connect(&DbLocation::File(path.to_owned())).await
    }

    /// Opens the run history at `location` and brings its schema up to
    /// date.
    ///
    /// SQLite: WAL with `synchronous = NORMAL`, so that readers (`ddsas
    /// runs`, reports) never block writers and a commit does not wait for an
    /// fsync; foreign keys on, so deleting a run deletes its records.
    /// Opening races with other processes opening the same file (sixteen
    /// workers of a sweep start together): switching a fresh file to WAL and
    /// recovering a WAL can answer "database is locked" without waiting on
    /// the busy timeout, so such an answer is retried until [`BUSY_TIMEOUT`].
    /// So is a PostgreSQL server restarting or ending sessions while the
    /// store opens; a server that cannot be reached at all is reported at
    /// once.
    pub async fn connect(location: &DbLocation) -> Result<Store, StoreError> {
        let deadline = tokio::time::Instant::now() + BUSY_TIMEOUT;
        let mut pause = Duration::from_millis(10);
        loop {
            match Self::connect_once(location).await {
                Err(e)
                    if (e.is_busy() || e.is_server_restarting())
                        && tokio::time::Instant::now() + pause < deadline =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                result => return result,
            }
        }
    }

    async fn connect_once(location: &DbLocation) -> Result<Store, StoreError> {
        let (pool, backend) = match location {
            DbLocation::File(path) => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true);
                (sqlite_pool(path, options, false).await?, Backend::Sqlite)
            }
            DbLocation::Postgres(url) => (
                postgres_pool(location, &postgres_url(url)).await?,
                Backend::Postgres,
            ),
        };
        let mut store = Store {
            pool,
            location: location.clone(),
            backend,
            clock: Clock::local(),
        };
        store.read_clock().await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens an existing database read-only, without touching its schema
    /// (`ddsas serve`): SQLite connections are opened with the read-only
    /// flag and PostgreSQL sessions are read-only, so no statement through
    /// the store can change the history, and reports drawn through it read
    /// what the workers write meanwhile.
    pub async fn open_read_only(location: &DbLocation) -> Result<Store, StoreError> {
        let (pool, backend) = match location {
            DbLocation::File(path) => {
                if !path.is_file() {
                    return Err(StoreError::Open {
                        path: location.to_string(),
                        source: sqlx::Error::Configuration("no such database file".into()),
                        hint: path_hint(path),
                    });
                }
                let options = SqliteConnectOptions::new().filename(path).read_only(true);
                (sqlite_pool(path, options, true).await?, Backend::Sqlite)
            }
            DbLocation::Postgres(url) => {
                let url = read_only_url(url);
                (postgres_pool(location, &url).await?, Backend::Postgres)
            }
        };
        let mut store = Store {
            pool,
            location: location.clone(),
            backend,
            clock: Clock::local(),
        };
        store.read_clock().await?;
        Ok(store)
    }

    /// A private in-memory SQLite database (tests). One connection that
    /// never expires, because the database lives only as long as a
    /// connection.
    pub async fn open_in_memory() -> Result<Store, StoreError> {
        install_drivers();
        let location = DbLocation::File(PathBuf::from(":memory:"));
        let options = AnyConnectOptions::from_url(&"sqlite::memory:".parse().map_err(
            |e: url::ParseError| open_error(&location, sqlx::Error::Configuration(e.into())),
        )?)
        .map_err(|e| open_error(&location, e))?;
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(|conn, _| Box::pin(async move { sqlite_session(conn, false).await }))
            .connect_with(options)
            .await
            .map_err(|e| open_error(&location, e))?;
        let store = Store {
            pool,
            location,
            backend: Backend::Sqlite,
            clock: Clock::local(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The pool, for ad-hoc queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Where the history lives.
    pub fn location(&self) -> &DbLocation {
        &self.location
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection, waiting for them; after this a SQLite file
    /// is consistent without its WAL (a clean shutdown).
    pub async fn close(self) {
        self.pool.close().await;
    }

    /// Now on the database's clock, unix seconds (see [`Clock`]): what
    /// times written to the history are compared with.
    pub fn now(&self) -> f64 {
        self.clock.now()
    }

    /// Bytes the history's data takes, for measuring how it grows (`ddsas
    /// bench store`): PostgreSQL's `pg_database_size` of this database
    /// (its tables and indexes, not the server's write-ahead log); a SQLite
    /// database's pages, i.e. the size of the file once its WAL is
    /// checkpointed. The WAL itself is left out on both: it is a journal
    /// that is reused, and its size at one moment depends on when the last
    /// checkpoint ran, not on how much was stored.
    pub async fn size_bytes(&self) -> Result<u64, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
            }
            Backend::Postgres => "SELECT pg_database_size(current_database())",
        };
        let bytes: i64 = sqlx::query_scalar(sql)
            .fetch_one(&self.pool)
            .await
            .ctx(|| "reading the database's size".to_owned())?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    /// Runs `write` again while the connection to the database is lost,
    /// for up to [`BUSY_TIMEOUT`]: a PostgreSQL restart under running
    /// workers then costs them a pause, not their runs. Only for reads and
    /// for writes that are whole transactions and safe to repeat (an epoch
    /// record replaces its epoch; finishing, failing, interrupting or a
    /// checkpoint path set the same values again; dropping records after
    /// an epoch drops nothing more the second time).
    pub(crate) async fn reconnecting<T, F, Fut>(&self, mut write: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let deadline = tokio::time::Instant::now() + BUSY_TIMEOUT;
        let mut pause = Duration::from_millis(100);
        loop {
            match write().await {
                Err(e)
                    if e.is_connection_lost() && tokio::time::Instant::now() + pause < deadline =>
                {
                    tracing::warn!("{e}; trying again in {pause:?}");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                result => return result,
            }
        }
    }

    /// Anchors [`Store::now`] to the server's clock (PostgreSQL; a SQLite
    /// file's clock is this machine's).
    async fn read_clock(&mut self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            return Ok(());
        }
        let sql = format!("SELECT CAST({} AS DOUBLE PRECISION)", self.backend.now());
        let asked = Instant::now();
        let database: f64 = sqlx::query_scalar(&sql)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| open_error(&self.location, e))?;
        // The answer was read half a round trip ago, on average.
        let half_trip = asked.elapsed() / 2;
        self.clock = Clock {
            database,
            at: Instant::now() - half_trip,
        };
        Ok(())
    }

    /// Applies the pending migrations. SQLite: under the write lock, since
    /// several processes opening a fresh database at once would otherwise
    /// all try to create the tables; PostgreSQL: sqlx holds an advisory lock
    /// for the same reason.
    ///
    /// The check and the migration use one connection, the only one the
    /// pool has opened so far. A second SQLite connection that had read the
    /// schema before a migration added a column would prepare `SELECT *`
    /// with the old columns, and sqlx (which keeps the columns a statement
    /// had when prepared) panics on the wider rows SQLite then returns.
    async fn migrate(&self) -> Result<(), StoreError> {
        let location = &self.location;
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| open_error(location, e))?;
        if self.schema_is_current(&mut conn).await {
            return Ok(());
        }
        let migrator = self.backend.migrator();
        match self.backend {
            Backend::Sqlite => {
                let mut tx = conn
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(|e| open_error(location, e))?;
                check_is_ddsas(&mut tx, self.backend, location).await?;
                migrator
                    .run_direct(&mut *tx)
                    .await
                    .map_err(|e| migrate_error(location, e))?;
                tx.commit().await.map_err(|e| open_error(location, e))
            }
            Backend::Postgres => {
                // One opener at a time checks and migrates: another one
                // would see the half-made schema (only `_sqlx_migrations`).
                let lock = format!("SELECT pg_advisory_lock({MIGRATION_LOCK})");
                conn.execute(lock.as_str())
                    .await
                    .map_err(|e| open_error(location, e))?;
                let migrated = async {
                    check_is_ddsas(&mut conn, self.backend, location).await?;
                    migrator
                        .run(&self.pool)
                        .await
                        .map_err(|e| migrate_error(location, e))
                }
                .await;
                let unlock = format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})");
                let _ = conn.execute(unlock.as_str()).await;
                migrated
            }
        }
    }

    /// Whether every migration of this build is applied already (a plain
    /// read): then opening takes no write lock, so a process that holds it
    /// (a hung worker) cannot keep the next orchestrator from starting and
    /// clearing it away.
    async fn schema_is_current(&self, conn: &mut AnyConnection) -> bool {
        let applied: Result<Vec<i64>, _> = sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(conn)
        .await;
        let known: Vec<i64> = self.backend.migrator().iter().map(|m| m.version).collect();
        applied.is_ok_and(|applied| applied == known)
    }

    /// Begins a write transaction. On SQLite it holds the write lock from
    /// its first statement: a deferred transaction that reads and then
    /// writes gets SQLITE_BUSY immediately (no busy wait) when another
    /// process wrote in between; an immediate one waits for the lock
    /// instead. PostgreSQL locks rows as they are written.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }
}

/// A pool on a SQLite file: [`MAX_CONNECTIONS`], waiting up to
/// [`BUSY_TIMEOUT`] for a connection, each connection set up by
/// [`sqlite_session`].
async fn sqlite_pool(
    path: &Path,
    options: SqliteConnectOptions,
    read_only: bool,
) -> Result<AnyPool, StoreError> {
    install_drivers();
    let location = DbLocation::File(path.to_owned());
    let options = AnyConnectOptions::from_url(&options.to_url_lossy())
        .map_err(|e| open_error(&location, e))?;
    // One connection first, so that a file that is not a database (or is
    // locked) is reported at once rather than as the pool's timeout.
    let mut first = AnyConnection::connect_with(&options)
        .await
        .map_err(|e| open_error(&location, e))?;
    sqlite_session(&mut first, read_only)
        .await
        .map_err(|e| open_error(&location, e))?;
    let _ = first.close().await;
    AnyPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(BUSY_TIMEOUT)
        .after_connect(move |conn, _| {
            Box::pin(async move { sqlite_session(conn, read_only).await })
        })
        .connect_with(options)
        .await
        .map_err(|e| open_error(&location, e))
}

/// What every SQLite connection needs and the `Any` driver's URL cannot
/// say: wait for locks, enforce foreign keys, and (writers) WAL with
/// `synchronous = NORMAL`.
pub(crate) async fn sqlite_session(
    conn: &mut AnyConnection,
    read_only: bool,
) -> Result<(), sqlx::Error> {
    let busy = format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis());
    conn.execute(busy.as_str()).await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    if !read_only {
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.execute("PRAGMA synchronous = NORMAL").await?;
    }
    Ok(())
}

/// A pool on a PostgreSQL database, each session in UTC. The TLS settings
/// are checked first, so that a mistyped one is named as such rather than
/// as an unreachable server.
async fn postgres_pool(location: &DbLocation, url: &str) -> Result<AnyPool, StoreError> {
    install_drivers();
    let url = tls::prepare(url).map_err(|problem| StoreError::Tls {
        path: location.to_string(),
        problem,
    })?;
    AnyPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(BUSY_TIMEOUT)
        .connect(&url)
        .await
        .map_err(|e| open_error(location, e))
}

/// `url` as every PostgreSQL connection of ddsas opens it: without
/// sqlx's statement cache, because sqlx 0.8.6's `Any` driver sends a NULL
/// `DOUBLE PRECISION` parameter as a `REAL` one, and a statement cached from
/// such a call then refuses the next call's number ("incorrect binary data
/// format"); each statement is parsed anew instead (the store tests catch
/// a regression: `cosine_distance` is NULL at epoch 0 only).
///
/// The server also ends a session left idle inside a transaction for a
/// minute (ours last milliseconds): a worker frozen mid-write (SIGSTOP, a
/// hung node) would otherwise hold its run's row lock for good, and every
/// claim or takeover of that run would wait on it.
pub(crate) fn postgres_url(url: &str) -> String {
    with_params(
        url,
        &[
            ("statement-cache-capacity", "0"),
            ("options", "-c idle_in_transaction_session_timeout=60000"),
        ],
    )
}

/// [`postgres_url`] with the sessions it opens read-only and their
/// statements limited to a minute (`ddsas serve`, `ddsas sql`, `runs
/// --where`).
pub(crate) fn read_only_url(url: &str) -> String {
    with_params(
        url,
        &[
            ("statement-cache-capacity", "0"),
            (
                "options",
                "-c default_transaction_read_only=on -c statement_timeout=60000",
            ),
        ],
    )
}

fn with_params(url: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            {
                let mut pairs = parsed.query_pairs_mut();
                for (key, value) in params {
                    pairs.append_pair(key, value);
                }
            }
            parsed.to_string()
        }
        Err(_) => url.to_owned(),
    }
}

/// Refuses a database that has tables but not ours (another program's
/// file or schema), before the migration would add our tables to it.
async fn check_is_ddsas(
    conn: &mut AnyConnection,
    backend: Backend,
    location: &DbLocation,
) -> Result<(), StoreError> {
    let sql = match backend {
        Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        Backend::Postgres => "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name",
    };
    let tables: Vec<String> = sqlx::query_scalar(sql)
        .fetch_all(conn)
        .await
        .map_err(|e| open_error(location, e))?;
    let ours = ["_sqlx_migrations", "runs"];
    // `_sqlx_migrations` alone: a first migration that was cut off (the
    // table is made outside the migrations' transactions), to be redone.
    let first_cut = tables == ["_sqlx_migrations"];
    if tables.is_empty() || first_cut || ours.iter().all(|t| tables.iter().any(|n| n == t)) {
        return Ok(());
    }
    Err(StoreError::NotDdsas {
        path: location.to_string(),
        reason: format!(
            "it has the tables {} but no ddsas run history",
            tables.join(", ")
        ),
    })
}

fn open_error(location: &DbLocation, source: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &source {
        if db.code().as_deref() == Some(SQLITE_NOTADB) {
            return StoreError::NotDdsas {
                path: location.to_string(),
                reason: "not a SQLite file".into(),
            };
        }
    }
    let hint = match location {
        DbLocation::File(path) => path_hint(path),
        DbLocation::Postgres(url) => {
            if let Some(problem) = tls::explain(&source, Some(url)) {
                return StoreError::Tls {
                    path: location.to_string(),
                    problem,
                };
            }
            postgres_hint(&source, None)
        }
    };
    StoreError::Open {
        path: location.to_string(),
        source,
        hint,
    }
}

/// Why a PostgreSQL server cannot be reached, in the user's terms; `url`,
/// when known, names the certificate settings in play.
pub(crate) fn postgres_hint(source: &sqlx::Error, url: Option<&str>) -> String {
    if let Some(problem) = tls::explain(source, url) {
        return format!("; {problem}");
    }
    match source {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => {
            "; is the server running and reachable? (a throw-away one on this machine: scripts/postgres.sh start)".into()
        }
        sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000") => {
            "; the database does not exist: create it with `createdb` (or `psql -c 'CREATE DATABASE ...'`)".into()
        }
        _ => String::new(),
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

fn migrate_error(location: &DbLocation, source: MigrateError) -> StoreError {
    match source {
        MigrateError::VersionMissing(version) => StoreError::TooNew {
            path: location.to_string(),
            version,
        },
        source => StoreError::Migrate {
            path: location.to_string(),
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
