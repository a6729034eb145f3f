//! `ddsas serve`: the read-only web view of the run history (`crate::serve`).

use std::process::ExitCode;

use tokio::runtime::Runtime;

use super::DbArgs;
use crate::serve::{Server, Settings, TOKEN_ENV};

/// Serve a read-only web view of the run history: sweeps, runs, curves and figures.
#[derive(Debug, clap::Args)]
pub struct ServeCmd {
    #[command(flatten)]
    db: DbArgs,
    /// Address to listen on; anything but loopback (127.0.0.1, ::1) needs --token.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0: any free port; the URL printed says which).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// A secret every request must carry (`?token=`, `Authorization: Bearer`).
    #[arg(long, env = TOKEN_ENV, hide_env_values = true)]
    token: Option<String>,
    /// Stop a page's query after this many seconds (0: no limit), so that a
    /// runaway `?where=` filter gets an error page instead of holding the
    /// server.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    query_timeout: u64,
}

impl ServeCmd {
    /// Binds, prints the URL and serves until Ctrl-C.
    pub fn run(self, rt: &Runtime) -> anyhow::Result<ExitCode> {
        let settings = Settings {
            db: self.db.db.clone(),
            host: self.host,
            port: self.port,
            token: self.token,
            query_timeout: super::query_limit(self.query_timeout),
        };
        let server = rt.block_on(Server::bind(&settings))?;
        crate::outln!(
            "serving {} read-only at {}\n(Ctrl-C stops it)",
            settings.db.display(),
            server.url
        );
        rt.block_on(server.run(async {
            let _ = tokio::signal::ctrl_c().await;
        }))?;
        Ok(ExitCode::SUCCESS)
    }
}
