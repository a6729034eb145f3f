//! `ddsas serve`: a read-only web view of the run history, so
//! that a sweep that runs for days can be followed in a browser (over an SSH
//! tunnel): the sweeps with their progress and ETA, a sweep's runs as a
//! sortable table filtered by the `--where` SQL of `runs list` with its
//! figures drawn on request, and a run with its curves, cells and logs.
//!
//! Read-only by construction: every query goes through connections opened
//! with SQLite's read-only flag ([`ReadOnlyDb`], [`Store::open_read_only`]),
//! and only `GET` and `HEAD` are answered (anything else is `405`), so no
//! URL can change the database. Figures are drawn by the `report` code the
//! files come from ([`crate::report::draw_in_memory`]); the pages are
//! `maud` templates ([`pages`]) with a small inline script that waits for
//! news (a long poll on the JSON of [`live`]) and updates the page in place.
//!
//! Anything but a loopback address needs a token ([`check_bind`]); with a
//! token every request must carry it (`Authorization: Bearer`, `?token=`,
//! or the cookie a `?token=` sets), else `401`.

#![deny(missing_docs)]

pub mod error;
pub mod live;
pub mod pages;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::{Mutex, MutexGuard, Semaphore, SemaphorePermit};

use crate::store::{DbLocation, QueryError, ReadOnlyDb, Store, StoreError};

/// The environment variable a token can come from instead of `--token`
/// (keeps it out of `ps` and shell history).
pub const TOKEN_ENV: &str = "DDSAS_SERVE_TOKEN";

/// Read-only connections a server keeps: pages ask a few questions each,
/// and SQLite readers never wait for each other in WAL mode.
const CONNECTIONS: usize = 4;

/// Pages with a user's `?where=` filter that run at once: fewer than
/// [`CONNECTIONS`], so that slow filters (each stopped by the time limit)
/// always leave connections to the other pages.
const FILTERS_AT_ONCE: usize = 2;

/// The cookie a valid `?token=` sets, so that the page's own requests
/// (links, images, polling) carry it.
const COOKIE: &str = "ddsas_token";

/// What `ddsas serve` was asked to do.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The database file.
    pub db: DbLocation,
    /// Address to bind (`127.0.0.1` by default).
    pub host: String,
    /// Port (0: any free port).
    pub port: u16,
    /// The token every request must carry, if any.
    pub token: Option<String>,
    /// How long one query may run (`None`: no limit).
    pub query_timeout: Option<Duration>,
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without a token.
    #[error("refusing to serve on {host} without a token: anyone who can reach that address could read the run history. Pass --token SECRET (or set {TOKEN_ENV}), or keep the default --host 127.0.0.1 and use an SSH tunnel (ssh -L 8080:127.0.0.1:8080 HOST)")]
    NeedsToken {
        /// The address asked for.
        host: String,
    },
    /// An empty token.
    #[error(
        "--token is empty: give a secret of at least one character (or leave it out on 127.0.0.1)"
    )]
    EmptyToken,
    /// `--host` is neither an IP address nor `localhost`.
    #[error("--host {0} is not an IP address (use e.g. 127.0.0.1, ::1 or 0.0.0.0)")]
    BadHost(String),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The database cannot be opened read-only.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The database cannot be opened for reports.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The address to bind `host` to; refuses anything but loopback without a
/// token.
pub fn check_bind(host: &str, token: Option<&str>) -> Result<IpAddr, ServeError> {
    let ip: IpAddr = match host {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        _ => host
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .map_err(|_| ServeError::BadHost(host.into()))?,
    };
    match token {
        Some("") => Err(ServeError::EmptyToken),
        None if !ip.is_loopback() => Err(ServeError::NeedsToken { host: host.into() }),
        _ => Ok(ip),
    }
}

/// The database, read-only: a few [`ReadOnlyDb`] connections for the
/// pages' questions, and a read-only [`Store`] for the report code.
#[derive(Debug)]
pub struct Db {
    conns: Vec<Mutex<ReadOnlyDb>>,
    next: AtomicUsize,
    filters: Semaphore,
    /// The read-only store the figures are drawn from.
    pub store: Store,
    /// The database.
    pub path: DbLocation,
}

impl Db {
    /// Opens `path` read-only (a missing file is an error, never created);
    /// every query stops after `limit`.
    pub async fn open(path: &DbLocation, limit: Option<Duration>) -> Result<Db, ServeError> {
        let mut conns = Vec::new();
        for _ in 0..CONNECTIONS {
            let mut ro = ReadOnlyDb::open(path).await?;
            ro.set_time_limit(limit).await?;
            conns.push(Mutex::new(ro));
        }
        Ok(Db {
            conns,
            next: AtomicUsize::new(0),
            filters: Semaphore::new(FILTERS_AT_ONCE),
            store: Store::open_read_only(path).await?,
            path: path.clone(),
        })
    }

