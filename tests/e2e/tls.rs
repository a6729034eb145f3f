//! The run history on a PostgreSQL server that accepts only TLS
//! connections (`scripts/postgres.sh start --tls`): a sweep whose
//! orchestrator and workers all connect with `sslmode=verify-full`, and
//! the one-line refusal of a plain connection to it.

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

    let mut plain = url::Url::parse(&env.db_arg()).unwrap();
    let kept: Vec<(String, String)> = plain
        .query_pairs()
        .filter(|(k, _)| k != "sslmode")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    plain
        .query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("sslmode", "disable");
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
