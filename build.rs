//! Bakes the libtorch library folder into the rpath of every binary and test
//! of this package, so that `ddsas` runs without `LD_LIBRARY_PATH`. Without
//! the `engine` feature nothing links libtorch, so no rpath is added and no
//! Python is asked where torch is (a machine without torch builds that way).
//!
//! It compiles `src/nas/bn_relu.cpp`, the batch norm (+ ReLU) op of our
//! own (`nas::fused`), against the same libtorch's headers, as torch-sys
//! compiles its own wrapper.
//!
//! With the `dist` feature it also compiles `src/nas/dist/shim.cpp`, the C
//! side of `nas::dist`, against the same libtorch's c10d headers (the way
//! torch-sys compiles its own wrapper) and Gloo's headers from
//! `DDSAS_GLOO_INCLUDE` or the system (Debian: `libgloo-dev`). Its NCCL
//! half (`shim_nccl.cpp`, cfg `ddsas_nccl`) is built only where `nccl.h`
//! and the CUDA runtime headers (with `crt/host_defines.h`) are found, in
//! `DDSAS_CUDA_INCLUDE` or the torch wheel's `nvidia/` folders (otherwise
//! one cargo warning says it is left out), and as a shared library of its
//! own, `libddsas_nccl.so` beside the binary, which `nas::dist` loads only
//! for NCCL: linked in, it would load libtorch_cuda into every command.

#[cfg(feature = "engine")]
use std::path::PathBuf;
#[cfg(feature = "engine")]
use std::process::Command;

#[cfg(feature = "engine")]
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

/// Where the shim's NCCL path looks for headers: the folders of
/// `DDSAS_CUDA_INCLUDE` (`:`-separated), then the CUDA wheels beside torch
/// in its site-packages (CUDA 13's `nvidia/cu13`, CUDA 12's per-library
/// folders).
#[cfg(feature = "dist")]
fn cuda_include_candidates(torch_lib: &std::path::Path) -> Vec<PathBuf> {
    println!("cargo:rerun-if-env-changed=DDSAS_CUDA_INCLUDE");
    let mut dirs: Vec<PathBuf> = std::env::var_os("DDSAS_CUDA_INCLUDE")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    if let Some(site) = torch_lib.parent().and_then(|torch| torch.parent()) {
        for sub in ["nccl", "cu13", "cuda_runtime", "cuda_nvcc", "cuda_crt"] {
            dirs.push(site.join("nvidia").join(sub).join("include"));
        }
    }
    dirs
}

/// The include folders of the NCCL path, or the first header none of the
/// candidates holds: `nccl.h`, the CUDA runtime's `cuda_runtime_api.h`,
/// and two that the runtime headers include and the torch wheel's CUDA 13
/// folder lacks: `crt/host_defines.h` (pip's `nvidia-cuda-crt` adds it)
/// and CCCL's `nv/target` (pip's `nvidia-cuda-cccl`).
#[cfg(feature = "dist")]
fn nccl_includes(candidates: &[PathBuf]) -> Result<Vec<PathBuf>, &'static str> {
    let mut found = Vec::new();
    for header in [
        "nccl.h",
        "cuda_runtime_api.h",
        "crt/host_defines.h",
        "nv/target",
    ] {
        let dir = candidates
            .iter()
            .find(|d| d.join(header).is_file())
            .ok_or(header)?;
        println!("cargo:rerun-if-changed={}", dir.join(header).display());
        if !found.contains(dir) {
            found.push(dir.clone());
        }
    }
    Ok(found)
}

