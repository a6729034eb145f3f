//! Test hooks of the epoch loop, read from the environment: hold, hang or
//! stop a run (or end a data-parallel rank) at an exact weight step, so
//! that end-to-end tests put a run where they need it instead of racing it.

/// Environment variable `STEP:MARKER` that hangs the search at weight step
/// STEP (global, from 1) for good, its heartbeat still running, unless the
/// file MARKER exists (it is created first, so a retry goes through): a
/// test hook for stall detection, standing in for a deadlock or a stuck
/// kernel.
pub const FAULT_HANG_STEP: &str = "DDSAS_FAULT_HANG_AT_STEP";

/// Environment variable: comma-separated weight steps (global, from 1)
/// before which a search or a training stops as if asked to (Ctrl-C,
/// SIGUSR2), except at the first step the process runs, so that the resume
/// goes on: a test hook for stopping at an exact step.
pub const FAULT_STOP_STEPS: &str = "DDSAS_FAULT_STOP_AT_STEPS";

/// Environment variable `STEP:FILE` that holds a search or a training
/// before weight step STEP (global, from 1) for as long as the file FILE
/// exists; `{seed}` in FILE stands for the run's seed, so that a test can
/// hold one run of a sweep and not another. The heartbeat goes on, and a
/// stop request (Ctrl-C, SIGUSR2, a cancel, the orchestrator's end) ends
/// the hold as it ends any step. Every process that reaches STEP holds, a
/// retry or a resume included, and writes FILE.held when it begins to
/// wait. A test hook: "the run is still running when the test does X"
/// becomes a fact instead of a race between two processes (the test
/// creates FILE, waits for FILE.held or the run's record before STEP,
/// does X, then deletes FILE).
pub const FAULT_HOLD_STEP: &str = "DDSAS_FAULT_HOLD_AT_STEP";

/// The stops [`FAULT_STOP_STEPS`] asks for.
pub(crate) struct FaultStops {
    steps: Vec<u64>,
    first: bool,
}

impl FaultStops {
    /// The steps named in the environment (none when it is unset).
    pub(crate) fn from_env() -> Self {
        let steps = std::env::var(FAULT_STOP_STEPS)
            .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
            .unwrap_or_default();
        FaultStops { steps, first: true }
    }

    /// Whether to stop before weight step `step` (called once per step).
    pub(crate) fn stop_before(&mut self, step: u64) -> bool {
        let first = std::mem::replace(&mut self.first, false);
        !first && self.steps.contains(&step)
    }
}

/// Environment variable "RANK STEP": that rank of a data-parallel run
/// ends at once (as a `kill -9` would) before step STEP of an epoch (from
/// 0), so that tests see how the other ranks end.
pub const FAULT_DIE_AT: &str = "DDSAS_DIST_DIE_AT";

/// Environment variable "RANK STEP": that rank of a data-parallel run
/// sleeps for good before step STEP of an epoch (from 0), its heartbeat
/// still beating: a rank alive but never joining the next collective, so
/// that tests see the others end at the process group's timeout.
pub const FAULT_HANG_RANK_AT: &str = "DDSAS_DIST_HANG_AT";

/// "RANK STEP" in the environment variable `var`.
fn rank_and_step(var: &str) -> Option<(usize, usize)> {
    let value = std::env::var(var).ok()?;
    let (rank, step) = value.split_once(' ')?;
    Some((rank.parse().ok()?, step.parse().ok()?))
}

/// Ends this process if [`FAULT_DIE_AT`] names its `rank` and `step`.
/// The variable is read once per process: this runs at every step.
pub(crate) fn maybe_die(rank: usize, step: usize) {
    static HOOK: std::sync::OnceLock<Option<(usize, usize)>> = std::sync::OnceLock::new();
    if *HOOK.get_or_init(|| rank_and_step(FAULT_DIE_AT)) == Some((rank, step)) {
        // SAFETY: ends the process at once, as a killed rank would.
        unsafe { libc::_exit(9) };
    }
}

/// Sleeps for good if [`FAULT_HANG_RANK_AT`] names this `rank` and `step`
/// (only SIGKILL ends it: a stop signal sets a flag nobody reads). The
/// variable is read once per process: this runs at every step.
pub(crate) fn maybe_hang_rank(rank: usize, step: usize) {
    static HOOK: std::sync::OnceLock<Option<(usize, usize)>> = std::sync::OnceLock::new();
    if *HOOK.get_or_init(|| rank_and_step(FAULT_HANG_RANK_AT)) != Some((rank, step)) {
        return;
    }
    // Tests time the other ranks' ending from this line, not from the
    // start of a run whose speed depends on the machine's load.
    eprintln!("rank {rank}: hanging before step {step} ({FAULT_HANG_RANK_AT})");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// Hangs here, forever, if [`FAULT_HANG_STEP`] asks for it at `step`.
/// The variable is read once per process: this runs at every weight step.
pub(crate) fn maybe_hang(step: u64) {
    static HOOK: std::sync::OnceLock<Option<(u64, std::path::PathBuf)>> =
        std::sync::OnceLock::new();
    let hook = HOOK.get_or_init(|| {
        let value = std::env::var(FAULT_HANG_STEP).ok()?;
        let (at, marker) = value.split_once(':')?;
        Some((at.parse().ok()?, marker.into()))
    });
    let Some((at, marker)) = hook else {
        return;
    };
    if *at != step || marker.exists() {
        return;
    }
    let _ = std::fs::write(marker, b"hung once\n");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// Waits before weight step `step` of the run seeded `seed` while
/// [`FAULT_HOLD_STEP`] asks for it, until its file is gone or `stop()`
/// says so. The variable is read once per process: this runs at every
/// weight step.
pub(crate) fn maybe_hold(step: u64, seed: u64, mut stop: impl FnMut() -> bool) {
    static HOOK: std::sync::OnceLock<Option<(u64, String)>> = std::sync::OnceLock::new();
    let hook = HOOK.get_or_init(|| {
        let value = std::env::var(FAULT_HOLD_STEP).ok()?;
        let (at, file) = value.split_once(':')?;
        Some((at.parse().ok()?, file.to_owned()))
    });
    let Some((at, file)) = hook else {
        return;
    };
    if *at != step {
        return;
    }
    let file = std::path::PathBuf::from(file.replace("{seed}", &seed.to_string()));
    if file.exists() {
        let mut held = file.clone().into_os_string();
        held.push(".held");
        let _ = std::fs::write(held, b"held\n");
    }
    while file.exists() && !stop() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
