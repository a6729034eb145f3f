//! Epoch checkpoints: every tensor (weights, batch-norm statistics, alpha,
//! beta, optimiser state) in one libtorch file, and the rest (epoch, step,
//! UCB state, ...) in `state.json`.
//!
//! Writing is atomic: the tensor file gets a new name per epoch and is
//! renamed into place before `state.json` (itself written to a temporary
//! file and renamed) points at it. A crash at any moment leaves either the
//! old or the new checkpoint, never a mix.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::nas::method::SavedMethod;

/// Everything of a checkpoint that is not a tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Fingerprint of the run the checkpoint belongs to.
    pub fingerprint: String,
    /// Last completed epoch.
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
}

/// The part of a checkpoint that is not a tensor, for any kind of run:
/// what `save` and `load` need to know of it.
pub trait SavedState: Serialize + DeserializeOwned + Clone {
    /// Fingerprint of the run it belongs to.
    fn fingerprint(&self) -> &str;
    /// Last completed epoch.
    fn epoch(&self) -> u32;
    /// File name (in the same folder) of the tensors.
    fn tensors_file(&self) -> &str;
    /// The state pointing at tensor file `name`.
    fn with_tensors_file(&self, name: String) -> Self;
}

impl SavedState for CheckpointState {
    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
    fn epoch(&self) -> u32 {
        self.epoch
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
    /// libtorch could not save or load the tensors.
    #[error("checkpoint tensors {path}: {source}")]
    Tensors {
        /// File concerned.
        path: PathBuf,
        /// Underlying error.
        source: tch::TchError,
    },
    /// `state.json` does not parse.
    #[error("checkpoint {path} is corrupt ({source}); delete the folder to restart the run from scratch")]
    State {
        /// File concerned.
        path: PathBuf,
        /// Underlying error.
        source: serde_json::Error,
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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes a checkpoint into `dir` atomically and removes the previous one.
pub fn save<S: SavedState>(
    dir: &Path,
    state: &S,
    tensors: &[(String, Tensor)],
) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = format!("tensors-{:04}.ot", state.epoch());
    let tmp = dir.join(format!("{name}.tmp"));
    let final_path = dir.join(&name);
    let on_cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.detach().to_device(Device::Cpu)))
        .collect();
    Tensor::save_multi(&on_cpu, &tmp).map_err(|source| CheckpointError::Tensors {
        path: tmp.clone(),
        source,
    })?;
    sync_file(&tmp)?;
    std::fs::rename(&tmp, &final_path).map_err(io(&final_path))?;
    let state = state.with_tensors_file(name.clone());
    let state_path = dir.join("state.json");
    let state_tmp = dir.join("state.json.tmp");
    let text = serde_json::to_vec(&state).expect("checkpoint state serializes");
    std::fs::write(&state_tmp, text).map_err(io(&state_tmp))?;
    sync_file(&state_tmp)?;
    std::fs::rename(&state_tmp, &state_path).map_err(io(&state_path))?;
    remove_stale(dir, &name);
    Ok(())
}

fn sync_file(path: &Path) -> Result<(), CheckpointError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}

/// Old tensor files are only garbage once the new state points elsewhere.
fn remove_stale(dir: &Path, keep: &str) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("tensors-") && name != keep {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// A checkpoint as read back: its state and its named tensors.
pub type Loaded<S = CheckpointState> = (S, Vec<(String, Tensor)>);

/// Reads the checkpoint in `dir`, if there is one, for run `fingerprint`.
pub fn load<S: SavedState>(
    dir: &Path,
    fingerprint: &str,
    device: Device,
) -> Result<Option<Loaded<S>>, CheckpointError> {
    let state_path = dir.join("state.json");
    if !state_path.exists() {
        return Ok(None);
    }
    let text = std::fs::read(&state_path).map_err(io(&state_path))?;
    let state: S = serde_json::from_slice(&text).map_err(|source| CheckpointError::State {
        path: state_path.clone(),
        source,
    })?;
    if state.fingerprint() != fingerprint {
        return Err(CheckpointError::Mismatch {
            dir: dir.to_owned(),
            found: state.fingerprint().to_owned(),
            expected: fingerprint.to_owned(),
        });
    }
    let path = dir.join(state.tensors_file());
    let tensors = Tensor::load_multi_with_device(&path, device)
        .map_err(|source| CheckpointError::Tensors { path, source })?;
    Ok(Some((state, tensors)))
}
