//! Checkpoints: every tensor (weights, batch-norm statistics, alpha, beta,
//! optimiser state) in one libtorch file `tensors-NNNN.ot`, and the rest
//! (epoch, step, UCB state, ...) with the tensor file's SHA-256 and size in
//! `state-NNNN.json`. One is written after every epoch; a run stopped
//! part-way through an epoch (Ctrl-C, Slurm's time-limit warning) also
//! writes one at that step, `state-NNNN-step-SSSSSS.json`, so that it
//! resumes from that step rather than redoing the epoch.
//!
//! Why this shape (workers may be killed at any moment):
//! - **Atomic.** The tensor file is renamed into place before the state
//!   that points at it (itself written to a temporary file and renamed), so
//!   a crash at any moment leaves whole checkpoints only.
//! - **Verified.** A checkpoint whose state does not parse, whose tensor
//!   file is missing, or whose bytes do not hash to the recorded sum is
//!   damaged: it is never handed to libtorch (whose loader aborts or prints
//!   a C++ backtrace on such files); the previous one is used instead.
//! - **Two kept.** The two newest checkpoints stay, so one damaged file
//!   costs one epoch, not the run.
//! - **Disk full is an answer, not an abort.** The tensors are serialised
//!   in memory and written with Rust's file API, after a free-space check:
//!   a full disk is an error naming the path and the sizes, and no
//!   half-written file is ever taken for a checkpoint.
//!
//! A `state.json` of older ddsas versions (no checksum) is still read, as
//! the oldest candidate.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{Device, Tensor};

use crate::arch::metrics::{StepRecord, SubspaceRecord};
use crate::nas::method::SavedMethod;

/// Everything of a checkpoint that is not a tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Fingerprint of the run the checkpoint belongs to.
    pub fingerprint: String,
    /// Last completed epoch; with `partial`, the epoch in progress.
    pub epoch: u32,
    /// Weight steps done so far.
    pub step: u64,
    /// Adam updates done so far (bias correction).
    pub adam_steps: i64,
    /// The method's state (UCB sampler, counts).
    pub method: SavedMethod,
    /// Encoding of the last epoch's derived architecture (cosine distance).
    pub prev_encoding: Option<Vec<f64>>,
    /// Encoding of the last step's derived architecture (per-step logging).
    pub prev_step_encoding: Option<Vec<f64>>,
    /// Search wall seconds so far.
    pub wall_s: f64,
    /// File name (in the same folder) of the tensors.
    pub tensors_file: String,
    /// The epoch's progress when the checkpoint was written part-way
    /// through it; absent after a whole epoch (and in older checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<PartialEpoch>,
}

/// A search epoch's progress at the step where it was stopped: what the
/// rest of the epoch needs to produce the record an uninterrupted epoch
/// would have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartialEpoch {
    /// Steps of the epoch done.
    pub steps_done: u32,
    /// Words the epoch's ChaCha generator had handed out, a `u128` as its
    /// high and low halves (JSON numbers stop at 64 bits).
    pub rng_word_pos: [u64; 2],
    /// Sum of minibatch loss times minibatch size so far.
    pub loss_sum: f64,
    /// Correct predictions so far.
    pub correct: i64,
    /// Images trained on so far.
    pub seen: i64,
    /// Subspaces drawn in the epoch so far.
    pub subspaces: Vec<SubspaceRecord>,
    /// Per-step records of the epoch so far (`log_steps`).
    pub step_records: Vec<StepRecord>,
    /// Training seconds of the epoch so far.
    pub train_s: f64,
}

/// Where in a run a checkpoint stands: after a whole epoch, or part-way
/// through one. Ordered as the run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// The epoch (0-based): the last finished one, or the one in progress
    /// when `step` is set.
    pub epoch: u32,
    /// Steps of `epoch` done, when it is unfinished.
    pub step: Option<u32>,
}

impl Position {
    /// After the whole of `epoch`.
    pub fn finished(epoch: u32) -> Self {
        Position { epoch, step: None }
    }

