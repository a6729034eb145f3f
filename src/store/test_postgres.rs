//! Throw-away PostgreSQL databases for the tests (the store suite and the
//! end-to-end tests run against both backends): each test gets a database
//! of its own on the server `scripts/postgres.sh` runs, and drops it; a
//! test is skipped where no server can be started (see
//! [`crate::test_services`]). A few tests use a second server that accepts
//! only TLS connections (`scripts/postgres.sh start --tls`).
//! Not for users; public only so that `tests/` can use it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use sqlx::{AnyConnection, Connection, Executor};

use crate::test_services::{or_skip, reason, Service};

/// The environment variable naming the server to test against (any
/// database on it; new ones are created beside it). When unset, the tests
/// start the project's own throw-away server with `scripts/postgres.sh
/// start`, as the test command does, and are skipped when that fails.
pub const SERVER_ENV: &str = "DDSAS_TEST_POSTGRES";

/// The environment variable naming a server that accepts only TLS
/// connections, its URL with `sslmode=verify-full`, `sslrootcert` and a
/// password. When unset, the tests start `scripts/postgres.sh start --tls`,
/// whose certificate names 127.0.0.1 only (the host name tests rely on it).
pub const TLS_SERVER_ENV: &str = "DDSAS_TEST_POSTGRES_TLS";

/// One database created for one test.
#[derive(Debug)]
pub struct TestDatabase {
    server: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database with a name no other test uses; None
    /// when no server can be had and the test is to be skipped (see
    /// [`server_or_skip`]). Panics when the server refuses.
    pub async fn create() -> Option<TestDatabase> {
        let server = server_or_skip()?;
        Some(
            Self::create_on(&server)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    /// [`TestDatabase::create`] on the server at `server` (a test that
    /// runs a server of its own).
    pub async fn create_on(server: &str) -> Result<TestDatabase, String> {
        super::install_drivers();
        let server = server.to_owned();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "ddsas_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            super::unix_now() as u64 % 100_000
        );
        let mut admin = AnyConnection::connect(&server)
            .await
            .map_err(|e| format!("cannot reach the test PostgreSQL at {server}: {e}"))?;
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .map_err(|e| format!("cannot create test database {name}: {e}"))?;
        let _ = admin.close().await;
        let url = with_database(&server, &name)?;
        Ok(TestDatabase { server, name, url })
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops it (and ends whatever sessions still use it).
    pub async fn drop_now(mut self) {
        drop_database(&self.server, &std::mem::take(&mut self.name)).await;
    }
}

/// A test that panicked before [`TestDatabase::drop_now`] still drops its
/// database (on a thread of its own: this may run inside a runtime).
impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        let (server, name) = (self.server.clone(), std::mem::take(&mut self.name));
        let dropped = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_database(&server, &name));
            }
        });
        let _ = dropped.join();
    }
}

async fn drop_database(server: &str, name: &str) {
    if let Ok(mut admin) = AnyConnection::connect(server).await {
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let _ = admin.execute(sql.as_str()).await;
        let _ = admin.close().await;
    }
}

/// The server's URL: [`SERVER_ENV`], or the one `scripts/postgres.sh start`
/// starts (once per process) and prints; else why none could be started.
pub fn server_url() -> Result<String, String> {
    static STARTED: OnceLock<Result<String, String>> = OnceLock::new();
    STARTED.get_or_init(start_server).clone()
}

/// [`server_url`] for a test that needs it: None when no server can be
/// started here and the test is to be skipped, which this notes (see
/// [`crate::test_services::or_skip`]).
pub fn server_or_skip() -> Option<String> {
    or_skip(Service::Postgres, &server_url()).map(str::to_owned)
}

/// The TLS-only server's URL: [`TLS_SERVER_ENV`], or the one
/// `scripts/postgres.sh start --tls` starts (once per process) and prints;
/// else why none could be started.
pub fn tls_server_url() -> Result<String, String> {
    static STARTED: OnceLock<Result<String, String>> = OnceLock::new();
    STARTED
        .get_or_init(|| match std::env::var(TLS_SERVER_ENV) {
            Ok(url) => Ok(url),
            Err(_) => run_start_script(&["start", "--tls"]),
        })
        .clone()
}

/// [`tls_server_url`] for a test that needs it: None (the test noted as
/// skipped) when no such server can be started here.
pub fn tls_server_or_skip() -> Option<String> {
    or_skip(Service::PostgresTls, &tls_server_url()).map(str::to_owned)
}

fn start_server() -> Result<String, String> {
    if let Ok(url) = std::env::var(SERVER_ENV) {
        return Ok(url);
    }
    run_start_script(&["start"])
}

fn run_start_script(args: &[&str]) -> Result<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres.sh");
    let out = std::process::Command::new(script)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {script}: {e}"))?;
    if !out.status.success() {
        return Err(reason(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn with_database(server: &str, name: &str) -> Result<String, String> {
    let mut url = url::Url::parse(server).map_err(|e| format!("{server} is not a URL: {e}"))?;
    url.set_path(name);
    Ok(url.to_string())
}
