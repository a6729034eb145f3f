//! Config keys for sweep files: which keys exist, which exist near a typo,
//! and where a key is written in the file (for error locations).

use std::sync::OnceLock;

use crate::config::SearchConfig;

/// The top-level keys of a search config, in declaration order (taken from
/// the serialized default config, so it can never drift from `SearchConfig`):
/// what sweep files may vary, and the row order of config comparisons.
pub fn config_keys() -> &'static [String] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let value =
            serde_yaml::to_value(SearchConfig::default()).expect("a config always serializes");
        value
            .as_mapping()
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// Whether a (possibly dotted) key starts with a real config key.
pub(crate) fn is_config_key(key: &str) -> bool {
    let head = key.split('.').next().unwrap_or(key);
    config_keys().iter().any(|k| k == head)
}

/// "did you mean ..." for an unknown key: the config keys within a small
/// edit distance, or sharing a case-insensitive prefix; else every key.
pub(crate) fn suggestion(key: &str) -> String {
    let head = key.split('.').next().unwrap_or(key);
    let lower = head.to_lowercase();
    let near: Vec<&str> = config_keys()
        .iter()
        .filter(|k| {
            let kl = k.to_lowercase();
            kl == lower
                || levenshtein(&kl, &lower) <= (head.len() / 3).max(1)
                || (lower.len() >= 3
                    && (kl.starts_with(&lower) || lower.starts_with(&kl) && kl.len() >= 3))
        })
        .map(String::as_str)
        .collect();
    if near.is_empty() {
        format!("the config keys are {}", config_keys().join(", "))
    } else {
        format!(
            "did you mean {}? (the config keys are {})",
            near.iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(" or "),
            config_keys().join(", ")
        )
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

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