    /// After `step` steps of `epoch`.
    pub fn within(epoch: u32, step: u32) -> Self {
        Position {
            epoch,
            step: Some(step),
        }
    }

    /// The last epoch whose record is complete at this position.
    pub fn last_finished_epoch(&self) -> Option<u32> {
        match self.step {
            None => Some(self.epoch),
            Some(_) => self.epoch.checked_sub(1),
        }
    }

    /// Where a run resumed from here goes on: the epoch, and the steps of
    /// it already done.
    pub fn resume_at(&self) -> (u32, usize) {
        match self.step {
            None => (self.epoch + 1, 0),
            Some(step) => (self.epoch, step as usize),
        }
    }

    fn key(&self) -> (u32, u32) {
        (self.epoch, self.step.unwrap_or(u32::MAX))
    }

    /// The part of the file names after `state-` / `tensors-`.
    fn stem(&self) -> String {
        match self.step {
            None => format!("{:04}", self.epoch),
            Some(step) => format!("{:04}-step-{step:06}", self.epoch),
        }
    }

    fn parse_stem(stem: &str) -> Option<Position> {
        match stem.split_once("-step-") {
            None => Some(Position::finished(stem.parse().ok()?)),
            Some((epoch, step)) => Some(Position::within(epoch.parse().ok()?, step.parse().ok()?)),
        }
    }
}

impl Ord for Position {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Position {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Counted from 1, as the progress lines and `runs show` count.
impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.step {
            None => write!(f, "epoch {}", self.epoch + 1),
            Some(step) => write!(f, "step {step} of epoch {}", self.epoch + 1),
        }
    }
}

/// The part of a checkpoint that is not a tensor, for any kind of run:
/// what `save` and `load` need to know of it.
pub trait SavedState: Serialize + DeserializeOwned + Clone {
    /// Fingerprint of the run it belongs to.
    fn fingerprint(&self) -> &str;
    /// Where in the run it was written.
    fn position(&self) -> Position;
    /// File name (in the same folder) of the tensors.
    fn tensors_file(&self) -> &str;
    /// The state pointing at tensor file `name`.
    fn with_tensors_file(&self, name: String) -> Self;
}

impl SavedState for CheckpointState {
    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
    fn position(&self) -> Position {
        match &self.partial {
            None => Position::finished(self.epoch),
            Some(p) => Position::within(self.epoch, p.steps_done),
        }
    }
    fn tensors_file(&self) -> &str {
        &self.tensors_file
    }
    fn with_tensors_file(&self, name: String) -> Self {
        CheckpointState {
            tensors_file: name,
            ..self.clone()
        }
    }
}

/// Checkpoints kept per run: the newest and the one before it (of any
/// position: a finished epoch or a stopped step).
pub const KEEP: usize = 2;

/// Room kept free beyond a checkpoint's own size when checking the disk:
/// the state file, the database's next epoch, the run's log.
const SPARE_BYTES: u64 = 4 << 20;

/// A checkpoint that could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// File system error.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// File concerned.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The disk (or quota) holding the checkpoints is full.
    #[error("no space left on the disk of {path}: the checkpoint needs {} and {} is free; free some space (or move the database and checkpoints with --db / --checkpoint-dir), then run again: the run resumes from its last checkpoint", mib(*.needed), mib(*.available))]
    NoSpace {
        /// File that was (to be) written.
        path: PathBuf,
        /// Bytes the checkpoint needs.
        needed: u64,
        /// Bytes free for us, as far as known.
        available: u64,
    },
    /// libtorch could not serialise or read the tensors; the message is
    /// libtorch's first line, the full text is in `detail`.
    #[error("checkpoint tensors {path}: {message}")]
    Tensors {
        /// File concerned.
        path: PathBuf,
        /// libtorch's first line.
        message: String,
        /// libtorch's whole text (with its C++ frames), for the run's log.
        detail: String,
    },
    /// The checkpoint belongs to another config.
    #[error(
        "checkpoint in {dir} belongs to run {found}, not {expected}; use another --checkpoint-dir"
    )]
    Mismatch {
        /// Folder.
        dir: PathBuf,
        /// Fingerprint found.
        found: String,
        /// Fingerprint expected.
        expected: String,
    },
}

