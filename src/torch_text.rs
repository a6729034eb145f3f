//! libtorch's error texts, made readable: a C++ exception reaches Rust as
//! one string holding the message, the C++ source location and dozens of
//! stack frames. Users read the first line; the whole text belongs in the
//! run's log.

/// The first non-empty line of `text`, trimmed.
pub fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(text)
}

/// The first line of libtorch's own message, without tch's `unwrap` and
/// `Torch("...")` wrapping (whose newlines arrive escaped as `\n`) or the
/// C++ source location.
pub fn one_line(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_libtorch_text_becomes_its_first_line() {
        let text = "Internal torch error: PytorchStreamReader failed reading zip archive: failed finding central directory\nException raised from valid at ../caffe2/serialize/inline_container.cc:185 (most recent call first):\nframe #0: c10::Error::Error";
        assert_eq!(
            one_line(text),
            "PytorchStreamReader failed reading zip archive: failed finding central directory"
        );
        assert_eq!(first_line("\n  a \nb"), "a");
        // As tch's `unwrap` panics: the Debug form, newlines escaped.
        let panic = r#"called `Result::unwrap()` on an `Err` value: Torch("open file failed\nException raised from x\nframe #0: y")"#;
        assert_eq!(one_line(panic), "open file failed");
    }
}
