//! The run history on a PostgreSQL server that accepts only TLS
//! connections (`scripts/postgres.sh start --tls`): a sweep whose
//! orchestrator and workers all connect with `sslmode=verify-full`, the
//! certificate authorities libpq would trust without `sslrootcert` (the
//! platform's, `sslrootcert=system`, `~/.postgresql/root.crt`), and the
//! one-line refusal of a plain connection to it.

use std::process::{Command, Stdio};

use super::sweep::{heavy, wait_child, Env};
use super::util::{text, BIN};

/// Two tiny searches: a few seconds each on one thread.
const TINY: &str =
    "{dataset: digits, epochs: 2, layers: 1, init_channels: 2, batch_size: 16, steps_per_epoch: 2}";

#[test]
fn a_sweep_runs_on_postgres_over_tls_and_a_plain_connection_is_told_to_encrypt() {
    let Some(server) = ddsas::store::test_postgres::tls_server_or_skip() else {
        return;
    };
    let env = Env::postgres_on(&server);
    let _heavy = heavy();
    let file = env.sweep("tls", &format!("base: {TINY}\ngrid:\n  L: [15, 28]\n"));
    let mut child = env.start_sweep(&file, 2, "tls", &[]);
    let status = wait_child(&mut child, "the sweep over TLS");
    assert!(status.success(), "{}", env.output_of("tls"));
    env.assert_all_done_once(2);

    trusted_without_sslrootcert(&env.db_arg());

    let plain = with_pairs(&env.db_arg(), &["sslmode"], &[("sslmode", "disable")]);
    let out = Command::new(BIN)
        .args(["runs", "list", "--db", plain.as_str()])
        .env_remove("DDSAS_DB")
        .env_remove("PGSSLMODE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        said.contains("accepts only encrypted connections"),
        "{said}"
    );
    assert!(said.contains("sslmode=require"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "{said}");
    let password = plain.password().unwrap_or("no password");
    assert!(!said.contains(password), "the password leaked: {said}");
}

/// `url` without the query keys in `drop`, with `add` appended.
fn with_pairs(url: &str, drop: &[&str], add: &[(&str, &str)]) -> url::Url {
    let mut url = url::Url::parse(url).unwrap();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !drop.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .extend_pairs(add.iter().copied());
    url
}

/// `runs list` on `db` (a `verify-full` URL naming the test CA in
/// `sslrootcert`) finds both runs when the CA is trusted the other ways
/// libpq allows: as one of the platform's CAs (`SSL_CERT_FILE`, which
/// rustls-native-certs reads as OpenSSL does), through
/// `sslrootcert=system`, and as `~/.postgresql/root.crt`.
fn trusted_without_sslrootcert(db: &str) {
    let url = url::Url::parse(db).unwrap();
    let ca = url
        .query_pairs()
        .find(|(k, _)| k == "sslrootcert")
        .map(|(_, v)| v.into_owned())
        .expect("the TLS server's URL names its CA");
    let home = tempfile::tempdir().unwrap();
    let no_root = with_pairs(db, &["sslrootcert"], &[]);
    let system = with_pairs(
        db,
        &["sslrootcert", "sslmode"],
        &[("sslrootcert", "system")],
    );
    let runs_list = |db: &url::Url, platform_ca: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["runs", "list", "--db", db.as_str()])
            .env("HOME", home.path())
            .env_remove("DDSAS_DB")
            .env_remove("PGSSLROOTCERT")
            .env_remove("PGSSLMODE")
            .env_remove("SSL_CERT_FILE")
            .stdin(Stdio::null());
        if let Some(file) = platform_ca {
            cmd.env("SSL_CERT_FILE", file);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{db}: {}", text(&out));
        assert!(text(&out).contains("(2 rows)"), "{}", text(&out));
    };
    runs_list(&no_root, Some(&ca));
    runs_list(&system, Some(&ca));
    let dot = home.path().join(".postgresql");
    std::fs::create_dir(&dot).unwrap();
    std::fs::copy(&ca, dot.join("root.crt")).unwrap();
    runs_list(&no_root, None);
}
