//! A run of a sweep as the orchestrator schedules it: its own file so that
//! the orchestrator and what hands it runs (`evaluate`, the Slurm pull
//! worker, `sweep run`) share it without importing each other.

/// A run of the sweep that is to be executed.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRun {
    /// Run id in the database.
    pub run_id: i64,
    /// Position in the sweep's expansion.
    pub position: usize,
    /// Its varied values, `L=28 M=10`, for the display.
    pub label: String,
    /// Epochs of the run.
    pub epochs: u32,
    /// Processes it runs in, one worker slot each: 1, or a training's
    /// `nproc` from its `evaluate:` entry (data-parallel ranks).
    pub ranks: u32,
    /// The ranks' collectives: the `evaluate:` entry's `dist_backend`
    /// (`auto` for everything else). Not in the stored config (it is not
    /// what the run trains), so it travels with the run to its worker.
    pub backend: crate::config::train::DistBackend,
}
