//! Panics inside a search: tch turns most libtorch errors (out of memory,
//! a shape libtorch refuses) into panics. A run must not be left `running`
//! because of one, and the user should read one line, not a C++ backtrace.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

use crate::torch_text;

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
            torch_text::one_line(payload_text(info.payload()))
        );
    }));
}

/// A panic caught by [`catch`]: one line for the user, the whole text for
/// the run's log.
#[derive(Debug, Clone, PartialEq)]
pub struct Caught {
    /// libtorch's first line, plus what to do when it ran out of memory.
    pub message: String,
    /// The panic's whole text (libtorch's C++ frames included).
    pub detail: String,
}

/// Runs `f`, turning a panic into an error: libtorch's first line, plus
/// what to do when it ran out of memory, and the whole text.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Caught> {
    let was = CAUGHT.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CAUGHT.with(|c| c.set(was));
    result.map_err(|payload| {
        let text = payload_text(payload.as_ref());
        Caught {
            message: describe(text),
            detail: text.replace("\\n", "\n"),
        }
    })
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

fn describe(text: &str) -> String {
    let line = torch_text::one_line(text);
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
        let message = |r: Result<(), Caught>| r.unwrap_err().message;
        // As tch's unwrap prints it: Debug of Torch(..), newlines escaped.
        let caught = catch(|| -> () {
            panic!(
                "called `Result::unwrap()` on an `Err` value: Torch(\"[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: you tried to allocate 12 bytes.\\nframe #0: c10::Throw\")"
            )
        })
        .unwrap_err();
        assert!(caught.detail.contains("\nframe #0: c10::Throw"));
        assert_eq!(
            caught.message,
            "out of memory: err == 0. DefaultCPUAllocator: you tried to allocate 12 bytes. Lower batch_size, init_channels or layers."
        );
        let e = message(catch(|| -> () {
            panic!("Kernel size can't be greater\nmore")
        }));
        assert_eq!(e, "libtorch error: Kernel size can't be greater");
    }
}