impl CheckpointError {
    /// Whether the disk is full: the run can go on once space is freed.
    pub fn is_no_space(&self) -> bool {
        match self {
            CheckpointError::NoSpace { .. } => true,
            CheckpointError::Io { source, .. } => is_no_space(source),
            _ => false,
        }
    }

    /// The full text behind the one-line message (libtorch's frames), when
    /// there is more than the message.
    pub fn detail(&self) -> Option<&str> {
        match self {
            CheckpointError::Tensors { detail, .. } => Some(detail),
            _ => None,
        }
    }
}

/// ENOSPC or EDQUOT: out of disk or out of quota.
pub fn is_no_space(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    }
}

fn tensors_error(path: &Path, source: tch::TchError) -> CheckpointError {
    let detail = source.to_string();
    CheckpointError::Tensors {
        path: path.to_owned(),
        message: crate::torch_text::one_line(&detail),
        detail,
    }
}

/// What `state-NNNN.json` holds: the run's state and how to check its
/// tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Envelope<S> {
    /// SHA-256 of the tensor file, hex.
    tensors_sha256: String,
    /// Size of the tensor file in bytes.
    tensors_bytes: u64,
    /// The run's own state (it names the tensor file).
    state: S,
}

fn state_name(at: Position) -> String {
    format!("state-{}.json", at.stem())
}

fn tensors_name(at: Position) -> String {
    format!("tensors-{}.ot", at.stem())
}

/// Writes a checkpoint into `dir` atomically and keeps only the [`KEEP`]
/// newest.
pub fn save<S: SavedState>(
    dir: &Path,
    state: &S,
    tensors: &[(String, Tensor)],
) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = tensors_name(state.position());
    let final_path = dir.join(&name);
    let bytes = serialise(&final_path, tensors)?;
    ensure_space(&final_path, bytes.len() as u64 + SPARE_BYTES)?;
    let envelope = Envelope {
        tensors_sha256: hex::encode(Sha256::digest(&bytes)),
        tensors_bytes: bytes.len() as u64,
        state: state.with_tensors_file(name),
    };
    write_atomically(&final_path, &bytes)?;
    let text = serde_json::to_vec_pretty(&envelope).expect("checkpoint state serializes");
    write_atomically(&dir.join(state_name(state.position())), &text)?;
    prune(dir);
    Ok(())
}

/// The tensors as libtorch's file format, in memory (moved to the CPU).
fn serialise(path: &Path, tensors: &[(String, Tensor)]) -> Result<Vec<u8>, CheckpointError> {
    let on_cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.detach().to_device(Device::Cpu)))
        .collect();
    let mut bytes = Vec::new();
    Tensor::save_multi_to_stream(&on_cpu, &mut bytes).map_err(|e| tensors_error(path, e))?;
    Ok(bytes)
}

/// Refuses to start a write that cannot fit, before any byte is written.
fn ensure_space(path: &Path, needed: u64) -> Result<(), CheckpointError> {
    let Some(available) = available_bytes(path.parent().unwrap_or(Path::new("."))) else {
        return Ok(());
    };
    if available < needed {
        return Err(CheckpointError::NoSpace {
            path: path.to_owned(),
            needed,
            available,
        });
    }
    Ok(())
}

/// Bytes an unprivileged writer may still use on the file system of `dir`
/// (None if the system does not say).
pub fn available_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: c_path is a valid NUL-terminated string and stats a writable
    // statvfs that the call fills in completely when it returns 0.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it initialised the struct.
    let stats = unsafe { stats.assume_init() };
    // The field types differ between platforms (u32 on some 32-bit ones).
    #[allow(clippy::useless_conversion)]
    let (blocks, block_size) = (u64::from(stats.f_bavail), u64::from(stats.f_frsize));
    Some(blocks.saturating_mul(block_size))
}

