//! What a test does when a service it needs cannot be had here: the
//! throw-away PostgreSQL of `scripts/postgres.sh`, the one-node Slurm
//! cluster of `scripts/slurm.sh` (root only) or a headless chromium
//! (`scripts/browser.sh`, which installs it as root only). A researcher
//! without root must still be able to run the test command, so such a
//! test is skipped, not failed: it notes itself in the file named by
//! [`SKIPPED_ENV`] (the test command prints one summary line per service
//! from it) and returns. Where every service must be there (CI, which has
//! root), [`REQUIRE_ENV`] turns a skip into a failure.
//!
//! Not for users; public only so that `tests/` can use it.

use std::io::Write;
use std::sync::Mutex;

/// Set to `1`, a test whose service cannot be had fails instead of being
/// skipped (`.ci/run` sets it).
pub const REQUIRE_ENV: &str = "DDSAS_REQUIRE_SERVICES";

/// A file each skipped test appends one line to: service, test, why and
/// how to run it, tab-separated (`scripts/test.sh` sets it and sums it up
/// after the tests).
pub const SKIPPED_ENV: &str = "DDSAS_TEST_SKIPPED";

/// A service some tests need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// A PostgreSQL server the tests may create databases on.
    Postgres,
    /// A PostgreSQL server that accepts only TLS connections, likewise.
    PostgresTls,
    /// A Slurm cluster to submit to.
    Slurm,
    /// A headless chromium for the pages' scripts.
    Browser,
}

impl Service {
    /// Its name in the skip lines.
    pub fn name(self) -> &'static str {
        match self {
            Service::Postgres => "PostgreSQL",
            Service::PostgresTls => "PostgreSQL over TLS",
            Service::Slurm => "the one-node Slurm cluster",
            Service::Browser => "a headless chromium",
        }
    }

    /// What runs the tests that need it.
    pub fn how_to_run(self) -> &'static str {
        match self {
            Service::Postgres => {
                "`sudo apt-get install -y postgresql` where it is not installed (scripts/postgres.sh \
                 then runs a server of your own), or set DDSAS_TEST_POSTGRES to a server you may \
                 create databases on; then `./scripts/test.sh`"
            }
            Service::PostgresTls => {
                "`sudo apt-get install -y postgresql openssl` where they are not installed \
                 (scripts/postgres.sh start --tls then runs a TLS-only server of your own), or set \
                 DDSAS_TEST_POSTGRES_TLS to such a server's URL with sslmode=verify-full and \
                 sslrootcert; then `./scripts/test.sh`"
            }
            Service::Slurm => {
                "as root: `./scripts/test.sh slurm::` (its daemons and munge need root), or set \
                 DDSAS_TEST_SLURM_CONF to a test cluster's slurm.conf"
            }
            Service::Browser => {
                "`sudo apt-get install -y chromium`, then `./scripts/test.sh serve::`"
            }
        }
    }
}

/// What a test that needs `service` does with `started`: the service's
/// address, or why it could not be started. Goes on with the address; or
/// notes the test as skipped and returns None; or, where [`REQUIRE_ENV`]
/// is `1`, fails the test.
pub fn or_skip(service: Service, started: &Result<String, String>) -> Option<&str> {
    let why = match started {
        Ok(address) => return Some(address),
        Err(why) => why,
    };
    assert!(
        !required(),
        "{} is required here ({REQUIRE_ENV}=1) but cannot be had: {why}",
        service.name()
    );
    note_skipped(service, why);
    None
}

/// The last line a failed start script wrote to stderr, without its
/// `error: `: why the service cannot be had, in one line.
pub fn reason(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().rev().find(|l| !l.trim().is_empty());
    let line = line
        .unwrap_or("its start script failed without a word")
        .trim();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// Appends the skip to [`SKIPPED_ENV`]'s file and, once per service and
/// process, says it on stderr past the test harness's capture.
fn note_skipped(service: Service, why: &str) {
    static SAID: Mutex<Vec<Service>> = Mutex::new(Vec::new());
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let flat = |s: &str| s.replace(['\t', '\n'], " ");
    if let Ok(path) = std::env::var(SKIPPED_ENV) {
        let line = format!(
            "{}\t{}\t{}\t{}\n",
            service.name(),
            flat(&test),
            flat(why),
            service.how_to_run()
        );
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path);
        if let Ok(mut file) = file {
            let _ = file.write_all(line.as_bytes());
        }
    }
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.contains(&service) {
        said.push(service);
        crate::errln!(
            "skipping the tests that need {} ({why}); to run them: {}",
            service.name(),
            service.how_to_run()
        );
    }
}
