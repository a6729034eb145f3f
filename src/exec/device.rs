//! Devices and threads of a run (`engine` build only): `cpu` / `cuda:N` as
//! the user writes them, loading libtorch's CUDA backend, the GPUs it sees,
//! and libtorch's CPU threads, within the one limit of
//! [`check_threads`](super::check_threads) that the slot plan of
//! `sweep run` shares.

/// Why a device or a thread count was refused; each message says what to
/// pass instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// A device name that is none of `cpu`, `cuda`, `cuda:N`.
    #[error("unknown device `{0}`: use cpu, cuda or cuda:N")]
    Unknown(String),
    /// A CUDA device this machine does not have (or cannot load).
    #[error("device {device} is not available: {why}; use --device cpu")]
    Unavailable {
        /// The device as given.
        device: String,
        /// What libtorch sees instead.
        why: String,
    },
    /// A thread count past the limit of [`check_threads`](super::check_threads).
    #[error("--threads {0}; use 0 for libtorch's default")]
    Threads(String),
}

/// Parses `cpu`, `cuda` or `cuda:N`, and checks CUDA is there.
pub fn parse_device(text: &str) -> Result<tch::Device, DeviceError> {
    let device = match text {
        "cpu" => tch::Device::Cpu,
        "cuda" => tch::Device::Cuda(0),
        other => match other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => tch::Device::Cuda(n),
            None => return Err(DeviceError::Unknown(text.to_owned())),
        },
    };
    if let tch::Device::Cuda(n) = device {
        let loaded = load_cuda_backend();
        let count = tch::Cuda::device_count() as usize;
        if n >= count {
            let why = match loaded {
                Ok(()) => format!("libtorch sees {count} CUDA device(s) on this machine"),
                Err(e) => format!("libtorch's CUDA backend could not be loaded ({e})"),
            };
            return Err(DeviceError::Unavailable {
                device: text.to_owned(),
                why,
            });
        }
    }
    Ok(device)
}

/// The CUDA devices libtorch sees (none when its CUDA backend cannot load).
pub fn cuda_devices() -> Vec<u32> {
    if load_cuda_backend().is_err() {
        return Vec::new();
    }
    (0..tch::Cuda::device_count().max(0) as u32).collect()
}

/// Loads `libtorch_cuda.so` into the process.
///
/// The linker drops it from the binary's needed libraries because no Rust code
/// calls into it directly (`--as-needed`), yet libtorch only registers its
/// CUDA backend when that library's initialisers run. Loading it on demand,
/// as `import torch` does, makes CUDA work without slowing the start of CPU
/// runs. The library is found through the binary's rpath or `LD_LIBRARY_PATH`.
/// The error is dlopen's text.
fn load_cuda_backend() -> Result<(), String> {
    let name = c"libtorch_cuda.so";
    // SAFETY: dlopen/dlerror take NUL-terminated strings and are thread-safe
    // in glibc; the handle is kept for the life of the process on purpose.
    unsafe {
        if !libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL).is_null() {
            return Ok(());
        }
        let err = libc::dlerror();
        let text = if err.is_null() {
            "unknown dlopen error".to_string()
        } else {
            std::ffi::CStr::from_ptr(err).to_string_lossy().into_owned()
        };
        Err(text)
    }
}

/// Text form of a device, as stored in the database.
pub fn device_name(device: tch::Device) -> String {
    match device {
        tch::Device::Cuda(n) => format!("cuda:{n}"),
        _ => "cpu".into(),
    }
}

/// Sets libtorch's CPU threads (0 = leave libtorch's default). More than
/// four per core only slows a search down, and a typo such as 100000 makes
/// libtorch hang while it starts them, so that is refused.
pub fn set_threads(threads: usize) -> Result<(), DeviceError> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    super::check_threads(threads, cores).map_err(DeviceError::Threads)?;
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_name_round_trip() {
        assert_eq!(parse_device("cpu").unwrap(), tch::Device::Cpu);
        assert_eq!(device_name(tch::Device::Cuda(3)), "cuda:3");
        let err = parse_device("gpu0").unwrap_err().to_string();
        assert!(err.contains("use cpu, cuda or cuda:N"), "{err}");
    }

    /// Without `load_cuda_backend` libtorch answers "Could not run ... with
    /// arguments from the 'CUDA' backend" even on a GPU machine. Once loaded,
    /// a CUDA tensor is either made or refused by the driver layer.
    #[test]
    fn cuda_backend_registers_once_loaded() {
        load_cuda_backend().expect("the torch this binary was built with ships libtorch_cuda.so");
        match tch::Tensor::f_zeros([1], (tch::Kind::Float, tch::Device::Cuda(0))) {
            Ok(t) => assert_eq!(t.device(), tch::Device::Cuda(0)),
            Err(e) => {
                let text = e.to_string();
                assert!(
                    !text.contains("'CUDA' backend"),
                    "CUDA backend still missing: {text}"
                );
            }
        }
    }
}
