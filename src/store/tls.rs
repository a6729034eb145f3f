//! PostgreSQL over TLS: the libpq settings ddsas honours, checked before
//! connecting, carried to the workers, and their failures said in one line.
//!
//! sqlx itself reads `sslmode`, `sslrootcert`, `sslcert` and `sslkey` from
//! the URL and `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT` and `PGSSLKEY` from
//! the environment (the URL wins), and verifies the server's certificate
//! against the platform's root certificates plus `sslrootcert`. What it
//! does not do is done here: libpq's defaults (`sslrootcert=system`, the
//! files under `~/.postgresql/`) would be ignored, a mistyped mode or an
//! unreadable certificate file would surface as a network error (or be
//! ignored), a refused certificate as rustls's enum name, and a worker on
//! another node would lack the environment or the working folder its
//! settings depend on.

use std::path::Path;

/// One libpq TLS setting: its URL key (with the spellings sqlx also
/// accepts) and its environment variable.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setting {
    /// The libpq name, as written into URLs.
    pub key: &'static str,
    /// Every URL key sqlx reads for it.
    aliases: &'static [&'static str],
    /// The environment variable sqlx falls back to.
    pub env: &'static str,
    /// Whether its value names a file (or holds inline PEM).
    is_file: bool,
}

/// `sslmode`: disable, allow, prefer (the default), require, verify-ca,
/// verify-full.
pub(crate) const SSLMODE: Setting = Setting {
    key: "sslmode",
    aliases: &["sslmode", "ssl-mode"],
    env: "PGSSLMODE",
    is_file: false,
};

/// `sslrootcert`: the CA certificates that may sign the server's.
pub(crate) const SSLROOTCERT: Setting = Setting {
    key: "sslrootcert",
    aliases: &["sslrootcert", "ssl-root-cert", "ssl-ca"],
    env: "PGSSLROOTCERT",
    is_file: true,
};

/// `sslcert`: this client's certificate, for servers that ask for one.
pub(crate) const SSLCERT: Setting = Setting {
    key: "sslcert",
    aliases: &["sslcert", "ssl-cert"],
    env: "PGSSLCERT",
    is_file: true,
};

/// `sslkey`: the private key of `sslcert`.
pub(crate) const SSLKEY: Setting = Setting {
    key: "sslkey",
    aliases: &["sslkey", "ssl-key"],
    env: "PGSSLKEY",
    is_file: true,
};

/// Every TLS setting.
pub(crate) const SETTINGS: [Setting; 4] = [SSLMODE, SSLROOTCERT, SSLCERT, SSLKEY];

/// The `sslmode` values, in order of strictness.
const MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// The setting's value in `url`'s query (the last one, as sqlx applies
/// them in order).
fn in_url(url: &url::Url, setting: Setting) -> Option<String> {
    url.query_pairs()
        .filter(|(key, _)| setting.aliases.contains(&key.as_ref()))
        .last()
        .map(|(_, value)| value.into_owned())
}

/// The setting's value in the environment, if set and not empty.
fn in_env(setting: Setting) -> Option<String> {
    std::env::var(setting.env)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// The value sqlx will use: the URL's, else the environment's.
fn effective(url: &url::Url, setting: Setting) -> Option<String> {
    in_url(url, setting).or_else(|| in_env(setting))
}

/// Whether a certificate setting holds PEM text rather than a file name
/// (sqlx accepts both; a key in PEM is a secret that must not be copied
/// into URLs, which messages show).
fn is_inline_pem(value: &str) -> bool {
    value.trim_start().starts_with("-----BEGIN")
}

/// Refuses an `sslmode` in the URL that is none of libpq's, when the URL
/// is read (`--db`), rather than on connecting.
pub(crate) fn check_url(url: &url::Url) -> Result<(), String> {
    match in_url(url, SSLMODE) {
        Some(mode) => check_mode(&mode, "sslmode"),
        None => Ok(()),
    }
}

fn check_mode(mode: &str, name: &str) -> Result<(), String> {
    if MODES.contains(&mode.to_ascii_lowercase().as_str()) {
        Ok(())
    } else {
        Err(format!(
            "{name}={mode} is not a TLS mode: use one of {}",
            MODES.join(", ")
        ))
    }
}

/// `url` as ddsas connects with it: libpq's defaults that sqlx lacks made
/// explicit (see [`with_libpq_defaults`]), then checked (see
/// [`check_before_connect`]). Err is a one-line message.
pub(crate) fn prepare(url: &str) -> Result<String, String> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let url = with_libpq_defaults(url, home.as_deref(), platform_bundle)?;
    check_before_connect(&url)?;
    Ok(url)
}

