//! The NCCL half of the shim, `libddsas_nccl.so`, found and loaded only
//! when a run asks for NCCL. It links libtorch_cuda, which every command
//! would otherwise load at start (about 350 MB and half a second: a
//! report on a machine without a GPU included); build.rs builds it where
//! it finds NCCL's and CUDA's headers and puts it beside the binary.

use std::ffi::{c_void, CStr, CString};
use std::path::PathBuf;
use std::sync::OnceLock;

use super::DistError;

/// The library's file name.
const LIBRARY: &str = "libddsas_nccl.so";

/// Environment variable naming the library's path, for a binary moved
/// away from it (a GPU machine given only the binary and the library).
pub const LIBRARY_ENV: &str = "DDSAS_NCCL_LIBRARY";

/// Where the library may be, in order: [`LIBRARY_ENV`], beside the running
/// binary, where build.rs built it (the tests' binaries).
fn candidates() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(path) = std::env::var_os(LIBRARY_ENV) {
        paths.push(PathBuf::from(path));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(PathBuf::from))
    {
        paths.push(dir.join(LIBRARY));
    }
    if let Some(built) = option_env!("DDSAS_NCCL_BUILT_AT") {
        paths.push(PathBuf::from(built));
    }
    paths
}

/// shim_nccl.cpp's `ddsas_nccl_group`, for `ddsas_dist_new`; the library
/// is loaded once per process and stays loaded.
pub(super) fn factory() -> Result<*mut c_void, DistError> {
    static LOADED: OnceLock<Result<usize, String>> = OnceLock::new();
    LOADED
        .get_or_init(load)
        .clone()
        .map(|address| address as *mut c_void)
        .map_err(DistError)
}

/// Loads the first candidate that exists and looks its function up.
fn load() -> Result<usize, String> {
    let paths = candidates();
    let Some(path) = paths.iter().find(|p| p.is_file()) else {
        let looked: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(format!(
            "NCCL's part of ddsas ({LIBRARY}) is not beside the binary (looked in {}): copy it from the build's target/release/ next to ddsas, set {LIBRARY_ENV}, or use dist_backend=gloo",
            looked.join(", ")
        ));
    };
    let name = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("{} contains a NUL byte", path.display()))?;
    // SAFETY: dlopen/dlsym/dlerror take NUL-terminated strings; the handle
    // is never closed, so the function stays valid for the process.
    unsafe {
        let handle = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if handle.is_null() {
            return Err(format!("could not load {}: {}", path.display(), dl_error()));
        }
        let symbol = libc::dlsym(handle, c"ddsas_nccl_group".as_ptr());
        if symbol.is_null() {
            return Err(format!(
                "{} has no ddsas_nccl_group: {}",
                path.display(),
                dl_error()
            ));
        }
        Ok(symbol as usize)
    }
}

/// dlerror's text of the last failure.
fn dl_error() -> String {
    // SAFETY: dlerror answers NULL or a NUL-terminated string of its own.
    let err = unsafe { libc::dlerror() };
    if err.is_null() {
        return "unknown dlopen error".to_owned();
    }
    unsafe { CStr::from_ptr(err) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(all(test, ddsas_nccl))]
mod tests {
    use super::*;

    #[test]
    fn the_nccl_library_that_build_rs_made_loads_and_has_its_function() {
        let f = factory().expect("libddsas_nccl.so loads");
        assert!(!f.is_null());
    }
}
