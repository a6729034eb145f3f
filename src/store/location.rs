//! Where the run history lives, as the user wrote it in `--db`: a SQLite
//! file on this machine, or a PostgreSQL server shared by many (a Slurm
//! cluster's nodes; SQLite's locks do not work across network file systems).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The environment variable every `--db` falls back to. Processes that
/// ddsas starts itself (sweep workers, Slurm tasks) get the database this
/// way rather than on their command line, which every user of the machine
/// can read (`ps`), a password in a PostgreSQL URL included.
pub const DB_VARIABLE: &str = "DDSAS_DB";

/// A run-history database: a SQLite file or a PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A SQLite file (created on first use).
    File(PathBuf),
    /// A PostgreSQL server: `postgres://user@host:port/database`, with
    /// libpq's TLS settings in its query (`?sslmode=verify-full&...`).
    Postgres(String),
}

/// The URL schemes that mean PostgreSQL.
const POSTGRES_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

impl DbLocation {
    /// Whether this is a PostgreSQL server.
    pub fn is_postgres(&self) -> bool {
        matches!(self, DbLocation::Postgres(_))
    }

    /// The SQLite file, if this is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            DbLocation::File(path) => Some(path),
            DbLocation::Postgres(_) => None,
        }
    }

    /// Whether there is a history to read: the file exists, or (PostgreSQL)
    /// whether it does is found out on connecting.
    pub fn exists(&self) -> bool {
        match self {
            DbLocation::File(path) => path.exists(),
            DbLocation::Postgres(_) => true,
        }
    }

    /// The same location as worker processes started elsewhere (another
    /// folder, another node) must get it: a file path made absolute; for
    /// PostgreSQL, the TLS settings of this environment (`PGSSLMODE`,
    /// `PGSSLROOTCERT`, ...) written into the URL and its certificate
    /// files made absolute.
    pub fn absolute(&self) -> std::io::Result<DbLocation> {
        match self {
            DbLocation::File(path) => Ok(DbLocation::File(std::path::absolute(path)?)),
            DbLocation::Postgres(url) => Ok(DbLocation::Postgres(super::tls::for_workers(url))),
        }
    }

    /// The folder that holds what belongs with the history but is not in
    /// it (checkpoints, worker logs): beside a SQLite file; for PostgreSQL
    /// the working folder, which on a cluster is the shared one the jobs
    /// were submitted from.
    pub fn home(&self) -> PathBuf {
        match self {
            DbLocation::File(path) => path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_owned(),
            DbLocation::Postgres(_) => {
                std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
            }
        }
    }

    /// The text to hand a child process as its database, in
    /// [`DB_VARIABLE`] (with the password, unlike [`fmt::Display`]).
    pub fn to_arg(&self) -> String {
        match self {
            DbLocation::File(path) => path.to_string_lossy().into_owned(),
            DbLocation::Postgres(url) => url.clone(),
        }
    }

    /// The name of this database in messages: the file, or the URL without
    /// its password.
    pub fn display(&self) -> &Self {
        self
    }
}

impl FromStr for DbLocation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err(
                "the database is empty: give a file such as results.db or a postgres:// URL".into(),
            );
        }
        if POSTGRES_SCHEMES.iter().any(|s| text.starts_with(s)) {
            let url = url::Url::parse(text).map_err(|e| {
                format!("{text} is not a PostgreSQL URL ({e}); the form is postgres://user@host:port/database")
            })?;
            if url.host_str().is_none() || url.path().trim_matches('/').is_empty() {
                return Err(format!(
                    "{} names no host or no database; the form is postgres://user@host:port/database",
                    without_password(text)
                ));
            }
            super::tls::check_url(&url).map_err(|e| format!("{}: {e}", without_password(text)))?;
            return Ok(DbLocation::Postgres(text.to_owned()));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(format!(
                "{scheme}:// databases are not supported: give a SQLite file such as results.db or a postgres:// URL"
            ));
        }
        Ok(DbLocation::File(PathBuf::from(text)))
    }
}

impl fmt::Display for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbLocation::File(path) => write!(f, "{}", path.display()),
            DbLocation::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

impl From<&Path> for DbLocation {
    fn from(path: &Path) -> Self {
        DbLocation::File(path.to_owned())
    }
}

impl From<&PathBuf> for DbLocation {
    fn from(path: &PathBuf) -> Self {
        DbLocation::File(path.clone())
    }
}

impl From<&DbLocation> for DbLocation {
    fn from(location: &DbLocation) -> Self {
        location.clone()
    }
}

/// A URL with its password replaced by `***`, for messages and logs.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_urls_are_told_apart() {
        assert_eq!(
            "results.db".parse::<DbLocation>().unwrap(),
            DbLocation::File("results.db".into())
        );
        let pg: DbLocation = "postgres://me:secret@db.lab:5432/nas".parse().unwrap();
        assert!(pg.is_postgres());
        assert_eq!(pg.to_string(), "postgres://me:***@db.lab:5432/nas");
        assert_eq!(pg.to_arg(), "postgres://me:secret@db.lab:5432/nas");
        assert!("postgresql://u@h/d"
            .parse::<DbLocation>()
            .unwrap()
            .is_postgres());
    }

    #[test]
    fn bad_urls_say_what_form_is_wanted() {
        let no_db = "postgres://u@host".parse::<DbLocation>().unwrap_err();
        assert!(no_db.contains("no host or no database"), "{no_db}");
        let mysql = "mysql://u@h/d".parse::<DbLocation>().unwrap_err();
        assert!(
            mysql.contains("mysql:// databases are not supported"),
            "{mysql}"
        );
        assert!("  ".parse::<DbLocation>().is_err());
    }

    #[test]
    fn home_is_beside_a_file() {
        let at = DbLocation::File("runs/x/results.db".into());
        assert_eq!(at.home(), PathBuf::from("runs/x"));
        assert_eq!(
            DbLocation::File("results.db".into()).home(),
            PathBuf::from(".")
        );
    }
}
