//! `ddsas nb201 import`: NAS-Bench-201 accuracies from the plain pickle
//! that NASLib distributes (`nb201_cifar10_full_training.pickle` and its
//! CIFAR-100 / ImageNet16-120 siblings), laid out as
//! `{arch_str: {dataset: {'eval_acc1es': [acc per epoch], ...}}}`.
//!
//! Why the last element of `eval_acc1es`: it is the accuracy at the end of
//! the benchmark's training, and NASLib's own `query(..., epoch=-1)` (its
//! default) returns exactly that element. NASLib stores CIFAR-10 under
//! `cifar10-valid` and maps `cifar10` to it; we do the same, falling back to
//! a `cifar10` entry if a file has one instead. Values are returned in
//! percent (NASLib's files are; a file of fractions is scaled), the unit of
//! the `nb201_accuracy` table.
//!
//! The file is read with the crate's strict pickle reader
//! (`crate::data::pickle`), which executes nothing: nested dicts, lists,
//! strings, floats and numpy scalars are all such a file needs.

use crate::data::pickle::{self, Obj, Value};

use super::ReportError;

/// The accuracies read from one file for one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Nb201Table {
    /// `(arch string, accuracy in percent)`, in file order.
    pub rows: Vec<(String, f64)>,
    /// The per-architecture entry that was read (`cifar10-valid`, ...).
    pub entry: String,
    /// `percent` or `fraction`: the file's unit, judged from its values.
    pub unit: &'static str,
}

/// The entries tried, in order, for a `--dataset` name.
fn entries_for(dataset: &str) -> Vec<&str> {
    match dataset {
        "cifar10" => vec!["cifar10-valid", "cifar10"],
        other => vec![other],
    }
}

/// Reads the table of `dataset` from the bytes of a NASLib NB201 pickle.
///
/// Strict: the top level must be a dict of arch strings, every architecture
/// must have the dataset's entry with a non-empty `eval_acc1es` list of
/// numbers, and the file must hold at least one architecture; otherwise the
/// error names the architecture and the byte offset at fault.
pub fn read_table(bytes: &[u8], dataset: &str) -> Result<Nb201Table, ReportError> {
    let fail = |msg: String| ReportError::Nb201(msg);
    let root = pickle::parse(bytes).map_err(|e| fail(format!("not a readable pickle: {e}")))?;
    let Obj::Dict(items) = &root.obj else {
        return Err(fail(format!(
            "the pickle holds a {}, not the dict {{arch_str: {{dataset: {{'eval_acc1es': [...]}}}}}} of NASLib's NAS-Bench-201 files",
            root.type_name()
        )));
    };
    let items = items.borrow();
    let tried = entries_for(dataset);
    let mut entry: Option<String> = None;
    let mut rows = Vec::with_capacity(items.len());
    for (key, value) in items.iter() {
        let arch = text(key).ok_or_else(|| {
            fail(format!(
                "byte offset {}: a top-level key is a {}, not an architecture string",
                key.at,
                key.type_name()
            ))
        })?;
        if !looks_like_arch(&arch) {
            return Err(fail(format!(
                "byte offset {}: top-level key {arch:?} is not a NAS-Bench-201 architecture string like '|nor_conv_3x3~0|+|...|'",
                key.at
            )));
        }
        let per_dataset = match &entry {
            Some(e) => value.dict_get(e).map(|v| (e.clone(), v)),
            None => tried
                .iter()
                .find_map(|e| value.dict_get(e).map(|v| (e.to_string(), v))),
        };
        let Some((name, per_dataset)) = per_dataset else {
            return Err(fail(format!(
                "byte offset {}: architecture {arch} has no entry {} (its keys: {})",
                value.at,
                match &entry {
                    Some(e) => format!("`{e}`"),
                    None => tried
                        .iter()
                        .map(|t| format!("`{t}`"))
                        .collect::<Vec<_>>()
                        .join(" or "),
                },
                dict_keys(value)
            )));
        };
        entry.get_or_insert(name.clone());
        let accs = per_dataset.dict_get("eval_acc1es").ok_or_else(|| {
            fail(format!(
                "byte offset {}: architecture {arch}, entry `{name}` has no 'eval_acc1es' (its keys: {})",
                per_dataset.at,
                dict_keys(&per_dataset)
            ))
        })?;
        let last = last_number(&accs).map_err(|why| {
            fail(format!(
                "byte offset {}: architecture {arch}, entry `{name}`: 'eval_acc1es' {why}",
                accs.at
            ))
        })?;
        rows.push((arch, last));
    }
    let entry = entry.ok_or_else(|| fail("the pickle's dict holds no architectures".into()))?;
    let unit = if rows.iter().all(|(_, a)| *a <= 1.0) {
        for (_, acc) in &mut rows {
            *acc *= 100.0;
        }
        "fraction"
    } else {
        "percent"
    };
    Ok(Nb201Table { rows, entry, unit })
}