/// Writes `bytes` to `path` through a temporary file, synced, then
/// renamed: `path` is whole or absent. A failed write removes the
/// temporary file, so a full disk is not made fuller.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        if is_no_space(&source) {
            CheckpointError::NoSpace {
                path: path.to_owned(),
                needed: bytes.len() as u64,
                available: available_bytes(path.parent().unwrap_or(Path::new("."))).unwrap_or(0),
            }
        } else {
            CheckpointError::Io {
                path: path.to_owned(),
                source,
            }
        }
    })
}

/// Removes all but the [`KEEP`] newest checkpoints: their state and
/// tensor files, temporary files a crash left behind, and an old-format
/// `state.json`. Files of positions after the newest are not ours to
/// judge and stay.
fn prune(dir: &Path) {
    let mut states = state_positions(dir);
    states.sort_unstable_by(|a, b| b.cmp(a));
    let Some(&newest) = states.first() else {
        return;
    };
    let kept: Vec<Position> = states.iter().copied().take(KEEP).collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = match file_position(&name) {
            Some(at) => {
                (at <= newest && !kept.contains(&at)) || (name.ends_with(".tmp") && at < newest)
            }
            None => name == "state.json",
        };
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The position in a checkpoint file's name (`state-0003.json`,
/// `tensors-0003-step-000120.ot`, either with `.tmp`).
fn file_position(name: &str) -> Option<Position> {
    let rest = name
        .strip_prefix("state-")
        .or_else(|| name.strip_prefix("tensors-"))?;
    Position::parse_stem(rest.split('.').next()?)
}

/// Positions that have a state file.
fn state_positions(dir: &Path) -> Vec<Position> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            Position::parse_stem(name.strip_prefix("state-")?.strip_suffix(".json")?)
        })
        .collect()
}

/// Whether `dir` holds any checkpoint, good or damaged.
pub fn exists(dir: &Path) -> bool {
    !state_positions(dir).is_empty() || dir.join("state.json").exists()
}

/// A checkpoint as read back: its state and its named tensors.
pub type Loaded<S = CheckpointState> = (S, Vec<(String, Tensor)>);

/// What a checkpoint folder offers: the newest good checkpoint, and one
/// line per newer one found damaged.
#[derive(Debug, Clone)]
pub struct Scan<S> {
    /// The newest checkpoint that verified, and its tensor file.
    pub good: Option<(S, PathBuf)>,
    /// Why each newer checkpoint cannot be used, newest first.
    pub damaged: Vec<String>,
}

impl<S: SavedState> Scan<S> {
    /// Where the good checkpoint stands.
    pub fn position(&self) -> Option<Position> {
        self.good.as_ref().map(|(s, _)| s.position())
    }

    /// The last epoch whose record the good checkpoint goes with: records
    /// after it are redone.
    pub fn last_finished_epoch(&self) -> Option<u32> {
        self.position()?.last_finished_epoch()
    }

    /// One line for the user when something was damaged: what, and where
    /// the run goes on from.
    pub fn damage_report(&self) -> Option<String> {
        if self.damaged.is_empty() {
            return None;
        }
        let from = match self.position() {
            Some(at @ Position { step: None, .. }) => {
                format!("resuming from the checkpoint of {at}")
            }
            Some(at) => format!("resuming from the checkpoint at {at}"),
            None => "no good checkpoint is left, so the run starts over from epoch 1".into(),
        };
        Some(format!("{}; {from}", self.damaged.join("; ")))
    }
}

