//! Ad-hoc questions about the run history (`ddsas runs`, `ddsas sql`) on a
//! read-only connection: user-written SQL (`--where`, `ddsas sql`) can then
//! never change the database, whatever it says, and never takes the write
//! lock from running workers.

use std::time::{Duration, Instant};

use sqlx::any::{AnyArguments, AnyRow, AnyTypeInfoKind};
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Column, ConnectOptions, Connection, Row, Statement, ValueRef};
use sqlx_core::any::AnyConnectionBackend;

use super::{Backend, DbLocation};

/// SQLite's "attempt to write a readonly database" primary result code.
const SQLITE_READONLY: i64 = 8;
/// PostgreSQL's "cannot execute ... in a read-only transaction".
const POSTGRES_READ_ONLY: &str = "25006";
/// SQLite's "interrupted" primary result code: what the progress handler
/// causes when a statement runs past its time limit.
const SQLITE_INTERRUPT: i64 = 9;
/// PostgreSQL's "canceling statement due to statement timeout".
const POSTGRES_CANCELED: &str = "57014";
/// SQLite virtual-machine steps between two looks at the clock: often
/// enough to stop within milliseconds, rare enough to cost nothing.
const PROGRESS_STEPS: i32 = 4096;
/// The time limit a connection starts with (what the CLI keeps unless told
/// otherwise).
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(60);
/// SQLite's "string or blob too big" primary result code: what a statement
/// that builds a value over [`VALUE_LIMIT`] fails with.
const SQLITE_TOOBIG: i64 = 18;
/// The largest text or blob a statement on a read-only SQLite connection
/// may build or read (`sqlite3_limit` with `SQLITE_LIMIT_LENGTH`): SQLite
/// allocates a value whole, so `randomblob(1000000000)` in a filter would
/// take a GiB before any row reached us. Far above any value ddsas stores
/// (configs, genotypes and messages are a few KiB).
pub const VALUE_LIMIT: usize = 16 << 20;
/// The most memory SQLite may hold at once in a process that runs a user's
/// query (`sqlite3_hard_heap_limit64`, process-wide, set when the first
/// read-only SQLite connection opens): [`VALUE_LIMIT`] bounds one value,
/// not a row of many (`SELECT randomblob(16000000), randomblob(16000000),
/// ...`). Far above what ddsas's own reads need (SQLite's page cache is a
/// few MiB a connection; sorts spill to temporary files).
pub const SQLITE_HEAP_LIMIT: usize = 512 << 20;
/// SQLite's "out of memory" primary result code: what a statement fails
/// with at [`SQLITE_HEAP_LIMIT`].
const SQLITE_NOMEM: i64 = 7;

/// How much of an answer a query may hold, so that a cross join or a huge
/// value is cut rather than taking the memory: rows are kept up to `rows`
/// (the others counted, never held) and while their values stay within
/// `bytes` (text and blobs by their length, other values 8 bytes; the rows
/// after that are never read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Rows kept.
    pub rows: usize,
    /// Bytes of values kept.
    pub bytes: usize,
}

impl Budget {
    /// No limit: for the fixed questions of the commands and pages, whose
    /// size the schema bounds.
    pub const UNBOUNDED: Budget = Budget {
        rows: usize::MAX,
        bytes: usize::MAX,
    };
}

/// What a [`Budget`] left out of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cut {
    /// Nothing: the answer is whole.
    #[default]
    None,
    /// This many rows past the row limit were counted, not kept.
    Rows(u64),
    /// The next row would have passed the byte limit (given): it and the
    /// rows after it were not read.
    Bytes(usize),
}

