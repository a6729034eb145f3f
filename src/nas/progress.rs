//! A process-wide count of the batches a search or training has pushed
//! through the network (weight steps and evaluation batches alike), for
//! the worker's heartbeat.
//!
//! Why: a heartbeat alone proves only that the heartbeat thread runs. A
//! deadlock, a stuck GPU kernel or a hung network file system leaves it
//! beating while nothing moves; the orchestrator tells the two apart by
//! whether this count still grows. Evaluation batches count too,
//! so that a long validation pass is not mistaken for a stall.

use std::sync::atomic::{AtomicU64, Ordering};

static BATCHES: AtomicU64 = AtomicU64::new(0);

/// One more batch done.
pub fn tick() {
    BATCHES.fetch_add(1, Ordering::Relaxed);
}

/// Batches done by this process so far.
pub fn batches() -> u64 {
    BATCHES.load(Ordering::Relaxed)
}