/// `sslrootcert=system` (libpq 16): trust the platform's CAs, and verify
/// the host name unless told otherwise.
const SYSTEM_ROOTS: &str = "system";

/// Where platforms keep their CA bundle, in the order OpenSSL-based
/// clients look (after `SSL_CERT_FILE`).
const PLATFORM_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// This machine's CA bundle: `SSL_CERT_FILE`, else the first of
/// [`PLATFORM_BUNDLES`] that exists.
fn platform_bundle() -> Option<std::path::PathBuf> {
    let named = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    named
        .into_iter()
        .chain(PLATFORM_BUNDLES.iter().map(std::path::PathBuf::from))
        .find(|path| path.is_file())
}

/// `url` with what libpq would use by default, and sqlx does not read,
/// written into it: `sslrootcert=system` becomes this machine's CA bundle
/// (with `sslmode=verify-full` when no mode is set, and a weaker mode
/// refused, as libpq does); without `sslrootcert`, `~/.postgresql/root.crt`
/// when it exists; without a client certificate,
/// `~/.postgresql/postgresql.crt` and `.key` when both exist. A user who
/// set these up for `psql` then needs nothing more for ddsas. sqlx already
/// trusts the platform's root certificates besides `sslrootcert`.
fn with_libpq_defaults(
    url: &str,
    home: Option<&Path>,
    bundle: impl FnOnce() -> Option<std::path::PathBuf>,
) -> Result<String, String> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Ok(url.to_owned());
    };
    let mut changes: Vec<(Setting, String)> = Vec::new();
    match effective(&parsed, SSLROOTCERT) {
        Some(root) if root == SYSTEM_ROOTS => {
            let from = source_of(&parsed, SSLROOTCERT);
            match effective(&parsed, SSLMODE).map(|m| m.to_ascii_lowercase()) {
                None => changes.push((SSLMODE, "verify-full".into())),
                Some(mode) if mode == "verify-full" => {}
                Some(mode) => {
                    return Err(format!(
                        "{from}=system verifies the server's host name, so sslmode={mode} is refused with it (as libpq does); drop sslmode or set it to verify-full"
                    ))
                }
            }
            let Some(file) = bundle() else {
                return Err(format!(
                    "{from}=system, but this machine has no CA bundle (SSL_CERT_FILE, {}); install the ca-certificates package, or point {from} at the CA certificate file",
                    PLATFORM_BUNDLES.join(", ")
                ));
            };
            changes.push((SSLROOTCERT, file.to_string_lossy().into_owned()));
        }
        Some(_) => {}
        None => {
            if let Some(root) = home.map(|h| h.join(".postgresql/root.crt")) {
                if root.is_file() {
                    changes.push((SSLROOTCERT, root.to_string_lossy().into_owned()));
                }
            }
        }
    }
    if effective(&parsed, SSLCERT).is_none() && effective(&parsed, SSLKEY).is_none() {
        if let Some(dir) = home.map(|h| h.join(".postgresql")) {
            let (cert, key) = (dir.join("postgresql.crt"), dir.join("postgresql.key"));
            if cert.is_file() && key.is_file() {
                changes.push((SSLCERT, cert.to_string_lossy().into_owned()));
                changes.push((SSLKEY, key.to_string_lossy().into_owned()));
            }
        }
    }
    Ok(with_settings(parsed, &changes))
}

/// What must hold before connecting with `url`: `PGSSLMODE` is a mode
/// (sqlx would silently fall back to `prefer`), every certificate file
/// named can be read (sqlx would report a missing one as a network error),
/// and `sslcert` comes with `sslkey`.
fn check_before_connect(url: &str) -> Result<(), String> {
    let Ok(url) = url::Url::parse(url) else {
        return Ok(());
    };
    if in_url(&url, SSLMODE).is_none() {
        if let Some(mode) = in_env(SSLMODE) {
            check_mode(&mode, SSLMODE.env)?;
        }
    }
    for setting in SETTINGS.iter().filter(|s| s.is_file) {
        let Some(value) = effective(&url, *setting) else {
            continue;
        };
        if is_inline_pem(&value) {
            continue;
        }
        if let Err(e) = std::fs::File::open(&value) {
            let from = source_of(&url, *setting);
            return Err(format!(
                "{from} {value} cannot be read ({e}); point {from} at the certificate file"
            ));
        }
    }
    match (effective(&url, SSLCERT), effective(&url, SSLKEY)) {
        (Some(_), None) => Err("sslcert is set but sslkey is not: a client certificate needs its key (sslkey or PGSSLKEY)".into()),
        (None, Some(_)) => Err("sslkey is set but sslcert is not: a client key needs its certificate (sslcert or PGSSLCERT)".into()),
        _ => Ok(()),
    }
}

