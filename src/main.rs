//! The `ddsas` binary: everything lives in the library; see `ddsas::cli`.

fn main() -> std::process::ExitCode {
    ddsas::cli::main()
}
