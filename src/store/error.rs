//! What can go wrong with the run history; every message says what failed.

/// An error of the run history.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened or created as a SQLite database.
    #[error("cannot open database {path}: {source}{hint}")]
    Open {
        /// The database (file or URL without password).
        path: String,
        /// sqlx's error.
        source: sqlx::Error,
        /// What is wrong with the path, when that can be told (`; ...`).
        hint: String,
    },
    /// A PostgreSQL server that could not be reached over TLS as the
    /// settings ask (a certificate that does not verify, a server that
    /// wants encryption or refuses it, an unreadable certificate file).
    #[error("cannot open database {path}: {problem}")]
    Tls {
        /// The database (URL without password).
        path: String,
        /// What did not match and which setting to change, in one line.
        problem: String,
    },
    /// The file is not SQLite, or a SQLite database of another program.
    #[error("database {path} is not a ddsas database ({reason})")]
    NotDdsas {
        /// The database (file or URL without password).
        path: String,
        /// What gave it away.
        reason: String,
    },
    /// The database was written by a newer ddsas with migrations this build
    /// does not know; running old code on it could corrupt it.
    #[error("database {path} was written by a newer ddsas (it has schema migration {version}, which this build does not know); use a newer ddsas")]
    TooNew {
        /// The database (file or URL without password).
        path: String,
        /// The unknown migration.
        version: i64,
    },
    /// Applying the schema migrations failed.
    #[error("cannot migrate database {path} to the current schema: {source}")]
    Migrate {
        /// The database (file or URL without password).
        path: String,
        /// sqlx's error.
        source: sqlx::migrate::MigrateError,
    },
    /// A run id that is not in `runs`.
    #[error("run {0} not found")]
    RunNotFound(i64),
    /// A record that cannot be stored as given (e.g. a cell index outside
    /// the search space).
    #[error("cannot store {what}: {message}")]
    Invalid {
        /// What was being stored ("epoch 3 of run 7").
        what: String,
        /// What is wrong.
        message: String,
    },
    /// A query failed.
    #[error("{what} failed: {source}")]
    Query {
        /// What the query was doing ("record epoch 3 of run 7").
        what: String,
        /// sqlx's error.
        source: sqlx::Error,
    },
}

impl StoreError {
    /// Whether another connection held a lock SQLite would not wait for
    /// (SQLITE_BUSY or SQLITE_LOCKED, extended codes included): trying again
    /// shortly is the cure.
    pub(crate) fn is_busy(&self) -> bool {
        match self {
            StoreError::Open { source, .. } | StoreError::Query { source, .. } => {
                sqlx_is_busy(source)
            }
            StoreError::Migrate {
                source:
                    sqlx::migrate::MigrateError::Execute(source)
                    | sqlx::migrate::MigrateError::ExecuteMigration(source, _),
                ..
            } => sqlx_is_busy(source),
            _ => false,
        }
    }
}

impl StoreError {
    /// sqlx's error behind an open, a query or a migration step.
    fn sqlx_source(&self) -> Option<&sqlx::Error> {
        match self {
            StoreError::Open { source, .. } | StoreError::Query { source, .. } => Some(source),
            StoreError::Migrate {
                source:
                    sqlx::migrate::MigrateError::Execute(source)
                    | sqlx::migrate::MigrateError::ExecuteMigration(source, _),
                ..
            } => Some(source),
            _ => None,
        }
    }

    /// Whether SQLite found its disk full (SQLITE_FULL) or out of quota:
    /// the write can succeed once space is freed.
    pub fn is_disk_full(&self) -> bool {
        let Some(source) = self.sqlx_source() else {
            return false;
        };
        match source {
            sqlx::Error::Database(db) => db
                .code()
                .and_then(|code| code.parse::<i64>().ok())
                .is_some_and(|code| code & 0xff == SQLITE_FULL),
            sqlx::Error::Io(e) => matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)),
            _ => false,
        }
    }
}

impl StoreError {
    /// Whether the PostgreSQL server ended the session or refused it while
    /// shutting down or starting up (SQLSTATE 57P01-57P03): a restart or an
    /// administrator's `pg_terminate_backend`, worth waiting out. Unlike
    /// [`StoreError::is_connection_lost`], a refused or unroutable
    /// connection (a wrong host or port) is not this.
    pub fn is_server_restarting(&self) -> bool {
        let Some(source) = self.sqlx_source() else {
            return false;
        };
        matches!(source, sqlx::Error::Database(db)
            if db.code().is_some_and(|c| c.starts_with("57P")))
    }

    /// Whether the connection to the database was lost (a PostgreSQL
    /// restart, a dropped network): the same write succeeds on a fresh
    /// connection once the server is back. A full disk is not this.
    pub fn is_connection_lost(&self) -> bool {
        if self.is_disk_full() {
            return false;
        }
        let source = match self {
            StoreError::Open { source, .. } | StoreError::Query { source, .. } => source,
            _ => return false,
        };
        match source {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
            // 08: connection exception; 57P01-03: the server shut down or
            // is starting.
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
            _ => false,
        }
    }
}

/// SQLite's "database or disk is full" result code.
const SQLITE_FULL: i64 = 13;

/// SQLITE_BUSY (5) and SQLITE_LOCKED (6) in the low byte of the (possibly
/// extended) result code sqlx reports.
fn sqlx_is_busy(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else {
        return false;
    };
    db.code()
        .and_then(|code| code.parse::<i64>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

/// Attaches "what was being done" to a sqlx error.
pub(crate) trait Context<T> {
    /// Maps the error to `StoreError::Query` with the description `what`.
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Query {
            what: what(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(source: sqlx::Error) -> StoreError {
        StoreError::Query {
            what: "recording epoch 3 of run 1".into(),
            source,
        }
    }

    #[test]
    fn a_lost_connection_is_told_from_a_full_disk_and_other_errors() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(query(sqlx::Error::Io(reset)).is_connection_lost());
        assert!(query(sqlx::Error::PoolTimedOut).is_connection_lost());
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(!query(sqlx::Error::Io(full)).is_connection_lost());
        assert!(!query(sqlx::Error::RowNotFound).is_connection_lost());
        assert!(!StoreError::RunNotFound(1).is_connection_lost());
    }
}