/// Where `setting`'s value came from, in messages: its URL key or its
/// environment variable.
fn source_of(url: &url::Url, setting: Setting) -> &'static str {
    if in_url(url, setting).is_some() {
        setting.key
    } else {
        setting.env
    }
}

/// `url` as a worker started elsewhere must get it: the TLS settings of
/// this environment that the URL lacks are added to it (a cluster may not
/// pass the submitting shell's environment on to its jobs), and file names
/// made absolute (a worker may start in another folder). Inline PEM stays
/// out, since the URL is shown in messages; it reaches workers only through
/// the environment they inherit. Unchanged when there is nothing to add.
pub(crate) fn for_workers(url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    let mut changes: Vec<(Setting, String)> = Vec::new();
    for setting in SETTINGS {
        let from_url = in_url(&parsed, setting);
        let Some(value) = from_url.clone().or_else(|| in_env(setting)) else {
            continue;
        };
        if setting.is_file && is_inline_pem(&value) {
            continue;
        }
        let wanted = if setting.is_file && value != SYSTEM_ROOTS {
            absolute(&value)
        } else {
            value
        };
        if from_url.as_deref() != Some(wanted.as_str()) {
            changes.push((setting, wanted));
        }
    }
    if changes.is_empty() {
        return url.to_owned();
    }
    with_settings(parsed, &changes)
}

/// `url` with each setting of `changes` in place of any spelling of it in
/// the query; the rest of the query kept in order. Unchanged when there is
/// nothing to set.
fn with_settings(mut url: url::Url, changes: &[(Setting, String)]) -> String {
    if changes.is_empty() {
        return url.to_string();
    }
    let kept = url.query_pairs().filter(|(key, _)| {
        !changes
            .iter()
            .any(|(setting, _)| setting.aliases.contains(&key.as_ref()))
    });
    let added = changes
        .iter()
        .map(|(setting, value)| (setting.key.into(), value.as_str().into()));
    let query: Vec<String> = kept
        .chain(added)
        .map(|(key, value)| format!("{}={}", escape(&key), escape(&value)))
        .collect();
    url.set_query(Some(&query.join("&")));
    url.to_string()
}

/// A query key or value escaped for a URL, file names left readable
/// (`/` stays as it is, unlike form encoding): what would end or change
/// the pair (`&`, `=`, `#`, `+`, `%`, spaces, non-ASCII) is percent-encoded.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/:@!$'()*,;".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn absolute(file: &str) -> String {
    std::path::absolute(Path::new(file))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| file.to_owned())
}

/// The TLS failure behind `source`, in one line that says what did not
/// match and which setting to change; None when it is no TLS failure.
/// `url` (the database's, when known) names the `sslrootcert` in play.
pub(crate) fn explain(source: &sqlx::Error, url: Option<&str>) -> Option<String> {
    if let Some(refused) = plain_refused(source) {
        return Some(refused);
    }
    if let Some(tls) = rustls_error(source) {
        return Some(explain_rustls(tls, url));
    }
    match source {
        sqlx::Error::Tls(e) if e.to_string().contains("does not support TLS") => Some(
            "the server does not accept TLS connections; set sslmode=prefer (or disable) to connect without encryption, or turn ssl on in its postgresql.conf".into(),
        ),
        sqlx::Error::Tls(e) => Some(format!(
            "TLS could not be set up ({e}); check sslrootcert, sslcert and sslkey"
        )),
        _ => None,
    }
}

/// A server that accepts only encrypted connections refusing a plain one
/// (SQLSTATE 28000, "no pg_hba.conf entry ... no encryption").
fn plain_refused(source: &sqlx::Error) -> Option<String> {
    let sqlx::Error::Database(db) = source else {
        return None;
    };
    let message = db.message();
    let unencrypted = message.contains("no encryption") || message.contains("SSL off");
    (db.code().as_deref() == Some("28000") && unencrypted).then(|| {
        "the server accepts only encrypted connections; set sslmode=require (or verify-full \
         with sslrootcert) in the URL or in PGSSLMODE"
            .to_owned()
    })
}

