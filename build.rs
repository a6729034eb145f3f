//! Bakes the libtorch library folder into the rpath of every binary and test
//! of this package, so that `ddsas` runs without `LD_LIBRARY_PATH`. Without
//! the `engine` feature nothing links libtorch, so no rpath is added and no
//! Python is asked where torch is (a machine without torch builds that way).
//!
//! With the `dist` feature it also compiles `src/nas/dist/shim.cpp`, the C
//! side of `nas::dist`, against the same libtorch's c10d headers (the way
//! torch-sys compiles its own wrapper) and Gloo's headers from
//! `DDSAS_GLOO_INCLUDE` or the system (Debian: `libgloo-dev`).

use std::path::PathBuf;
use std::process::Command;

fn libtorch_lib_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("LIBTORCH") {
        return Some(PathBuf::from(dir).join("lib"));
    }
    let python = if std::env::var_os("VIRTUAL_ENV").is_some() {
        "python"
    } else {
        "python3"
    };
    let out = Command::new(python)
        .args([
            "-c",
            "import torch, os; print(os.path.dirname(torch.__file__))",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let dir = text.lines().last()?.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir).join("lib"))
}

/// The folder holding `gloo/algorithm.h`, or a panic whose one line says
/// what to install: the shim cannot be compiled without Gloo's headers.
#[cfg(feature = "dist")]
fn gloo_include() -> PathBuf {
    println!("cargo:rerun-if-env-changed=DDSAS_GLOO_INCLUDE");
    let dir = std::env::var_os("DDSAS_GLOO_INCLUDE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/include"));
    if !dir.join("gloo/algorithm.h").is_file() {
        panic!(
            "the `dist` feature needs Gloo's headers: no gloo/algorithm.h under {} \
             (Debian/Ubuntu: apt-get install libgloo-dev, or set DDSAS_GLOO_INCLUDE)",
            dir.display()
        );
    }
    dir
}

/// Compiles the c10d shim: `-DUSE_C10D_GLOO` exposes ProcessGroupGloo in
/// libtorch's headers; the ABI flag must match the libtorch it links.
#[cfg(feature = "dist")]
fn compile_dist_shim(torch_lib: &std::path::Path) {
    println!("cargo:rerun-if-changed=src/nas/dist/shim.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let include = torch_lib
        .parent()
        .expect("libtorch's lib folder has a parent")
        .join("include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .include(gloo_include())
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .flag("-DUSE_C10D_GLOO")
        .file("src/nas/dist/shim.cpp")
        .compile("ddsas_dist");
}

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    if std::env::var_os("CARGO_FEATURE_ENGINE").is_none() {
        return;
    }
    let dir = libtorch_lib_dir();
    if let Some(dir) = &dir {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
    #[cfg(feature = "dist")]
    compile_dist_shim(
        dir.as_deref()
            .expect("the `dist` feature needs libtorch's folder (LIBTORCH or a Python with torch)"),
    );
}
