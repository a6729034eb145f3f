//! End-to-end tests of the `ddsas` binary against temporary databases, in
//! one test binary: `search` (single searches), `sweep` (orchestrators and
//! workers), `report` (figures checked against SQL), `data` (`data get`
//! against a local HTTP server), `chaos` (a sweep under injected faults),
//! `slurm` (`sweep submit --slurm` and the pull workers of its tasks).
//! `util` holds what they share: the binary's path, output text and SQLite
//! reads.

mod chaos;
mod data;
mod report;
mod search;
mod serve;
mod slurm;
mod sweep;
mod train;
mod util;