/// Builds `libddsas_nccl.so` from `shim_nccl.cpp` where NCCL's and CUDA's
/// headers are found (and says in one warning line when they are not);
/// whether it did. `shim` is the static shim's build, whose compiler and
/// flags the library shares.
#[cfg(feature = "dist")]
fn build_nccl_library(shim: &cc::Build, torch_lib: &std::path::Path) -> bool {
    println!("cargo:rerun-if-changed=src/nas/dist/shim_nccl.cpp");
    let candidates = cuda_include_candidates(torch_lib);
    let dirs = match nccl_includes(&candidates) {
        Ok(dirs) => dirs,
        Err(missing) => {
            println!(
                "cargo:warning=NCCL left out of the dist shim (no {missing} found; --nproc trains with Gloo only): install pip's nvidia-cuda-crt and nvidia-cuda-cccl into the torch venv (scripts/env.sh does) or set DDSAS_CUDA_INCLUDE"
            );
            return false;
        }
    };
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let library = out_dir.join(NCCL_LIBRARY);
    let mut build = shim.clone();
    // c10's CUDA headers align a pool to the compiler's cache-line guess,
    // and g++ warns of it in every file that includes them.
    build
        .includes(&dirs)
        .flag("-DUSE_C10D_NCCL")
        .flag_if_supported("-Wno-interference-size");
    let mut cmd = build.get_compiler().to_command();
    cmd.args(["-shared", "-Wl,--no-undefined", "-o"])
        .arg(&library)
        .arg("src/nas/dist/shim_nccl.cpp")
        .arg(format!("-L{}", torch_lib.display()))
        .arg(format!("-Wl,-rpath,{}", torch_lib.display()))
        .args(["-ltorch_cuda", "-ltorch_cpu", "-lc10_cuda", "-lc10"]);
    let status = cmd.status().expect("the C++ compiler runs");
    assert!(status.success(), "building {NCCL_LIBRARY} failed: {cmd:?}");
    // Beside the binaries of this profile (`target/release/`), where
    // `nas::dist` looks first; the tests' binaries find it in OUT_DIR.
    if let Some(profile_dir) = out_dir.ancestors().nth(3) {
        let _ = std::fs::copy(&library, profile_dir.join(NCCL_LIBRARY));
    }
    println!("cargo:rustc-cfg=ddsas_nccl");
    println!("cargo:rustc-env=DDSAS_NCCL_BUILT_AT={}", library.display());
    true
}

/// The file name of the NCCL half of the shim.
#[cfg(feature = "dist")]
const NCCL_LIBRARY: &str = "libddsas_nccl.so";

/// A C++ build against libtorch's headers; the ABI flag must match the
/// libtorch it links.
#[cfg(feature = "engine")]
fn torch_cpp_build(torch_lib: &std::path::Path) -> cc::Build {
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let include = torch_lib
        .parent()
        .expect("libtorch's lib folder has a parent")
        .join("include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT");
    build
}

/// Compiles the batch norm (+ ReLU) op; `-O3` for its loops, which the
/// compiler vectorises (AVX2 where the CPU has it, chosen at run time), and
/// `-fopenmp` for libtorch's `at::parallel_for`, whose OpenMP form is in
/// its headers (without the flag it runs on one thread). The OpenMP calls
/// link against the libgomp that libtorch ships and loads, so one runtime
/// and one thread pool serve both.
#[cfg(feature = "engine")]
fn compile_kernels(torch_lib: &std::path::Path) {
    println!("cargo:rerun-if-changed=src/nas/bn_relu.cpp");
    torch_cpp_build(torch_lib)
        .opt_level(3)
        .flag("-fopenmp")
        .file("src/nas/bn_relu.cpp")
        .compile("ddsas_kernels");
    println!("cargo:rustc-link-search=native={}", torch_lib.display());
    println!("cargo:rustc-link-arg=-l:libgomp.so.1");
}

/// Compiles the c10d shim: `-DUSE_C10D_GLOO` exposes ProcessGroupGloo in
/// libtorch's headers.
#[cfg(feature = "dist")]
fn compile_dist_shim(torch_lib: &std::path::Path) {
    println!("cargo:rerun-if-changed=src/nas/dist/shim.cpp");
    let mut build = torch_cpp_build(torch_lib);
    build
        .include(gloo_include())
        .flag("-DUSE_C10D_GLOO")
        .file("src/nas/dist/shim.cpp");
    build_nccl_library(&build, torch_lib);
    build.compile("ddsas_dist");
}

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    println!("cargo:rustc-check-cfg=cfg(ddsas_nccl)");
    #[cfg(feature = "engine")]
    {
        let dir = libtorch_lib_dir()
            .expect("the engine needs libtorch's folder (LIBTORCH or a Python with torch)");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        compile_kernels(&dir);
        #[cfg(feature = "dist")]
        compile_dist_shim(&dir);
    }
}
