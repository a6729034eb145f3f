//! The data folder: where `ddsas data get` puts datasets and where a search
//! or a train run looks for CIFAR when its config sets no `data_dir`.
//!
//! One rule for every command, so that `ddsas data get cifar10` followed by
//! `ddsas search --set dataset=cifar10` finds the data without a path:
//! `DDSAS_DATA` if set, else `data/` of the ddsas cache (`DDSAS_CACHE`, the
//! folder `scripts/env.sh` keeps PyTorch in), else
//! `$XDG_CACHE_HOME/ddsas/data`, else `~/.cache/ddsas/data`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment variable naming the data folder.
pub const DATA_ENV: &str = "DDSAS_DATA";

/// A data folder and what chose it, for messages ("from DDSAS_DATA").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataHome {
    /// The folder, absolute (it may not exist yet).
    pub dir: PathBuf,
    /// What chose it: `DDSAS_DATA`, `DDSAS_CACHE`, `XDG_CACHE_HOME` or `HOME`.
    pub from: &'static str,
}

/// The data folder of this process's environment; `None` only when none of
/// `DDSAS_DATA`, `DDSAS_CACHE`, `XDG_CACHE_HOME` and `HOME` is set.
pub fn data_home() -> Option<DataHome> {
    data_home_from(|name| std::env::var_os(name))
}

/// [`data_home`] with the environment given as a lookup, so that tests do
/// not have to change the process's environment.
pub fn data_home_from(env: impl Fn(&str) -> Option<OsString>) -> Option<DataHome> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let (dir, from) = if let Some(dir) = set(DATA_ENV) {
        (dir, DATA_ENV)
    } else if let Some(cache) = set("DDSAS_CACHE") {
        (cache.join("data"), "DDSAS_CACHE")
    } else if let Some(cache) = set("XDG_CACHE_HOME") {
        (cache.join("ddsas").join("data"), "XDG_CACHE_HOME")
    } else {
        (
            set("HOME")?.join(".cache").join("ddsas").join("data"),
            "HOME",
        )
    };
    Some(DataHome {
        dir: absolute(&dir),
        from,
    })
}

/// `path` made absolute against the current folder (without resolving
/// links: the folder may not exist yet).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home(vars: &[(&str, &str)]) -> Option<DataHome> {
        data_home_from(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn ddsas_data_wins_then_the_caches_then_home() {
        let all = [
            ("DDSAS_DATA", "/d"),
            ("DDSAS_CACHE", "/c"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(home(&all).unwrap().dir, PathBuf::from("/d"));
        assert_eq!(home(&all[1..]).unwrap().dir, PathBuf::from("/c/data"));
        assert_eq!(home(&all[2..]).unwrap().dir, PathBuf::from("/x/ddsas/data"));
        let h = home(&all[3..]).unwrap();
        assert_eq!(
            (h.dir, h.from),
            (PathBuf::from("/h/.cache/ddsas/data"), "HOME")
        );
        assert_eq!(home(&[]), None);
        // An empty variable counts as unset.
        assert_eq!(
            home(&[("DDSAS_DATA", ""), ("HOME", "/h")]).unwrap().from,
            "HOME"
        );
    }

    #[test]
    fn a_relative_folder_is_made_absolute() {
        let h = home(&[("DDSAS_DATA", "rel/data")]).unwrap();
        assert!(h.dir.is_absolute() && h.dir.ends_with("rel/data"), "{h:?}");
    }
}