fn text(v: &Value) -> Option<String> {
    match &v.obj {
        Obj::Str(s) => utf8(&**s),
        Obj::Bytes(b) => utf8(&b[..]),
        _ => None,
    }
}

/// Text of a `str` (whether the reader keeps it as `str` or UTF-8 bytes) or
/// of UTF-8 `bytes`.
fn utf8<T: AsRef<[u8]> + ?Sized>(t: &T) -> Option<String> {
    std::str::from_utf8(t.as_ref()).ok().map(str::to_string)
}

fn dict_keys(v: &Value) -> String {
    match &v.obj {
        Obj::Dict(items) => {
            let items = items.borrow();
            let mut keys: Vec<String> =
                items.iter().filter_map(|(k, _)| text(k)).take(12).collect();
            if items.len() > 12 {
                keys.push("...".into());
            }
            if keys.is_empty() {
                "none".into()
            } else {
                keys.join(", ")
            }
        }
        _ => format!("it is a {}, not a dict", v.type_name()),
    }
}

/// `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`: six edges in three node groups.
fn looks_like_arch(s: &str) -> bool {
    let groups: Vec<&str> = s.split('+').collect();
    groups.len() == 3
        && groups.iter().enumerate().all(|(i, g)| {
            let edges: Vec<&str> = g.trim_matches('|').split('|').collect();
            g.starts_with('|')
                && g.ends_with('|')
                && edges.len() == i + 1
                && edges.iter().all(|e| e.contains('~'))
        })
}

fn last_number(v: &Value) -> Result<f64, String> {
    let items: Vec<Value> = match &v.obj {
        Obj::List(l) => l.borrow().clone(),
        Obj::Tuple(t) => t.to_vec(),
        _ => return Err(format!("is a {}, not a list", v.type_name())),
    };
    let last = items.last().ok_or_else(|| "is an empty list".to_string())?;
    match last.obj {
        Obj::Float(f) if f.is_finite() => Ok(f),
        Obj::Int(i) => Ok(i as f64),
        _ => Err(format!("ends with a {}, not a number", last.type_name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A protocol-2 pickle of `{arch: {entry: {'eval_acc1es': accs}}}`.
    fn pickle(archs: &[(&str, &str, &[f64])]) -> Vec<u8> {
        let mut p = vec![0x80, 2, b'}', b'('];
        let s = |p: &mut Vec<u8>, t: &str| {
            p.push(b'X');
            p.extend_from_slice(&(t.len() as u32).to_le_bytes());
            p.extend_from_slice(t.as_bytes());
        };
        for (arch, entry, accs) in archs {
            s(&mut p, arch);
            p.extend_from_slice(b"}(");
            s(&mut p, entry);
            p.push(b'}');
            s(&mut p, "eval_acc1es");
            p.extend_from_slice(b"](");
            for (i, a) in accs.iter().enumerate() {
                // NASLib files mix Python floats and numpy scalars.
                if i % 2 == 0 {
                    p.push(b'G');
                    p.extend_from_slice(&a.to_be_bytes());
                } else {
                    p.extend(crate::data::pickle::numpy_f64_protocol2(*a));
                }
            }
            p.extend_from_slice(b"es");
            p.push(b'u');
        }
        p.extend_from_slice(b"u.");
        p
    }

    const A: &str =
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|";
    const B: &str =
        "|skip_connect~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|";

    #[test]
    fn last_eval_accuracy_of_cifar10_valid() {
        let bytes = pickle(&[
            (A, "cifar10-valid", &[10.0, 80.5, 91.25]),
            (B, "cifar10-valid", &[5.0, 60.0]),
        ]);
        let t = read_table(&bytes, "cifar10").unwrap();
        assert_eq!(t.entry, "cifar10-valid");
        assert_eq!(t.unit, "percent");
        assert_eq!(t.rows, vec![(A.to_string(), 91.25), (B.to_string(), 60.0)]);
    }

    #[test]
    fn wrong_dataset_and_empty_lists_are_named() {
        let bytes = pickle(&[(A, "cifar100", &[1.0])]);
        let e = read_table(&bytes, "cifar10").unwrap_err().to_string();
        assert!(e.contains("cifar10-valid") && e.contains("cifar100"), "{e}");
        let bytes = pickle(&[(A, "cifar100", &[])]);
        let e = read_table(&bytes, "cifar100").unwrap_err().to_string();
        assert!(e.contains("empty list") && e.contains(A), "{e}");
        let e = read_table(b"\x80\x02N.", "cifar100")
            .unwrap_err()
            .to_string();
        assert!(e.contains("None"), "{e}");
        let bytes = pickle(&[("not-an-arch", "cifar100", &[1.0])]);
        let e = read_table(&bytes, "cifar100").unwrap_err().to_string();
        assert!(e.contains("not-an-arch"), "{e}");
    }
}