/// Finds the newest good checkpoint of run `fingerprint` in `dir`,
/// verifying each candidate's tensor file against its recorded SHA-256.
/// A checkpoint of another run is an error (the wrong folder); damaged ones
/// are listed in [`Scan::damaged`].
pub fn scan<S: SavedState>(dir: &Path, fingerprint: &str) -> Result<Scan<S>, CheckpointError> {
    let mut positions = state_positions(dir);
    positions.sort_unstable_by(|a, b| b.cmp(a));
    let mut candidates: Vec<PathBuf> = positions
        .into_iter()
        .map(|e| dir.join(state_name(e)))
        .collect();
    if dir.join("state.json").exists() {
        candidates.push(dir.join("state.json"));
    }
    let mut damaged = Vec::new();
    for path in candidates {
        match verify::<S>(dir, &path) {
            Ok(state) if state.fingerprint() != fingerprint => {
                return Err(CheckpointError::Mismatch {
                    dir: dir.to_owned(),
                    found: state.fingerprint().to_owned(),
                    expected: fingerprint.to_owned(),
                })
            }
            Ok(state) => {
                let tensors = dir.join(state.tensors_file());
                return Ok(Scan {
                    good: Some((state, tensors)),
                    damaged,
                });
            }
            Err(why) => damaged.push(format!("checkpoint {} is damaged ({why})", path.display())),
        }
    }
    Ok(Scan {
        good: None,
        damaged,
    })
}

/// Reads one state file and checks its tensor file; the reason in words
/// when it cannot be used.
fn verify<S: SavedState>(dir: &Path, state_path: &Path) -> Result<S, String> {
    let text = std::fs::read(state_path).map_err(|e| format!("cannot read it: {e}"))?;
    let legacy = state_path.file_name().is_some_and(|n| n == "state.json");
    if legacy {
        let state: S =
            serde_json::from_slice(&text).map_err(|e| format!("its state does not parse: {e}"))?;
        let tensors = dir.join(state.tensors_file());
        if !tensors.is_file() {
            return Err(format!("its tensor file {} is missing", tensors.display()));
        }
        return Ok(state);
    }
    let envelope: Envelope<S> =
        serde_json::from_slice(&text).map_err(|e| format!("its state does not parse: {e}"))?;
    let tensors = dir.join(envelope.state.tensors_file());
    let bytes = std::fs::read(&tensors)
        .map_err(|e| format!("its tensor file {} cannot be read: {e}", tensors.display()))?;
    if bytes.len() as u64 != envelope.tensors_bytes {
        return Err(format!(
            "{} has {} bytes, {} were written",
            tensors.display(),
            bytes.len(),
            envelope.tensors_bytes
        ));
    }
    let sum = hex::encode(Sha256::digest(&bytes));
    if sum != envelope.tensors_sha256 {
        return Err(format!(
            "{} has SHA-256 {}, {} was written",
            tensors.display(),
            &sum[..12],
            &envelope.tensors_sha256[..envelope.tensors_sha256.len().min(12)]
        ));
    }
    Ok(envelope.state)
}