/// rustls's error under sqlx's: handshake failures come wrapped in an I/O
/// error, configuration ones as sqlx's TLS error.
fn rustls_error(source: &sqlx::Error) -> Option<&rustls::Error> {
    match source {
        sqlx::Error::Io(e) => e.get_ref()?.downcast_ref::<rustls::Error>(),
        sqlx::Error::Tls(e) => e.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

fn explain_rustls(error: &rustls::Error, url: Option<&str>) -> String {
    use rustls::CertificateError as C;
    let parsed = url.and_then(|u| url::Url::parse(u).ok());
    let root = match parsed.as_ref().and_then(|u| effective(u, SSLROOTCERT)) {
        Some(file) if !is_inline_pem(&file) => format!("sslrootcert is {file}"),
        Some(_) => "sslrootcert is inline PEM".into(),
        None if parsed.is_some() => {
            "sslrootcert is not set, so only the platform's CAs count".into()
        }
        None => "see sslrootcert".into(),
    };
    let host = parsed
        .as_ref()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "the URL's host".into());
    let rustls::Error::InvalidCertificate(cert) = error else {
        return match error {
            rustls::Error::AlertReceived(alert) => format!(
                "the server ended the TLS handshake ({alert:?}): if it asks for a client certificate, set sslcert and sslkey to one it trusts"
            ),
            other => format!("the TLS handshake with the server failed ({other}); check sslmode, sslrootcert, sslcert and sslkey"),
        };
    };
    match cert {
        C::UnknownIssuer | C::BadSignature => format!(
            "the server's certificate is not signed by a CA this client trusts ({root}); set sslrootcert (or PGSSLROOTCERT) to the CA certificate that signed it, or sslmode=require to encrypt without verifying the server"
        ),
        C::NotValidForNameContext { expected, presented } => format!(
            "the server's certificate is not valid for the host name {:?} (it names {}); connect with a host name it names, or set sslmode=verify-ca to check only its CA",
            expected.to_str(),
            if presented.is_empty() {
                "no host".to_owned()
            } else {
                presented.iter().map(|name| bare_name(name)).collect::<Vec<_>>().join(", ")
            }
        ),
        C::NotValidForName => format!(
            "the server's certificate is not valid for the host name {host:?}; connect with a host name it names, or set sslmode=verify-ca to check only its CA"
        ),
        C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. } => format!(
            "the server's certificate is outside its validity period ({cert}); renew it on the server or check this machine's clock, or set sslmode=require to encrypt without verifying the server"
        ),
        other => format!(
            "the server's certificate was refused ({other}); check sslrootcert, or set sslmode=require to encrypt without verifying the server"
        ),
    }
}

