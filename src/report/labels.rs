//! How runs, methods, datasets and spaces are written in figures, tables
//! and messages: plain text helpers with no knowledge of the run history,
//! so that every part of the report (and the CLI) can use them.

use crate::arch::space::SpaceKind;
use crate::config::Method;
use crate::data::DatasetKind;

/// How a method is written in figures (a run that searches nothing by its
/// stored method text, `train`).
pub fn method_label(method: Option<Method>) -> &'static str {
    match method {
        Some(Method::Ddsas) => "DDSAS",
        Some(Method::Darts) => "DARTS",
        Some(Method::Gdas) => "GDAS",
        None => crate::store::method_text(None),
    }
}

/// How a dataset is written in figures.
pub fn dataset_label(dataset: DatasetKind) -> &'static str {
    match dataset {
        DatasetKind::Digits => "Digits",
        DatasetKind::Cifar10 => "CIFAR-10",
        DatasetKind::Cifar100 => "CIFAR-100",
        DatasetKind::ImageNet => "ImageNet",
    }
}

/// How a search space is written in figures.
pub fn space_label(space: SpaceKind) -> &'static str {
    match space {
        SpaceKind::Darts => "DARTS space",
        SpaceKind::Nb201 => "NAS-Bench-201",
    }
}

/// "CIFAR-10, DARTS space".
pub fn group_label(dataset: DatasetKind, space: SpaceKind) -> String {
    format!("{}, {}", dataset_label(dataset), space_label(space))
}

/// "runs 3, 4, 7" (ranges compressed: "runs 3–9, 12").
pub fn runs_text(ids: &[i64]) -> String {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        parts.push(if j >= i + 2 {
            format!("{}–{}", ids[i], ids[j])
        } else if j == i + 1 {
            format!("{}, {}", ids[i], ids[j])
        } else {
            ids[i].to_string()
        });
        i = j + 1;
    }
    let word = if ids.len() == 1 { "run" } else { "runs" };
    format!("{word} {}", parts.join(", "))
}

/// `n` and a noun, plural unless `n` is 1: "1 seed", "3 seeds".
pub fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ranges_are_compressed() {
        assert_eq!(runs_text(&[5, 3, 4, 7, 9, 10]), "runs 3–5, 7, 9, 10");
        assert_eq!(runs_text(&[2]), "run 2");
    }

    #[test]
    fn nouns_are_plural_unless_one() {
        assert_eq!(plural(1, "seed"), "1 seed");
        assert_eq!(plural(0, "run"), "0 runs");
        assert_eq!(plural(3, "seed"), "3 seeds");
    }
}
