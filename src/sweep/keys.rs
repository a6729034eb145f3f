//! Config keys for sweep files: where a key is written in the file (for
//! error locations); which keys exist and which are near a typo live in
//! `crate::config`, shared with `ddsas search`.

pub(crate) use crate::config::{is_config_key, key_suggestion as suggestion};

/// Best-effort place (1-based line, column) where `key` is written inside
/// the top-level section `section` of a YAML text (block or flow style);
/// `None` when it cannot be found. Used only to point error messages at the
/// file: the expansion works on parsed values.
pub(crate) fn locate(text: &str, section: &str, key: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| key_at(l, 0, section) == Some(0))?;
    // The section's own line (after `section:`) and its indented body.
    let first_offset = lines[start].find(':').map_or(0, |c| c + 1);
    if let Some(col) = find_key(&lines[start][first_offset..], key) {
        return Some((start + 1, first_offset + col + 1));
    }
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !line.starts_with([' ', '\t', '-']) {
            break;
        }
        if let Some(col) = find_key(line, key) {
            return Some((i + 1, col + 1));
        }
    }
    None
}

/// Column of a top-level `name:` at `indent`, if the line is one.
fn key_at(line: &str, indent: usize, name: &str) -> Option<usize> {
    let rest = line.get(indent..)?;
    let rest = rest.strip_prefix(name)?;
    rest.trim_start().starts_with(':').then_some(indent)
}

/// Column (0-based) of `key` used as a mapping key in `line`: preceded by
/// the line start, whitespace, `{`, `,`, `-` or a quote, and followed by an
/// optional quote, spaces and `:`.
fn find_key(line: &str, key: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(pos) = line[from..].find(key) {
        let at = from + pos;
        let before = line[..at].chars().next_back();
        let boundary =
            before.is_none_or(|c| c.is_whitespace() || matches!(c, '{' | ',' | '-' | '"' | '\''));
        let after = line[at + key.len()..]
            .trim_start_matches(['"', '\''])
            .trim_start();
        if boundary && after.starts_with(':') {
            return Some(if matches!(before, Some('"' | '\'')) {
                at - 1
            } else {
                at
            });
        }
        from = at + key.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_config() {
        assert!(is_config_key("L"));
        assert!(is_config_key("space_schedule.initial"));
        assert!(!is_config_key("LL"));
    }

    #[test]
    fn typos_get_near_keys() {
        assert!(suggestion("LL").contains("`L`"), "{}", suggestion("LL"));
        assert!(suggestion("init_channel").contains("`init_channels`"));
        assert!(suggestion("epoch").contains("`epochs`"));
        assert!(suggestion("zzzzzzzz").starts_with("the config keys are"));
    }

    #[test]
    fn locate_finds_block_and_flow_keys() {
        let text = "name: x\nbase:\n  L: 10\ngrid:\n  M: [1, 2]\n  L: [3]\nzip: {w_lr: [1]}\n";
        assert_eq!(locate(text, "grid", "L"), Some((6, 3)));
        assert_eq!(locate(text, "base", "L"), Some((3, 3)));
        assert_eq!(locate(text, "zip", "w_lr"), Some((7, 7)));
        assert_eq!(locate(text, "grid", "w_lr"), None);
        let runs = "runs:\n  - method: darts\n  - {method: gdas, grid: {L: [1]}}\n";
        assert_eq!(locate(runs, "runs", "method"), Some((2, 5)));
        assert_eq!(locate(runs, "runs", "L"), Some((3, 27)));
    }
}