/// A query on the read-only connection that failed; the message says why
/// in the user's terms.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// There is no database file to read.
    #[error("database {0} does not exist; run a search or a sweep first, or point --db at the right file")]
    Missing(String),
    /// The database could not be opened.
    #[error("cannot open database {path} read-only: {source}{hint}")]
    Open {
        /// The database (file or URL without password).
        path: String,
        /// sqlx's error.
        source: sqlx::Error,
        /// What is wrong with the path, when that can be told.
        hint: String,
    },
    /// SQLite says the file is damaged (truncated, overwritten).
    #[error("database {path} is damaged ({message}); `sqlite3 {path} .recover > rows.sql` may save its rows")]
    Damaged {
        /// Database file.
        path: String,
        /// SQLite's message.
        message: String,
    },
    /// The file is not SQLite, or holds no ddsas run history.
    #[error("database {path} is not a ddsas database ({reason}); point --db at the results.db of a search or sweep, or at the PostgreSQL database the sweep was submitted with")]
    NotDdsas {
        /// The database (file or URL without password).
        path: String,
        /// What gave it away.
        reason: String,
    },
    /// The statement tried to change the database.
    #[error(
        "the statement tries to change the database, and queries here are read-only ({message})"
    )]
    ReadOnly {
        /// The database's message.
        message: String,
    },
    /// The statement built a value over [`VALUE_LIMIT`] and was stopped
    /// (SQLite allocates values whole: `randomblob(1000000000)`).
    #[error("the query builds a value larger than {} MiB, the most one value may have here; select a part of it instead (length(x), substr(x, 1, 1000))", VALUE_LIMIT >> 20)]
    TooBig,
    /// The statement needed more of SQLite's memory than
    /// [`SQLITE_HEAP_LIMIT`] (many large values in one row).
    #[error("the query needs more than {} MiB of memory at once, the most it may take here; select fewer or smaller columns (length(x), substr(x, 1, 1000))", SQLITE_HEAP_LIMIT >> 20)]
    TooMuchMemory,
    /// The statement ran past the time limit and was stopped, so that a
    /// runaway query (an endless recursive CTE, a huge cross join) never
    /// hangs a command or the web view.
    #[error("the query was stopped after its time limit of {} s; --query-timeout SECS changes the limit (0: none)", limit.as_secs_f64())]
    TimedOut {
        /// The limit it ran into.
        limit: Duration,
    },
    /// The database rejected the statement (syntax, unknown column or table...).
    #[error("{message}")]
    Sql {
        /// The database's message.
        message: String,
    },
}

/// The result of a query: column names and rows of JSON values (integers,
/// reals, text, null; blobs as their length).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryRows {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<serde_json::Value>>,
}

impl QueryRows {
    /// The cell of column `name` in row `row`; NULL if there is no such
    /// column. For rows whose columns the user picks (`ddsas sql`, the
    /// columns of `run_summary`); fixed questions come back typed.
    pub fn cell(&self, row: usize, name: &str) -> &serde_json::Value {
        self.columns
            .iter()
            .position(|c| c == name)
            .and_then(|i| self.rows.get(row)?.get(i))
            .unwrap_or(&serde_json::Value::Null)
    }
}

/// One read-only connection to a run-history database: a SQLite file
/// opened with the read-only flag, or a PostgreSQL session whose
/// transactions are read-only and whose statements time out after a
/// minute.
#[derive(Debug)]
pub struct ReadOnlyDb {
    conn: Conn,
    backend: Backend,
    limit: Option<Duration>,
}

/// The connection, of its concrete type: SQLite's handle is needed to stop
/// a statement (sqlx's `AnyConnection` hides it); rows still come back as
/// `AnyRow` through each driver's `AnyConnectionBackend`.
#[derive(Debug)]
enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Conn {
    fn any(&mut self) -> &mut dyn AnyConnectionBackend {
        match self {
            Conn::Sqlite(c) => c,
            Conn::Postgres(c) => c,
        }
    }
}

/// The rows `sql` answers with `args` within `budget`, and what it cut.
async fn fetch_rows(
    conn: &mut dyn AnyConnectionBackend,
    sql: &str,
    args: AnyArguments<'static>,
    budget: Budget,
) -> Result<(Vec<AnyRow>, Cut), sqlx::Error> {
    collect_rows(conn.fetch_many(sql, true, Some(args)), budget).await
}

/// Every row `sql` answers with `args`.
async fn fetch_all(
    conn: &mut dyn AnyConnectionBackend,
    sql: &str,
    args: AnyArguments<'static>,
) -> Result<Vec<AnyRow>, sqlx::Error> {
    Ok(fetch_rows(conn, sql, args, Budget::UNBOUNDED).await?.0)
}

/// A driver's answer within `budget`, in order (its row counts left out):
/// rows are counted as they arrive and the stream is dropped at the first
/// row over the byte limit, so that memory holds at most the budget and
/// the rows in flight.
async fn collect_rows(
    mut stream: futures_core::stream::BoxStream<
        '_,
        Result<sqlx::Either<sqlx::any::AnyQueryResult, AnyRow>, sqlx::Error>,
    >,
    budget: Budget,
) -> Result<(Vec<AnyRow>, Cut), sqlx::Error> {
    let mut rows = Vec::new();
    let mut more = 0;
    let mut bytes = 0usize;
    while let Some(step) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        let sqlx::Either::Right(row) = step? else {
            continue;
        };
        if rows.len() >= budget.rows {
            more += 1;
            continue;
        }
        bytes = bytes.saturating_add(row_bytes(&row));
        if bytes > budget.bytes || is_over_budget(&row) {
            return Ok((rows, Cut::Bytes(budget.bytes)));
        }
        rows.push(row);
    }
    let cut = if more > 0 { Cut::Rows(more) } else { Cut::None };
    Ok((rows, cut))
}