    /// Leave to run a user's filter, waited for while [`FILTERS_AT_ONCE`]
    /// others run: held with the connection from [`Db::ro`].
    pub async fn filter_turn(&self) -> Option<SemaphorePermit<'_>> {
        self.filters.acquire().await.ok()
    }

    /// A connection (the next free one, or waits for one in turn).
    pub async fn ro(&self) -> MutexGuard<'_, ReadOnlyDb> {
        for c in &self.conns {
            if let Ok(guard) = c.try_lock() {
                return guard;
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        self.conns[i].lock().await
    }
}

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The token requests must carry, if any.
    pub token: Option<String>,
}

/// Shared state of the handlers.
pub type Shared = Arc<AppState>;

/// A bound server, ready to run.
#[derive(Debug)]
pub struct Server {
    listener: tokio::net::TcpListener,
    app: Router,
    /// The address it listens on, as a URL (with `?token=` if it has one).
    pub url: String,
}

impl Server {
    /// Opens the database, checks the address and binds it.
    pub async fn bind(settings: &Settings) -> Result<Server, ServeError> {
        let ip = check_bind(&settings.host, settings.token.as_deref())?;
        let db = Db::open(&settings.db, settings.query_timeout).await?;
        let addr = SocketAddr::new(ip, settings.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| ServeError::Bind { addr, source })?;
        let host = match local.ip() {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        let url = match &settings.token {
            Some(t) => format!("http://{host}:{}/?token={}", local.port(), pages::enc(t)),
            None => format!("http://{host}:{}/", local.port()),
        };
        let state = Arc::new(AppState {
            db,
            token: settings.token.clone(),
        });
        Ok(Server {
            listener,
            app: router(state),
            url,
        })
    }

    /// Serves until `stop` resolves (Ctrl-C in the command).
    pub async fn run(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.app)
            .with_graceful_shutdown(stop)
            .await
    }
}

/// Every route, behind the method guard and the token check.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(pages::sweeps))
        .route("/sweep/{name}", get(pages::sweep))
        .route("/sweep/{name}/figure/{file}", get(pages::figure))
        .route("/run/{id}", get(pages::run))
        .route("/run/{id}/curves.svg", get(pages::curves))
        .route("/run/{id}/cell/{file}", get(pages::cell))
        .route("/run/{id}/sampling.svg", get(pages::sampling))
        .route("/api/sweeps", get(live::sweeps))
        .route("/api/sweep/{name}", get(live::sweep))
        .route("/api/run/{id}", get(live::run))
        .fallback(pages::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), check_token))
        .layer(middleware::from_fn(read_only))
        .with_state(state)
}

/// Answers anything but `GET` and `HEAD` with `405`, on every path: no
/// request can ask to change anything.
async fn read_only(req: Request, next: Next) -> Response {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return next.run(req).await;
    }
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "GET, HEAD")],
        "ddsas serve is read-only: it answers GET and HEAD only\n",
    )
        .into_response()
}

/// Compares without stopping at the first differing byte.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The token a request carries: `Authorization: Bearer`, `?token=` (then
/// `true`: the response sets the cookie) or the cookie.
fn carried(req: &Request) -> Option<(String, bool)> {
    let headers = req.headers();
    if let Some(t) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some((t.trim().to_owned(), false));
    }
    if let Some(t) = req
        .uri()
        .query()
        .and_then(|q| pages::query_value(q, "token"))
    {
        return Some((t, true));
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_owned)
        })
        .map(|t| (pages::dec(&t), false))
}

/// With a token: `401` unless the request carries it.
async fn check_token(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let Some(token) = &state.token else {
        return next.run(req).await;
    };
    match carried(&req) {
        Some((t, from_query)) if same(&t, token) => {
            let mut response = next.run(req).await;
            if from_query {
                let cookie = format!(
                    "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
                    pages::enc(token)
                );
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            response
        }
        found => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            if found.is_some() {
                "wrong token\n"
            } else {
                "this server needs a token: open the URL `ddsas serve` printed (with ?token=...), or send Authorization: Bearer TOKEN\n"
            },
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_goes_without_a_token() {
        assert!(check_bind("127.0.0.1", None).is_ok());
        assert!(check_bind("::1", None).is_ok());
        assert!(check_bind("localhost", None).is_ok());
        let e = check_bind("0.0.0.0", None).unwrap_err().to_string();
        assert!(e.contains("--token") && e.contains(TOKEN_ENV), "{e}");
        assert!(check_bind("192.168.1.2", None).is_err());
        assert!(check_bind("0.0.0.0", Some("s3cret")).is_ok());
        assert!(matches!(
            check_bind("0.0.0.0", Some("")),
            Err(ServeError::EmptyToken)
        ));
        assert!(matches!(
            check_bind("example.org", Some("x")),
            Err(ServeError::BadHost(_))
        ));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
        assert!(!same("", "a"));
    }
}
