//! `ddsas runs` and `ddsas sql`: questions about the run history (issue 3).

use std::process::ExitCode;

/// Run-history commands.
#[derive(Debug, clap::Subcommand)]
pub enum RunsCmd {}

impl RunsCmd {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {}
    }
}