/// The bytes a row's values hold: text and blobs by their length, other
/// values 8.
fn row_bytes(row: &AnyRow) -> usize {
    use sqlx_core::any::AnyValueKind;
    row.values
        .iter()
        .map(|v| match &v.kind {
            AnyValueKind::Text(t) => t.len(),
            AnyValueKind::Blob(b) => b.len(),
            _ => 8,
        })
        .sum()
}

/// A row of [`ReadOnlyDb::query_as_json`] that PostgreSQL left out for its
/// size: NULL text with its length beside it.
fn is_over_budget(row: &AnyRow) -> bool {
    use sqlx_core::any::AnyValueKind;
    row.columns.len() == 2
        && row.columns[0].name() == JSON_COLUMN
        && matches!(row.values[0].kind, AnyValueKind::Null(_))
        && !matches!(row.values[1].kind, AnyValueKind::Null(_))
}

/// The name of [`ReadOnlyDb::query_as_json`]'s text column.
const JSON_COLUMN: &str = "ddsas_row_json";

/// The column names of `sql`, as the database describes them.
async fn described_columns(
    conn: &mut dyn AnyConnectionBackend,
    sql: &str,
    backend: Backend,
) -> Result<Vec<String>, sqlx::Error> {
    let statement = conn.prepare_with(sql, &[]).await?;
    Ok(statement
        .columns()
        .iter()
        .map(|c| backend.shown_name(c.name()))
        .collect())
}

