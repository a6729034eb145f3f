//! `ddsas report` and `ddsas nb201`: figures and tables from the database (issue 4).

use std::process::ExitCode;

/// Report commands.
#[derive(Debug, clap::Subcommand)]
pub enum ReportCmd {}

impl ReportCmd {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {}
    }
}
