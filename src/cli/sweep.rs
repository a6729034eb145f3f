//! `ddsas sweep`: plan, run, watch and cancel sweeps (issue 3).

use std::process::ExitCode;

/// Sweep commands.
#[derive(Debug, clap::Subcommand)]
pub enum SweepCmd {}

impl SweepCmd {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {}
    }
}