impl ReadOnlyDb {
    /// Opens `location` read-only; a missing file is an error (never
    /// created).
    pub async fn open(location: impl Into<DbLocation>) -> Result<ReadOnlyDb, QueryError> {
        let location = location.into();
        super::install_drivers();
        let name = location.to_string();
        let open_error = |source| QueryError::Open {
            path: name.clone(),
            hint: match &location {
                DbLocation::File(path) => super::path_hint(path),
                DbLocation::Postgres(url) => super::postgres_hint(&source, Some(url)),
            },
            source,
        };
        let (mut conn, backend) = match &location {
            DbLocation::File(path) => {
                if !path.exists() {
                    return Err(QueryError::Missing(name));
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .read_only(true)
                    .busy_timeout(super::BUSY_TIMEOUT)
                    .foreign_keys(true);
                let mut conn = options.connect().await.map_err(open_error)?;
                limit_value_length(&mut conn).await.map_err(open_error)?;
                (Conn::Sqlite(conn), Backend::Sqlite)
            }
            DbLocation::Postgres(url) => {
                let url = super::tls::prepare(url).map_err(|problem| QueryError::Open {
                    path: name.clone(),
                    source: sqlx::Error::Configuration(problem.into()),
                    hint: String::new(),
                })?;
                let conn = PgConnection::connect(&super::read_only_url(&url))
                    .await
                    .map_err(open_error)?;
                (Conn::Postgres(conn), Backend::Postgres)
            }
        };
        let check = match backend {
            Backend::Sqlite => {
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'runs'"
            }
            Backend::Postgres => {
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'runs'"
            }
        };
        let has_runs = fetch_all(conn.any(), check, AnyArguments::default())
            .await
            .and_then(|rows| match rows.first() {
                Some(row) => row.try_get::<i64, _>(0),
                None => Ok(0),
            });
        let reason = match has_runs {
            Ok(1) => {
                return Ok(ReadOnlyDb {
                    conn,
                    backend,
                    limit: Some(DEFAULT_TIME_LIMIT),
                })
            }
            Ok(_) => "it has no `runs` table".to_string(),
            Err(sqlx::Error::Database(db))
                if db.code().as_deref() == Some(super::SQLITE_NOTADB) =>
            {
                "not a SQLite file".to_string()
            }
            Err(sqlx::Error::Database(db)) if db.message().contains("malformed") => {
                return Err(QueryError::Damaged {
                    path: name,
                    message: db.message().to_owned(),
                })
            }
            Err(e) => return Err(open_error(e)),
        };
        Err(QueryError::NotDdsas { path: name, reason })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Stops every later statement that runs longer than `limit` (`None`:
    /// never) with [`QueryError::TimedOut`]: the web view wants a few
    /// seconds, the CLI a generous minute that the user may lift.
    pub async fn set_time_limit(&mut self, limit: Option<Duration>) -> Result<(), QueryError> {
        self.limit = limit;
        if let Conn::Postgres(conn) = &mut self.conn {
            let millis = limit.map_or(0, |l| l.as_millis().max(1));
            let set = format!("SET statement_timeout = {millis}");
            let nothing = Budget { rows: 0, bytes: 0 };
            collect_rows(conn.fetch_many(&set, false, None), nothing)
                .await
                .map_err(classify)?;
        }
        Ok(())
    }

    /// The time limit statements run under.
    pub fn time_limit(&self) -> Option<Duration> {
        self.limit
    }

    /// SQLite: starts the clock of the next statement (PostgreSQL's server
    /// keeps its own `statement_timeout`).
    async fn arm(&mut self) -> Result<(), QueryError> {
        let Conn::Sqlite(conn) = &mut self.conn else {
            return Ok(());
        };
        let mut handle = conn.lock_handle().await.map_err(classify)?;
        match self.limit {
            Some(limit) => {
                let deadline = Instant::now() + limit;
                handle.set_progress_handler(PROGRESS_STEPS, move || Instant::now() < deadline);
            }
            None => handle.remove_progress_handler(),
        }
        Ok(())
    }

    /// A failure in the user's terms; a statement stopped by the time limit
    /// names the limit.
    fn fail(&self, err: sqlx::Error) -> QueryError {
        if let sqlx::Error::Database(db) = &err {
            let code = db.code();
            let sqlite = code.as_deref().and_then(|c| c.parse::<i64>().ok());
            if sqlite.is_some_and(|c| c & 0xff == SQLITE_TOOBIG) {
                return QueryError::TooBig;
            }
            if sqlite.is_some_and(|c| c & 0xff == SQLITE_NOMEM) {
                return QueryError::TooMuchMemory;
            }
            if let Some(limit) = self.limit {
                if sqlite.is_some_and(|c| c & 0xff == SQLITE_INTERRUPT)
                    || code.as_deref() == Some(POSTGRES_CANCELED)
                {
                    return QueryError::TimedOut { limit };
                }
            }
        }
        classify(err)
    }

    /// Runs one statement with positional text/number parameters (`?1`...)
    /// and returns every row.
    pub async fn query(
        &mut self,
        sql: &str,
        params: &[serde_json::Value],
    ) -> Result<QueryRows, QueryError> {
        Ok(self.query_within(sql, params, Budget::UNBOUNDED).await?.0)
    }

    /// [`ReadOnlyDb::query`] within `budget` (`ddsas sql --limit`, the web
    /// view's table), so that a huge answer is cut rather than held whole;
    /// says what was cut.
    pub async fn query_within(
        &mut self,
        sql: &str,
        params: &[serde_json::Value],
        budget: Budget,
    ) -> Result<(QueryRows, Cut), QueryError> {
        super::sql_text::one_statement(sql).map_err(|message| QueryError::Sql { message })?;
        super::sql_text::read_only_statement(sql)
            .map_err(|message| QueryError::ReadOnly { message })?;
        self.arm().await?;
        if self.backend == Backend::Postgres {
            match self.query_as_json(sql, params, budget).await {
                Err(QueryError::Sql { message }) if message.contains(WRAP_FAILED) => {}
                answer => return answer,
            }
        }
        let columns = described_columns(self.conn.any(), sql, self.backend)
            .await
            .map_err(|e| self.fail(e))?;
        let (rows, cut) = fetch_rows(self.conn.any(), sql, json_args(params), budget)
            .await
            .map_err(|e| self.fail(e))?;
        let columns = match rows.first() {
            Some(row) if columns.is_empty() => row
                .columns()
                .iter()
                .map(|c| self.backend.shown_name(c.name()))
                .collect(),
            _ => columns,
        };
        // Each row's values are freed as it is read, so that the budget is
        // held about once, not twice.
        let rows = rows
            .into_iter()
            .map(|row| row_values(&row, columns.len()))
            .collect();
        Ok((QueryRows { columns, rows }, cut))
    }

    /// PostgreSQL: the rows as `row_to_json` writes them, so that every
    /// column type reads back (`sum` and `avg` give `numeric`, which sqlx's
    /// `Any` driver cannot decode; timestamps, JSON...). The column names
    /// come from the first row, or (no rows) from describing the statement.
    /// A row whose text is over the byte budget stays on the server (NULL
    /// with its length), so that one huge value never crosses the wire.
    async fn query_as_json(
        &mut self,
        sql: &str,
        params: &[serde_json::Value],
        budget: Budget,
    ) -> Result<(QueryRows, Cut), QueryError> {
        let inner = sql.trim().trim_end_matches(';');
        let most = budget.bytes.min(i64::MAX as usize);
        let wrapped = format!(
            "SELECT CASE WHEN octet_length(j) <= {most} THEN j END AS {JSON_COLUMN}, octet_length(j)
             FROM (SELECT CAST(row_to_json(q) AS TEXT) AS j FROM ({inner}\n) AS q) AS w"
        );
        let texts = fetch_rows(self.conn.any(), &wrapped, json_args(params), budget)
            .await
            .and_then(|(rows, more)| {
                let texts = rows.iter().map(|r| r.try_get::<String, _>(0));
                Ok((texts.collect::<Result<Vec<String>, _>>()?, more))
            });
        let (texts, more) = match texts {
            Ok(answer) => answer,
            // Not a query that can be a subquery (EXPLAIN, SHOW): answered
            // the plain way.
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42601") => {
                return Err(QueryError::Sql {
                    message: WRAP_FAILED.into(),
                })
            }
            Err(e) => return Err(self.fail(e)),
        };
        let mut columns = Vec::new();
        let mut rows = Vec::with_capacity(texts.len());
        let none = texts.is_empty();
        for text in texts {
            let pairs = ordered_object(&text).map_err(|e| QueryError::Sql {
                message: format!("reading a row back from PostgreSQL: {e}"),
            })?;
            if columns.is_empty() {
                columns = pairs
                    .iter()
                    .map(|(k, _)| self.backend.shown_name(k))
                    .collect();
            }
            rows.push(pairs.into_iter().map(|(_, v)| v).collect());
        }
        if none {
            if let Ok(names) = described_columns(self.conn.any(), sql, self.backend).await {
                columns = names;
            }
        }
        Ok((QueryRows { columns, rows }, more))
    }

    /// The column names of a table or view.
    pub async fn columns_of(&mut self, table: &str) -> Result<Vec<String>, QueryError> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT name FROM pragma_table_info($1) ORDER BY cid",
            Backend::Postgres => {
                "SELECT CAST(column_name AS TEXT) FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
            }
        };
        self.arm().await?;
        let rows = fetch_all(self.conn.any(), sql, json_args(&[table.into()]))
            .await
            .and_then(|rows| {
                rows.iter()
                    .map(|r| r.try_get::<String, _>(0))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| self.fail(e))?;
        Ok(rows.iter().map(|n| self.backend.shown_name(n)).collect())
    }
}

/// Caps the text and blobs a SQLite connection's statements may build or
/// read at [`VALUE_LIMIT`]; past it they fail with "string or blob too
/// big" ([`QueryError::TooBig`]) before allocating. Also caps SQLite's
/// memory in this process at [`SQLITE_HEAP_LIMIT`] (once; past it a
/// statement fails with [`QueryError::TooMuchMemory`]).
async fn limit_value_length(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    static HEAP_LIMIT: std::sync::Once = std::sync::Once::new();
    HEAP_LIMIT.call_once(|| {
        let limit = i64::try_from(SQLITE_HEAP_LIMIT).unwrap_or(i64::MAX);
        // SAFETY: a process-wide setting SQLite reads under its own mutex;
        // callable at any time.
        unsafe {
            libsqlite3_sys::sqlite3_hard_heap_limit64(limit);
        }
    });
    let mut handle = conn.lock_handle().await?;
    let limit = i32::try_from(VALUE_LIMIT).unwrap_or(i32::MAX);
    // SAFETY: the handle is a live connection, held locked for the call;
    // `sqlite3_limit` only sets a number on it.
    unsafe {
        libsqlite3_sys::sqlite3_limit(
            handle.as_raw_handle().as_ptr(),
            libsqlite3_sys::SQLITE_LIMIT_LENGTH,
            limit,
        );
    }
    Ok(())
}

/// Marks a statement PostgreSQL could not take as a subquery.
const WRAP_FAILED: &str = "(not a subquery)";

/// `ddsas sql`'s JSON parameters as arguments, in order.
fn json_args(params: &[serde_json::Value]) -> AnyArguments<'static> {
    use sqlx::Arguments;
    let mut args = AnyArguments::default();
    for p in params {
        // Adding to `AnyArguments` only stores the value; it cannot fail.
        let _ = match p {
            serde_json::Value::Null => args.add(None::<i64>),
            serde_json::Value::Bool(b) => args.add(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => args.add(i),
                None => args.add(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => args.add(s.clone()),
            other => args.add(other.to_string()),
        };
    }
    args
}

/// A JSON object's members in the order written (serde_json's `Map` sorts
/// them, and a row's columns must keep their order).
fn ordered_object(text: &str) -> Result<Vec<(String, serde_json::Value)>, serde_json::Error> {
    struct Members;
    impl<'de> serde::de::Visitor<'de> for Members {
        type Value = Vec<(String, serde_json::Value)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut members = Vec::new();
            while let Some(member) = map.next_entry()? {
                members.push(member);
            }
            Ok(members)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    serde::Deserializer::deserialize_map(&mut de, Members)
}

fn row_values(row: &AnyRow, n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            let Ok(raw) = row.try_get_raw(i) else {
                return serde_json::Value::Null;
            };
            if raw.is_null() {
                return serde_json::Value::Null;
            }
            match raw.type_info().kind() {
                AnyTypeInfoKind::Bool => row
                    .try_get::<bool, _>(i)
                    .map(|b| i64::from(b).into())
                    .unwrap_or_default(),
                kind if kind.is_integer() => {
                    row.try_get::<i64, _>(i).map(Into::into).unwrap_or_default()
                }
                AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => row
                    .try_get::<f64, _>(i)
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number),
                AnyTypeInfoKind::Blob => row
                    .try_get::<Vec<u8>, _>(i)
                    .map(|b| format!("<{} bytes>", b.len()).into())
                    .unwrap_or_default(),
                _ => row
                    .try_get::<String, _>(i)
                    .map(Into::into)
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// Turns a sqlx error into what the user needs to hear.
fn classify(err: sqlx::Error) -> QueryError {
    match &err {
        sqlx::Error::Database(db) => {
            let message = db.message().to_owned();
            let code = db.code().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
            if code & 0xff == SQLITE_READONLY
                || message.contains("readonly database")
                || db.code().as_deref() == Some(POSTGRES_READ_ONLY)
            {
                QueryError::ReadOnly { message }
            } else {
                QueryError::Sql { message }
            }
        }
        sqlx::Error::AnyDriverError(e) if e.to_string().contains("does not support") => {
            QueryError::Sql {
                message: format!(
                    "{e}; cast the column to a number or text, e.g. `CAST(x AS DOUBLE PRECISION)` or `CAST(x AS TEXT)`"
                ),
            }
        }
        _ => QueryError::Sql {
            message: err.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SearchConfig;
    use crate::store::Store;

    #[tokio::test]
    async fn foreign_damaged_and_missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.db");
        std::fs::write(&text, "hello, not SQLite\n".repeat(300)).unwrap();
        let err = ReadOnlyDb::open(&text).await.unwrap_err().to_string();
        assert!(
            err.contains("not a ddsas database (not a SQLite file)"),
            "{err}"
        );
        let full = dir.path().join("full.db");
        let store = Store::open(&full).await.unwrap();
        for seed in 0..50 {
            let cfg = SearchConfig::default()
                .with_overrides(&[format!("seed={seed}")])
                .unwrap()
                .resolve()
                .unwrap();
            store.ensure_run(&cfg).await.unwrap();
        }
        store.close().await;
        let bytes = std::fs::read(&full).unwrap();
        let cut = dir.path().join("cut.db");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        match ReadOnlyDb::open(&cut).await {
            Ok(mut db) => {
                let err = db.query("SELECT * FROM runs", &[]).await;
                assert!(err.is_err(), "half a database read back whole");
            }
            // Where the cut falls decides what SQLite notices first.
            Err(e) => assert!(
                e.to_string().contains("damaged") || e.to_string().contains("not a ddsas"),
                "{e}"
            ),
        }
        let err = ReadOnlyDb::open(&dir.path().join("nope.db"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[tokio::test]
    async fn reads_values_and_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let store = Store::open(&path).await.unwrap();
        store
            .ensure_run(&SearchConfig::default().resolve().unwrap())
            .await
            .unwrap();
        let mut db = ReadOnlyDb::open(&path).await.unwrap();
        let rows = db
            .query(
                "SELECT id, L, method, valid_acc, 0.5 AS half FROM run_summary WHERE seed = ?1",
                &[0.into()],
            )
            .await
            .unwrap();
        assert_eq!(rows.columns, vec!["id", "L", "method", "valid_acc", "half"]);
        assert_eq!(rows.rows[0][1], serde_json::json!(28));
        assert_eq!(rows.rows[0][2], serde_json::json!("ddsas"));
        assert_eq!(rows.rows[0][3], serde_json::Value::Null);
        assert_eq!(rows.rows[0][4], serde_json::json!(0.5));
        let empty = db
            .query("SELECT id, status FROM runs WHERE 0", &[])
            .await
            .unwrap();
        assert_eq!(empty.columns, vec!["id", "status"]);
        assert!(empty.rows.is_empty());
        let err = db.query("DELETE FROM runs", &[]).await.unwrap_err();
        assert!(matches!(err, QueryError::ReadOnly { .. }), "{err}");
        let err = db.query("SELEC 1", &[]).await.unwrap_err();
        assert!(
            matches!(err, QueryError::Sql { .. }) && err.to_string().contains("syntax"),
            "{err}"
        );
        assert!(db
            .columns_of("run_summary")
            .await
            .unwrap()
            .contains(&"valid_acc".to_owned()));
        assert_eq!(
            db.query("SELECT count(*) AS n FROM runs", &[])
                .await
                .unwrap()
                .rows[0][0],
            serde_json::json!(1)
        );
        assert!(matches!(
            ReadOnlyDb::open(&dir.path().join("no.db")).await,
            Err(QueryError::Missing(_))
        ));
    }

    /// The endless recursive query of a careless filter.
    const ENDLESS: &str =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c";

    /// A runaway statement is stopped at the limit with the one-line
    /// message naming it and the flag, and the connection answers the next
    /// question at once.
    async fn stops_a_runaway_statement(db: &mut ReadOnlyDb) {
        db.set_time_limit(Some(Duration::from_millis(300)))
            .await
            .unwrap();
        let start = Instant::now();
        let err = db.query(ENDLESS, &[]).await.unwrap_err();
        let took = start.elapsed();
        assert!(matches!(err, QueryError::TimedOut { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("0.3 s") && text.contains("--query-timeout") && !text.contains('\n'),
            "{text}"
        );
        assert!(
            took < Duration::from_secs(20),
            "stopped only after {took:?}"
        );
        let rows = db
            .query("SELECT count(*) AS n FROM runs", &[])
            .await
            .unwrap();
        assert_eq!(rows.rows[0][0], serde_json::json!(1));
        db.set_time_limit(None).await.unwrap();
        assert_eq!(db.time_limit(), None);
    }

    #[tokio::test]
    async fn sqlite_stops_a_runaway_statement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let store = Store::open(&path).await.unwrap();
        store
            .ensure_run(&SearchConfig::default().resolve().unwrap())
            .await
            .unwrap();
        let mut db = ReadOnlyDb::open(&path).await.unwrap();
        assert_eq!(db.time_limit(), Some(DEFAULT_TIME_LIMIT));
        stops_a_runaway_statement(&mut db).await;
        let many = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100000) SELECT x FROM c";
        let three = Budget {
            rows: 3,
            bytes: usize::MAX,
        };
        let (rows, cut) = db.query_within(many, &[], three).await.unwrap();
        assert_eq!(rows.columns, vec!["x"]);
        assert_eq!(rows.rows.len(), 3);
        assert_eq!(rows.rows[2][0], serde_json::json!(3));
        assert_eq!(cut, Cut::Rows(99_997));
        cuts_huge_answers(&mut db).await;
    }

    /// Many rows of a few KiB: what a cross join of big values gives.
    const MANY_WIDE_ROWS: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100000) SELECT x, repeat_text FROM c, (SELECT '0123456789abcdef' AS repeat_text) AS t";

    /// A value over [`VALUE_LIMIT`] fails before it is built (SQLite) or
    /// stays on the server (PostgreSQL: its row is over the budget); an
    /// answer over the byte budget stops at the row that passes it; the
    /// connection answers at once after both.
    async fn cuts_huge_answers(db: &mut ReadOnlyDb) {
        db.set_time_limit(Some(Duration::from_secs(30)))
            .await
            .unwrap();
        let budget = Budget {
            rows: usize::MAX,
            bytes: 1 << 20,
        };
        let huge = match db.backend() {
            Backend::Sqlite => "SELECT length(randomblob(1000000000)) AS n",
            Backend::Postgres => "SELECT repeat('x', 100000000) AS x",
        };
        let start = Instant::now();
        match db.query_within(huge, &[], budget).await {
            Err(e @ QueryError::TooBig) => {
                let text = e.to_string();
                assert!(text.contains("16 MiB") && !text.contains('\n'), "{text}");
            }
            Ok((rows, cut)) => {
                assert_eq!(cut, Cut::Bytes(1 << 20));
                assert!(rows.rows.is_empty(), "{:?}", rows.columns);
            }
            Err(e) => panic!("{e}"),
        }
        assert!(start.elapsed() < Duration::from_secs(20));
        if db.backend() == Backend::Sqlite {
            let columns = vec!["randomblob(15000000)"; 40].join(", ");
            let wide = format!("SELECT {columns}");
            match db.query_within(&wide, &[], budget).await {
                Err(e @ QueryError::TooMuchMemory) => {
                    let text = e.to_string();
                    assert!(text.contains("512 MiB") && !text.contains('\n'), "{text}");
                }
                other => panic!("a 600 MB row was not refused: {other:?}"),
            }
        }
        let sql = MANY_WIDE_ROWS.replace(
            "'0123456789abcdef'",
            &format!("'{}'", "0123456789abcdef".repeat(64)),
        );
        let (rows, cut) = db.query_within(&sql, &[], budget).await.unwrap();
        assert_eq!(cut, Cut::Bytes(1 << 20));
        let kept = rows.rows.len();
        assert!(kept > 500 && kept < 1100, "{kept} rows of 1 KiB in 1 MiB");
        let rows = db
            .query("SELECT count(*) AS n FROM runs", &[])
            .await
            .unwrap();
        assert_eq!(rows.rows[0][0], serde_json::json!(1));
    }

    #[tokio::test]
    async fn postgres_stops_a_runaway_statement() {
        let Some(db) = crate::store::test_postgres::TestDatabase::create().await else {
            return;
        };
        let location = DbLocation::Postgres(db.url().to_owned());
        let store = Store::connect(&location).await.unwrap();
        store
            .ensure_run(&SearchConfig::default().resolve().unwrap())
            .await
            .unwrap();
        let mut ro = ReadOnlyDb::open(&location).await.unwrap();
        stops_a_runaway_statement(&mut ro).await;
        cuts_huge_answers(&mut ro).await;
        drop(ro);
        store.close().await;
        db.drop_now().await;
    }

    /// `ddsas sql` on PostgreSQL: every column type reads back (`sum` is
    /// `numeric` there), column order is kept, and a statement that would
    /// write gets through the text check only to meet the read-only
    /// session.
    #[tokio::test]
    async fn postgres_reads_any_column_type_and_refuses_writes() {
        let Some(db) = crate::store::test_postgres::TestDatabase::create().await else {
            return;
        };
        let location = DbLocation::Postgres(db.url().to_owned());
        let store = Store::connect(&location).await.unwrap();
        store
            .ensure_run(&SearchConfig::default().resolve().unwrap())
            .await
            .unwrap();
        let mut ro = ReadOnlyDb::open(&location).await.unwrap();
        let rows = ro
            .query(
                "SELECT id, L, sum(epochs) AS total, avg(seed) AS mean, now() AS at, 0.5 AS half
                 FROM run_summary WHERE seed = $1 GROUP BY id, L",
                &[0.into()],
            )
            .await
            .unwrap();
        assert_eq!(rows.columns, vec!["id", "L", "total", "mean", "at", "half"]);
        assert_eq!(rows.rows[0][1], serde_json::json!(28));
        assert_eq!(rows.rows[0][2].as_f64(), Some(50.0));
        assert!(rows.rows[0][4].is_string(), "{rows:?}");
        let empty = ro
            .query("SELECT id, status FROM runs WHERE false", &[])
            .await
            .unwrap();
        assert_eq!(empty.columns, vec!["id", "status"]);
        assert!(empty.rows.is_empty());
        let err = ro
            .query("SELECT nextval('runs_id_seq')", &[])
            .await
            .unwrap_err();
        assert!(matches!(err, QueryError::ReadOnly { .. }), "{err}");
        assert!(ro
            .columns_of("run_summary")
            .await
            .unwrap()
            .contains(&"L".to_owned()));
        drop(ro);
        store.close().await;
        db.drop_now().await;
    }
}