/// A name as rustls presents it (`IpAddress(127.0.0.1)`,
/// `DnsName("db.lab")`) as the user writes it.
fn bare_name(name: &str) -> &str {
    let inner = name
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(name);
    inner.trim_matches('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake(error: rustls::Error) -> sqlx::Error {
        sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, error))
    }

    #[test]
    fn unknown_modes_are_refused_with_the_known_ones() {
        let url = url::Url::parse("postgres://u@h/d?sslmode=verify_full").unwrap();
        let err = check_url(&url).unwrap_err();
        assert!(
            err.contains("sslmode=verify_full is not a TLS mode"),
            "{err}"
        );
        assert!(err.contains("verify-full"), "{err}");
        let fine = url::Url::parse("postgres://u@h/d?sslmode=Verify-Full").unwrap();
        assert!(check_url(&fine).is_ok());
    }

    #[test]
    fn a_missing_certificate_file_is_named_before_connecting() {
        let err =
            check_before_connect("postgres://u@h/d?sslrootcert=/nonexistent/ca.crt").unwrap_err();
        assert!(
            err.starts_with("sslrootcert /nonexistent/ca.crt cannot be read"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("client.crt");
        std::fs::write(&cert, "x").unwrap();
        let url = format!("postgres://u@h/d?sslcert={}", cert.display());
        let err = check_before_connect(&url).unwrap_err();
        assert!(err.contains("sslkey is not"), "{err}");
    }

    /// `url`'s value of `setting` after libpq's defaults, with `home` and
    /// `bundle` in place of this machine's.
    fn defaulted(url: &str, home: &Path, bundle: Option<&Path>) -> Result<url::Url, String> {
        let url = with_libpq_defaults(url, Some(home), || bundle.map(Path::to_path_buf))?;
        Ok(url::Url::parse(&url).unwrap())
    }

    #[test]
    fn sslrootcert_system_is_the_platform_bundle_and_verifies_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("ca-certificates.crt");
        let url = defaulted(
            "postgres://u@h/d?sslrootcert=system",
            dir.path(),
            Some(&bundle),
        )
        .unwrap();
        assert_eq!(
            in_url(&url, SSLROOTCERT).as_deref(),
            bundle.to_str(),
            "{url}"
        );
        assert_eq!(in_url(&url, SSLMODE).as_deref(), Some("verify-full"));
        let weak = defaulted(
            "postgres://u@h/d?sslrootcert=system&sslmode=require",
            dir.path(),
            Some(&bundle),
        )
        .unwrap_err();
        assert!(weak.contains("sslmode=require is refused"), "{weak}");
        assert!(weak.contains("verify-full"), "{weak}");
        let none = defaulted("postgres://u@h/d?sslrootcert=system", dir.path(), None).unwrap_err();
        assert!(none.contains("no CA bundle"), "{none}");
        assert!(!none.contains('\n'));
    }

    #[test]
    fn files_under_dot_postgresql_are_used_as_libpq_uses_them() {
        let home = tempfile::tempdir().unwrap();
        let plain = "postgres://u@h/d?sslmode=verify-full";
        if SETTINGS.iter().all(|s| in_env(*s).is_none()) {
            assert_eq!(defaulted(plain, home.path(), None).unwrap().as_str(), plain);
        }
        let dir = home.path().join(".postgresql");
        std::fs::create_dir(&dir).unwrap();
        for file in ["root.crt", "postgresql.crt", "postgresql.key"] {
            std::fs::write(dir.join(file), "x").unwrap();
        }
        let url = defaulted(plain, home.path(), None).unwrap();
        for (setting, file) in [
            (SSLROOTCERT, "root.crt"),
            (SSLCERT, "postgresql.crt"),
            (SSLKEY, "postgresql.key"),
        ] {
            let wanted = dir.join(file);
            if in_env(setting).is_none() {
                assert_eq!(in_url(&url, setting).as_deref(), wanted.to_str(), "{url}");
            }
        }
        let own = defaulted(
            "postgres://u@h/d?sslrootcert=/lab/ca.crt",
            home.path(),
            None,
        )
        .unwrap();
        assert_eq!(in_url(&own, SSLROOTCERT).as_deref(), Some("/lab/ca.crt"));
    }

    #[test]
    fn workers_get_absolute_files_and_an_unchanged_url_otherwise() {
        let plain = "postgres://me:pw@db.lab:5432/nas?x=1";
        if SETTINGS.iter().all(|s| in_env(*s).is_none()) {
            assert_eq!(for_workers(plain), plain);
        }
        let url =
            for_workers("postgres://me:pw@db.lab/nas?sslmode=verify-full&ssl-root-cert=ca.crt");
        let parsed = url::Url::parse(&url).unwrap();
        let root = in_url(&parsed, SSLROOTCERT).unwrap();
        assert!(Path::new(&root).is_absolute(), "{url}");
        assert!(root.ends_with("/ca.crt"), "{url}");
        assert!(url.contains(&format!("sslrootcert={root}")), "{url}");
        assert_eq!(in_url(&parsed, SSLMODE).as_deref(), Some("verify-full"));
        assert_eq!(parsed.password(), Some("pw"));
        assert_eq!(
            parsed
                .query_pairs()
                .filter(|(k, _)| k.contains("root"))
                .count(),
            1,
            "{url}"
        );
    }

    #[test]
    fn certificate_failures_say_what_did_not_match_and_what_to_set() {
        let url = "postgres://u:pw@localhost/d?sslmode=verify-full&sslrootcert=/x/ca.crt";
        let issuer = handshake(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        let said = explain(&issuer, Some(url)).unwrap();
        assert!(said.contains("not signed by a CA"), "{said}");
        assert!(said.contains("sslrootcert is /x/ca.crt"), "{said}");
        assert!(!said.contains('\n'));
        let name = handshake(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForNameContext {
                expected: rustls::pki_types::ServerName::try_from("localhost").unwrap(),
                presented: vec!["IpAddress(127.0.0.1)".into(), "DnsName(\"db.lab\")".into()],
            },
        ));
        let said = explain(&name, Some(url)).unwrap();
        assert!(
            said.contains("not valid for the host name \"localhost\" (it names 127.0.0.1, db.lab)"),
            "{said}"
        );
        assert!(said.contains("sslmode=verify-ca"), "{said}");
        let refused = sqlx::Error::Tls("server does not support TLS".into());
        assert!(explain(&refused, None).unwrap().contains("sslmode=prefer"));
        let network = sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into());
        assert_eq!(explain(&network, Some(url)), None);
    }
}
