//! End-to-end tests of the `ddsas` binary against temporary databases, in
//! one test binary: `search` (single searches), `sweep` (orchestrators and
//! workers), `report` (figures checked against SQL), `data` (`data get`
//! against a local HTTP server), `chaos` (a sweep under injected faults),
//! `slurm` (`sweep submit --slurm` and the pull workers of its tasks),
//! `tls` (a sweep on a PostgreSQL server that accepts only TLS), `imagenet`
//! (transfer to a small ImageNet folder of JPEGs written by the test).
//! `util` holds what they share: the binary's path, output text and SQLite
//! reads.
//!
//! Nearly every module makes its databases by searching or training, so the
//! whole binary needs the training engine; `tests/light.rs` covers what the
//! light build (`--no-default-features`) runs.
#![cfg(feature = "engine")]

mod chaos;
mod data;
mod imagenet;
#[cfg(feature = "dist")]
mod parallel;
mod report;
mod search;
mod serve;
mod slurm;
mod sweep;
mod tls;
mod train;
mod util;
