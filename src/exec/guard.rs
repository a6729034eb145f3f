//! Panics inside a search: tch turns most libtorch errors (out of memory,
//! a shape libtorch refuses) into panics. A run must not be left `running`
//! because of one, and the user should read one line, not a C++ backtrace.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

thread_local! {
    /// Set while [`catch`] runs: its panics are reported by the caller.
    static CAUGHT: Cell<bool> = const { Cell::new(false) };
}

/// Replaces the default panic message with a short one that says it is a
/// bug; panics inside [`catch`] print nothing (the caller reports them).
pub fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        if CAUGHT.with(Cell::get) {
            return;
        }
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        crate::errln!(
            "error: internal error{at}: {}\n(this is a bug in ddsas; please report it with the command that caused it)",
            first_line(payload_text(info.payload()))
        );
    }));
}

/// Runs `f`, turning a panic into an error message: libtorch's first line,
/// plus what to do when it ran out of memory.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let was = CAUGHT.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CAUGHT.with(|c| c.set(was));
    result.map_err(|payload| describe(payload_text(payload.as_ref())))
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic without a message"
    }
}

fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(text)
}

/// The first line of libtorch's own message, without tch's `unwrap` and
/// `Torch("...")` wrapping (whose newlines arrive escaped as `\n`) or the
/// C++ source location.
fn torch_message(text: &str) -> String {
    let text = text.replace("\\n", "\n");
    let text = text
        .trim_start_matches("called `Result::unwrap()` on an `Err` value: ")
        .trim_start_matches("Torch(\"")
        .trim_start_matches("Internal torch error: ");
    let line = first_line(text);
    let line = match line.strip_prefix("[enforce fail at ") {
        Some(rest) => rest.split_once("] ").map_or(rest, |(_, msg)| msg),
        None => line,
    };
    line.trim_end_matches("\")").trim().to_string()
}

fn describe(text: &str) -> String {
    let line = torch_message(text);
    let lower = text.to_lowercase();
    if lower.contains("out of memory") || lower.contains("tried to allocate") {
        format!("out of memory: {line} Lower batch_size, init_channels or layers.")
    } else {
        format!("libtorch error: {line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_one_line_messages() {
        assert_eq!(catch(|| 7), Ok(7));
        // As tch's unwrap prints it: Debug of Torch(..), newlines escaped.
        let e = catch(|| -> () {
            panic!(
                "called `Result::unwrap()` on an `Err` value: Torch(\"[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: you tried to allocate 12 bytes.\\nframe #0: c10::Throw\")"
            )
        })
        .unwrap_err();
        assert_eq!(
            e,
            "out of memory: err == 0. DefaultCPUAllocator: you tried to allocate 12 bytes. Lower batch_size, init_channels or layers."
        );
        let e = catch(|| -> () { panic!("Kernel size can't be greater\nmore") }).unwrap_err();
        assert_eq!(e, "libtorch error: Kernel size can't be greater");
    }
}
