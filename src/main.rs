//! The `ddsas` binary: everything lives in the library; see `ddsas::cli`.

/// jemalloc for every allocation of the process, libtorch's too (the
/// crate's `unprefixed_malloc` feature makes it the C `malloc`): glibc's
/// malloc spent about a tenth of a CPU search step returning and
/// re-faulting the large, short-lived blocks of activations (BENCHMARKS.md).
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    ddsas::cli::main()
}
