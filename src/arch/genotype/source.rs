//! Where a genotype the user gives comes from: the argument itself, or a
//! file named by `@FILE` or `@FILE:NAME`.
//!
//! The repositories of DARTS-family papers keep their cells in a
//! `genotypes.py`, one `NAME = Genotype(...)` assignment each, often spread
//! over several lines inside the parentheses, sometimes with aliases
//! (`DARTS = DARTS_V2`). `@genotypes.py:NAME` picks one of them as it
//! stands, so that nobody has to carry it through the shell's quoting;
//! `@FILE` takes a file holding a single genotype, in any form.
//!
//! The file is not run: its top-level statements are split the way Python
//! splits them (a newline ends one unless a bracket is open or a `\`
//! continues it), comments are blanked out, and only assignments are read.

use std::path::{Path, PathBuf};

use super::GenotypeError;

/// Aliases followed at most (`A = B`, `B = C`, ...), against cycles.
const MAX_ALIASES: usize = 16;

/// Reads `arg` with `parse`: the argument itself, or for `@FILE[:NAME]`
/// the genotype that the file holds, an error then naming the file, the
/// genotype and its line.
pub(super) fn read_with<T>(
    arg: &str,
    parse: fn(&str) -> Result<T, GenotypeError>,
) -> Result<T, GenotypeError> {
    let Some(reference) = arg.trim().strip_prefix('@') else {
        return parse(arg);
    };
    let (path, name) = split_reference(reference)?;
    let text = read_file(&path)?;
    let found = match name {
        Some(name) => named(&text, &path, name)?,
        None => only(&text, &path)?,
    };
    parse(&found.text).map_err(|e| GenotypeError(format!("{}: {}", found.origin, e.0)))
}

/// A genotype's text as found in a file, and where, for messages.
struct Found {
    text: String,
    origin: String,
}

/// `FILE` or `FILE:NAME` into the path (a leading `~/` expanded) and the
/// name. A path that exists as written wins, so that a file whose name
/// holds a `:` can still be given whole.
fn split_reference(reference: &str) -> Result<(PathBuf, Option<&str>), GenotypeError> {
    if reference.trim().is_empty() {
        return Err(GenotypeError(
            "`@` names no file: give `@FILE` (a file holding one genotype) or `@FILE:NAME` (the genotype `NAME = Genotype(...)` of a genotypes.py)".into(),
        ));
    }
    let whole = expand_home(reference);
    if whole.exists() {
        return Ok((whole, None));
    }
    let Some((file, name)) = reference.rsplit_once(':') else {
        return Ok((whole, None));
    };
    if file.is_empty() {
        return Ok((whole, None));
    }
    if is_identifier(name) {
        return Ok((expand_home(file), Some(name)));
    }
    if expand_home(file).exists() {
        return Err(GenotypeError(format!(
            "`{name}` after the `:` of `@{reference}` is not a Python name: give `@{file}:NAME`, NAME as it stands in `NAME = Genotype(...)` (letters, digits and `_`)"
        )));
    }
    Ok((whole, None))
}

/// `~/x` as `$HOME/x`, since no shell expands a `~` after `@`.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// A Python name: a letter or `_`, then letters, digits and `_`.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// The file's text, or an error naming it and saying what to check.
fn read_file(path: &Path) -> Result<String, GenotypeError> {
    let shown = path.display();
    if path.is_dir() {
        return Err(GenotypeError(format!(
            "{shown} is a folder: give the file holding the genotype, e.g. `@{shown}/genotypes.py:NAME`"
        )));
    }
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim_start_matches('\u{feff}').to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(GenotypeError(format!(
            "cannot read genotype file {shown}: it is not UTF-8 text; give a genotypes.py or a text file holding one genotype"
        ))),
        Err(e) => {
            let here = std::env::current_dir()
                .map(|d| format!(", {}", d.display()))
                .unwrap_or_default();
            Err(GenotypeError(format!(
                "cannot read genotype file {shown}: {e}; check the path after `@` (a relative path starts from the current folder{here})"
            )))
        }
    }
}