/// Reads the newest good checkpoint in `dir`, if there is one, for run
/// `fingerprint` (see [`scan`]; damaged ones are skipped here, and reported
/// by whoever scanned first).
pub fn load<S: SavedState>(
    dir: &Path,
    fingerprint: &str,
    device: Device,
) -> Result<Option<Loaded<S>>, CheckpointError> {
    let Some((state, path)) = scan::<S>(dir, fingerprint)?.good else {
        return Ok(None);
    };
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let tensors = Tensor::load_multi_from_stream_with_device(std::io::Cursor::new(bytes), device)
        .map_err(|e| tensors_error(&path, e))?;
    Ok(Some((state, tensors)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(epoch: u32) -> TestState {
        TestState {
            fingerprint: "fp".into(),
            epoch,
            step: None,
            tensors_file: String::new(),
        }
    }

    fn stopped_at(epoch: u32, step: u32) -> TestState {
        TestState {
            step: Some(step),
            ..state(epoch)
        }
    }

    /// A minimal [`SavedState`], so these tests need no search.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct TestState {
        fingerprint: String,
        epoch: u32,
        #[serde(default)]
        step: Option<u32>,
        tensors_file: String,
    }

    impl SavedState for TestState {
        fn fingerprint(&self) -> &str {
            &self.fingerprint
        }
        fn position(&self) -> Position {
            Position {
                epoch: self.epoch,
                step: self.step,
            }
        }
        fn tensors_file(&self) -> &str {
            &self.tensors_file
        }
        fn with_tensors_file(&self, name: String) -> Self {
            TestState {
                tensors_file: name,
                ..self.clone()
            }
        }
    }

    fn tensors(value: f64) -> Vec<(String, Tensor)> {
        vec![("w".into(), Tensor::from_slice(&[value, 2.0 * value]))]
    }

    fn loaded_value(dir: &Path) -> Option<(u32, f64)> {
        load::<TestState>(dir, "fp", Device::Cpu)
            .unwrap()
            .map(|(s, t)| (s.epoch, t[0].1.double_value(&[0])))
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn saves_round_trip_and_only_the_two_newest_stay() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!exists(dir.path()));
        assert_eq!(loaded_value(dir.path()), None);
        for epoch in 0..4 {
            save(dir.path(), &state(epoch), &tensors(f64::from(epoch))).unwrap();
        }
        assert!(exists(dir.path()));
        assert_eq!(loaded_value(dir.path()), Some((3, 3.0)));
        assert_eq!(
            files(dir.path()),
            [
                "state-0002.json",
                "state-0003.json",
                "tensors-0002.ot",
                "tensors-0003.ot"
            ]
        );
        let wrong = scan::<TestState>(dir.path(), "other").unwrap_err();
        assert!(wrong.to_string().contains("belongs to run fp"), "{wrong}");
    }

    /// A run stopped part-way through an epoch leaves a checkpoint at that
    /// step: newer than its epoch's start, older than the epoch's end, and
    /// kept or dropped by the same rule as the others.
    #[test]
    fn checkpoints_at_a_step_sit_between_the_epochs_around_them() {
        assert!(Position::finished(0) < Position::within(1, 1));
        assert!(Position::within(1, 1) < Position::within(1, 20));
        assert!(Position::within(1, 20) < Position::finished(1));
        assert_eq!(Position::within(0, 5).last_finished_epoch(), None);
        assert_eq!(Position::within(3, 5).last_finished_epoch(), Some(2));
        assert_eq!(Position::within(3, 5).resume_at(), (3, 5));
        assert_eq!(Position::finished(3).resume_at(), (4, 0));
        assert_eq!(Position::within(3, 5).to_string(), "step 5 of epoch 4");

        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &state(0), &tensors(1.0)).unwrap();
        save(dir.path(), &stopped_at(1, 7), &tensors(2.0)).unwrap();
        assert_eq!(
            files(dir.path()),
            [
                "state-0000.json",
                "state-0001-step-000007.json",
                "tensors-0000.ot",
                "tensors-0001-step-000007.ot"
            ]
        );
        let found = scan::<TestState>(dir.path(), "fp").unwrap();
        assert_eq!(found.position(), Some(Position::within(1, 7)));
        assert_eq!(found.last_finished_epoch(), Some(0));
        assert_eq!(loaded_value(dir.path()), Some((1, 2.0)));
        // The epoch's end supersedes its stopped step; the two newest stay.
        save(dir.path(), &state(1), &tensors(3.0)).unwrap();
        assert_eq!(
            files(dir.path()),
            [
                "state-0001-step-000007.json",
                "state-0001.json",
                "tensors-0001-step-000007.ot",
                "tensors-0001.ot"
            ]
        );
        assert_eq!(loaded_value(dir.path()), Some((1, 3.0)));
        // A damaged step checkpoint falls back to the epoch before it.
        save(dir.path(), &stopped_at(2, 3), &tensors(4.0)).unwrap();
        std::fs::write(dir.path().join("tensors-0002-step-000003.ot"), b"x").unwrap();
        let found = scan::<TestState>(dir.path(), "fp").unwrap();
        assert_eq!(found.position(), Some(Position::finished(1)));
        let report = found.damage_report().unwrap();
        assert!(
            report.contains("state-0002-step-000003.json is damaged"),
            "{report}"
        );
        assert!(
            report.ends_with("resuming from the checkpoint of epoch 2"),
            "{report}"
        );
        // Stopped twice in one epoch, the later one damaged.
        save(dir.path(), &stopped_at(2, 5), &tensors(5.0)).unwrap();
        save(dir.path(), &stopped_at(2, 9), &tensors(6.0)).unwrap();
        std::fs::write(dir.path().join("tensors-0002-step-000009.ot"), b"x").unwrap();
        let report = scan::<TestState>(dir.path(), "fp")
            .unwrap()
            .damage_report()
            .unwrap();
        assert!(
            report.ends_with("resuming from the checkpoint at step 5 of epoch 3"),
            "{report}"
        );
    }

    #[test]
    fn a_damaged_checkpoint_is_skipped_for_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &state(0), &tensors(1.0)).unwrap();
        save(dir.path(), &state(1), &tensors(2.0)).unwrap();
        // Truncated, as by a crash of the disk or a careless copy.
        let newest = dir.path().join("tensors-0001.ot");
        let len = std::fs::metadata(&newest).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&newest)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        let found = scan::<TestState>(dir.path(), "fp").unwrap();
        assert_eq!(found.last_finished_epoch(), Some(0));
        let report = found.damage_report().unwrap();
        assert!(report.contains("state-0001.json is damaged"), "{report}");
        assert!(
            report.contains(&format!("has {} bytes, {len} were written", len / 2)),
            "{report}"
        );
        assert!(
            report.ends_with("resuming from the checkpoint of epoch 1"),
            "{report}"
        );
        assert!(!report.contains('\n'));
        assert_eq!(loaded_value(dir.path()), Some((0, 1.0)));

        // Same size, other bytes: the checksum catches it.
        let oldest = dir.path().join("tensors-0000.ot");
        let mut bytes = std::fs::read(&oldest).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&oldest, bytes).unwrap();
        let found = scan::<TestState>(dir.path(), "fp").unwrap();
        assert_eq!(found.last_finished_epoch(), None);
        let report = found.damage_report().unwrap();
        assert!(report.contains("has SHA-256"), "{report}");
        assert!(
            report.ends_with("the run starts over from epoch 1"),
            "{report}"
        );
        assert_eq!(loaded_value(dir.path()), None);

        // A state that does not parse is damaged too, not a crash.
        std::fs::write(dir.path().join("state-0002.json"), "{").unwrap();
        let found = scan::<TestState>(dir.path(), "fp").unwrap();
        assert_eq!(found.damaged.len(), 3);
        assert!(found.damaged[0].contains("does not parse"));
    }

    #[test]
    fn an_older_state_json_without_checksum_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let mut legacy = state(4);
        legacy.tensors_file = "tensors-0004.ot".into();
        Tensor::save_multi(&tensors(7.0), dir.path().join("tensors-0004.ot")).unwrap();
        std::fs::write(
            dir.path().join("state.json"),
            serde_json::to_vec(&legacy).unwrap(),
        )
        .unwrap();
        assert_eq!(loaded_value(dir.path()), Some((4, 7.0)));
        // The next save replaces it.
        save(dir.path(), &state(5), &tensors(8.0)).unwrap();
        assert!(!dir.path().join("state.json").exists());
        assert_eq!(loaded_value(dir.path()), Some((5, 8.0)));
    }

    #[test]
    fn a_full_disk_is_an_error_naming_the_path_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        // /dev/full answers every write with ENOSPC, as a full disk does;
        // the save of epoch 0 leaves this file of a later epoch alone.
        std::os::unix::fs::symlink("/dev/full", dir.path().join("tensors-0001.ot.tmp")).unwrap();
        save(dir.path(), &state(0), &tensors(1.0)).unwrap();
        let err = save(dir.path(), &state(1), &tensors(2.0)).unwrap_err();
        assert!(err.is_no_space(), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("no space left on the disk of"), "{text}");
        assert!(text.contains("tensors-0001.ot"), "{text}");
        // The failed write is cleaned up; the previous checkpoint stands.
        assert_eq!(files(dir.path()), ["state-0000.json", "tensors-0000.ot"]);
        assert_eq!(loaded_value(dir.path()), Some((0, 1.0)));
        // A check before writing: more than the disk has.
        let err = ensure_space(&dir.path().join("x"), u64::MAX).unwrap_err();
        assert!(
            err.is_no_space() && err.to_string().contains(" is free"),
            "{err}"
        );
    }
}