/// The genotype `name` of a Python file, aliases followed.
fn named(text: &str, path: &Path, name: &str) -> Result<Found, GenotypeError> {
    let clean = blank_comments(text);
    let all = assignments(&clean);
    let shown = path.display();
    let Some(last) = all.iter().rev().find(|a| a.name == name) else {
        return Err(GenotypeError(format!(
            "{shown} has no genotype `{name}`; {} (names are case-sensitive)",
            what_there_is(&all, &shown.to_string())
        )));
    };
    let Some(target) = follow(&all, name) else {
        return Err(GenotypeError(format!(
            "`{name}` (line {} of {shown}) is not a `Genotype(...)`; {}",
            last.line,
            what_there_is(&all, &shown.to_string())
        )));
    };
    let origin = if target.name == name {
        format!("`{name}` (line {} of {shown})", target.line)
    } else {
        format!(
            "`{name}` (= `{}`, line {} of {shown})",
            target.name, target.line
        )
    };
    Ok(Found {
        text: without_continuations(target.statement),
        origin,
    })
}

/// The one genotype of a file: its only `NAME = Genotype(...)`, or, when
/// it has none, its whole text (any form [`super::parse_any`] reads).
fn only(text: &str, path: &Path) -> Result<Found, GenotypeError> {
    let clean = blank_comments(text);
    let all = assignments(&clean);
    let shown = path.display().to_string();
    let defined: Vec<&Assignment> = all.iter().filter(|a| a.is_genotype()).collect();
    match defined.as_slice() {
        [] if clean.trim().is_empty() => Err(GenotypeError(format!(
            "{shown} is empty: it should hold one genotype, or be a genotypes.py given as `@{shown}:NAME`"
        ))),
        [] => Ok(Found {
            text: without_continuations(clean.trim()),
            origin: shown,
        }),
        [one] => named(text, path, one.name),
        _ => Err(GenotypeError(format!(
            "{shown} holds {} genotypes ({}): name one, e.g. `@{shown}:{}`",
            defined.len(),
            genotype_names(&all).join(", "),
            defined[0].name
        ))),
    }
}

/// "the genotypes there are A, B (give one as `@FILE:A`)", or that there
/// is none.
fn what_there_is(all: &[Assignment], shown: &str) -> String {
    let names = genotype_names(all);
    match names.first() {
        Some(first) => format!(
            "the genotypes there are {}: give one as `@{shown}:{first}`",
            names.join(", ")
        ),
        None => format!(
            "it has no `NAME = Genotype(...)` line at all: give a genotypes.py, or a file holding one genotype as `@{shown}`"
        ),
    }
}

/// The names that lead to a `Genotype(...)`, aliases included, each once,
/// in the order of the file.
fn genotype_names<'a>(all: &[Assignment<'a>]) -> Vec<&'a str> {
    let mut names: Vec<&str> = Vec::new();
    for a in all {
        if !names.contains(&a.name) && follow(all, a.name).is_some() {
            names.push(a.name);
        }
    }
    names
}

/// The `Genotype(...)` assignment that `name` stands for, following
/// aliases through the last assignment of each name (as Python would).
fn follow<'s, 'a>(all: &'s [Assignment<'a>], name: &str) -> Option<&'s Assignment<'a>> {
    let mut name = name;
    for _ in 0..=MAX_ALIASES {
        let a = all.iter().rev().find(|a| a.name == name)?;
        if a.is_genotype() {
            return Some(a);
        }
        name = a
            .value
            .trim_matches(|c: char| c.is_whitespace() || c == '\\');
        if !is_identifier(name) {
            return None;
        }
    }
    None
}

/// A top-level `NAME = value` statement of a Python file.
#[derive(Debug)]
struct Assignment<'a> {
    name: &'a str,
    /// Everything after the `=`.
    value: &'a str,
    /// `NAME = value`, as the parser reads it.
    statement: &'a str,
    /// 1-based line of its first character.
    line: usize,
}

impl Assignment<'_> {
    /// Whether the value is `Genotype(...)`.
    fn is_genotype(&self) -> bool {
        self.value
            .trim_start()
            .strip_prefix("Genotype")
            .is_some_and(|rest| rest.trim_start().starts_with('('))
    }
}

/// The assignments among the statements of `clean` (comments blanked).
fn assignments(clean: &str) -> Vec<Assignment<'_>> {
    statements(clean)
        .into_iter()
        .filter_map(|(start, statement)| {
            let skipped = statement.len() - statement.trim_start().len();
            let line = 1 + clean[..start + skipped].matches('\n').count();
            assignment(statement.trim_start(), line)
        })
        .collect()
}

/// `NAME = value` (not `NAME == ...`), else none.
fn assignment(statement: &str, line: usize) -> Option<Assignment<'_>> {
    let end = statement
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(statement.len());
    let name = &statement[..end];
    let value = statement[end..].trim_start().strip_prefix('=')?;
    if !is_identifier(name) || value.starts_with('=') {
        return None;
    }
    Some(Assignment {
        name,
        value,
        statement,
        line,
    })
}

/// Python's logical lines: (byte offset, text). A newline ends a statement
/// unless a bracket is open or a `\` continues the line.
fn statements(clean: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let (mut start, mut depth) = (0, 0usize);
    let mut quote: Option<char> = None;
    let mut chars = clean.char_indices();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), _) if c == q => quote = None,
            (Some(_), '\n') => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth = depth.saturating_sub(1),
            (None, '\n') if depth == 0 && !continued(&clean[..i]) => {
                out.push((start, &clean[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push((start, &clean[start..]));
    out
}

/// The statement with each line-ending `\` (Python's explicit line
/// joining) made a space, which is what it means to the parser; the other
/// characters stay where they are, so positions in errors still hold.
fn without_continuations(statement: &str) -> String {
    statement.replace("\\\r\n", " \r\n").replace("\\\n", " \n")
}

/// Whether a line ends in a `\` (before an optional `\r`).
fn continued(before_newline: &str) -> bool {
    before_newline.trim_end_matches('\r').ends_with('\\')
}

/// The text with every `# comment` replaced by spaces (line numbers and
/// the other characters stay where they are); a `#` inside quotes stays.
fn blank_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut quote, mut comment, mut escaped) = (None::<char>, false, false);
    for c in text.chars() {
        if c == '\n' {
            (quote, comment, escaped) = (None, false, false);
        } else if comment {
            out.push(' ');
            continue;
        } else if escaped {
            escaped = false;
        } else if let Some(q) = quote {
            escaped = c == '\\';
            if c == q {
                quote = None;
            }
        } else if c == '\'' || c == '"' {
            quote = Some(c);
        } else if c == '#' {
            comment = true;
            out.push(' ');
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_span_brackets_and_continuations_and_skip_comments() {
        let text = "from collections import namedtuple\nA = Genotype(\n  normal=[  # the normal cell\n    ('x', 0)],\n)\nB = \\\n  A\nC = 'a # b'\n";
        let clean = blank_comments(text);
        let all = assignments(&clean);
        let names: Vec<(&str, usize)> = all.iter().map(|a| (a.name, a.line)).collect();
        assert_eq!(names, [("A", 2), ("B", 6), ("C", 8)]);
        assert!(all[0].is_genotype() && !all[0].statement.contains("the normal cell"));
        assert_eq!(all[2].value.trim(), "'a # b'");
        assert_eq!(genotype_names(&all), ["A", "B"]);
        assert_eq!(follow(&all, "B").map(|a| a.name), Some("A"));
    }

    #[test]
    fn alias_cycles_and_comparisons_are_no_genotype() {
        let clean = blank_comments("A = B\nB = A\nC == Genotype(x)\n");
        let all = assignments(&clean);
        assert!(follow(&all, "A").is_none());
        assert_eq!(all.len(), 2);
        assert!(genotype_names(&all).is_empty());
    }

    #[test]
    fn a_reference_splits_at_the_last_colon_only_before_a_python_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("g.py");
        std::fs::write(&file, "").unwrap();
        let f = file.display().to_string();
        assert_eq!(
            split_reference(&format!("{f}:DARTS_V2")).unwrap(),
            (file.clone(), Some("DARTS_V2"))
        );
        assert_eq!(split_reference(&f).unwrap(), (file.clone(), None));
        let e = split_reference(&format!("{f}:PC-DARTS"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`PC-DARTS`") && e.contains("not a Python name"),
            "{e}"
        );
        let e = split_reference(" ").unwrap_err().to_string();
        assert!(e.contains("`@` names no file"), "{e}");
    }
}
