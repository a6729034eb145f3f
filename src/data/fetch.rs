//! Getting CIFAR: `ddsas data get` and download on first use.
//!
//! The archive is downloaded into the data folder as `<dataset>.tar.gz.part`
//! (an interrupted download resumes with an HTTP range request, here or on
//! the next try), verified against its published checksum, unpacked into a
//! temporary folder that is then renamed into place, and only then marked
//! verified with `<dataset>.verified.json` (URL, sums, size, time). A
//! checksum mismatch deletes the bad download (never data verified
//! before), names both sums and fetches once more. An exclusive lock file
//! per dataset (`.<dataset>.lock`) makes processes that start together
//! (sweep orchestrators, searches with `download: true`, two `data get`)
//! download it once: the others wait and then find it verified.
//!
//! Nothing here prints by itself: status lines go through
//! [`Options::say`], and the progress bar (bytes, rate, ETA) is drawn on
//! stderr only when it is a terminal.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{find, DatasetKind, Found};

mod http;

/// The two layouts the CIFAR archives come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `cifar-10-binary.tar.gz`, `cifar-100-binary.tar.gz`: what the loader
    /// reads fastest (fixed-size records), so the default.
    Binary,
    /// `cifar-10-python.tar.gz`, `cifar-100-python.tar.gz` (pickles).
    Python,
}

/// One archive the dataset's authors publish.
struct Official {
    kind: DatasetKind,
    layout: Layout,
    url: &'static str,
    md5: &'static str,
}

/// The official archives and their md5 sums, as published in the download
/// table of https://www.cs.toronto.edu/~kriz/cifar.html (the dataset
/// authors' page); torchvision's `datasets/cifar.py` checks the same sums
/// of the Python archives (`tgz_md5`).
const OFFICIAL: [Official; 4] = [
    Official {
        kind: DatasetKind::Cifar10,
        layout: Layout::Binary,
        url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        md5: "c32a1d4ab5d03f1284b67883e8d87530",
    },
    Official {
        kind: DatasetKind::Cifar10,
        layout: Layout::Python,
        url: "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5: "c58f30108f718f92721af3b95e74349a",
    },
    Official {
        kind: DatasetKind::Cifar100,
        layout: Layout::Binary,
        url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        md5: "03b5dce01913d631647c71ecec9e9cb8",
    },
    Official {
        kind: DatasetKind::Cifar100,
        layout: Layout::Python,
        url: "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5: "eb9058c3a382ffc7106e4002c42a8d85",
    },
];

/// Base URL of a mirror holding the official archives under their own
/// file names (`$DDSAS_DATA_MIRROR/cifar-10-binary.tar.gz`), checked
/// against the official sums.
pub const MIRROR_ENV: &str = "DDSAS_DATA_MIRROR";

/// A published checksum of an archive, lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// MD5, 32 hex digits (what the CIFAR page publishes).
    Md5(String),
    /// SHA-256, 64 hex digits.
    Sha256(String),
}

impl Checksum {
    /// An MD5 sum from hex text; `None` unless it is 32 hex digits.
    pub fn md5(hex: &str) -> Option<Checksum> {
        hex_of_len(hex, 32).map(Checksum::Md5)
    }

    /// A SHA-256 sum from hex text; `None` unless it is 64 hex digits.
    pub fn sha256(hex: &str) -> Option<Checksum> {
        hex_of_len(hex, 64).map(Checksum::Sha256)
    }

    /// "md5" or "sha256".
    pub fn algorithm(&self) -> &'static str {
        match self {
            Checksum::Md5(_) => "md5",
            Checksum::Sha256(_) => "sha256",
        }
    }

    /// The expected sum.
    pub fn hex(&self) -> &str {
        match self {
            Checksum::Md5(h) | Checksum::Sha256(h) => h,
        }
    }

    /// The matching sum of `sums`.
    fn actual<'a>(&self, sums: &'a Sums) -> &'a str {
        match self {
            Checksum::Md5(_) => &sums.md5,
            Checksum::Sha256(_) => &sums.sha256,
        }
    }
}

fn hex_of_len(text: &str, len: usize) -> Option<String> {
    let text = text.trim().to_ascii_lowercase();
    (text.len() == len && text.chars().all(|c| c.is_ascii_hexdigit())).then_some(text)
}

/// Where to download an archive from and what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// http or https URL of a `.tar.gz` of either layout.
    pub url: String,
    /// Every sum the archive must match (at least one).
    pub checksums: Vec<Checksum>,
}

/// What the user asked for instead of the official archive: a URL and
/// checksums, from flags or the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Another URL (a mirror, a file server of the cluster).
    pub url: Option<String>,
    /// Expected MD5, hex.
    pub md5: Option<String>,
    /// Expected SHA-256, hex.
    pub sha256: Option<String>,
}

impl Overrides {
    /// `DDSAS_CIFAR10_URL`, `DDSAS_CIFAR10_MD5`, `DDSAS_CIFAR10_SHA256` (and
    /// the `CIFAR100` ones), the URL else from [`MIRROR_ENV`]: how download
    /// on first use is pointed at a mirror, and the defaults of `data get`.
    pub fn from_env(kind: DatasetKind, layout: Layout) -> Overrides {
        Self::from_lookup(kind, layout, |name| std::env::var(name).ok())
    }

    /// [`Overrides::from_env`] with the environment given as a lookup.
    pub fn from_lookup(
        kind: DatasetKind,
        layout: Layout,
        env: impl Fn(&str) -> Option<String>,
    ) -> Overrides {
        let var = |suffix: &str| {
            env(&env_name(kind, suffix))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mirror = env(MIRROR_ENV)
            .map(|m| m.trim().trim_end_matches('/').to_owned())
            .filter(|m| !m.is_empty());
        let official_name = official(kind, layout).map(|o| file_name(o.url));
        Overrides {
            url: var("URL").or_else(|| Some(format!("{}/{}", mirror?, official_name?))),
            md5: var("MD5"),
            sha256: var("SHA256"),
        }
    }

    /// These overrides, where unset taken from `fallback`: a URL given here
    /// keeps only the checksums given here (the fallback's belong to its
    /// own URL), and checksums given here replace the fallback's.
    pub fn or(self, fallback: Overrides) -> Overrides {
        let has_sums = self.md5.is_some() || self.sha256.is_some();
        match (self.url.is_some(), has_sums) {
            (true, _) => self,
            (false, true) => Overrides {
                url: fallback.url,
                ..self
            },
            (false, false) => fallback,
        }
    }
}

/// `DDSAS_CIFAR10_<suffix>`: the environment variables of one dataset.
pub fn env_name(kind: DatasetKind, suffix: &str) -> String {
    format!("DDSAS_{}_{suffix}", kind.name().to_ascii_uppercase())
}

fn official(kind: DatasetKind, layout: Layout) -> Option<&'static Official> {
    OFFICIAL
        .iter()
        .find(|o| o.kind == kind && o.layout == layout)
}

/// The last path segment of a URL, without query or fragment.
fn file_name(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path)
}

impl Source {
    /// The official archive of `kind` in `layout` with its published sum;
    /// `None` for the bundled digits.
    pub fn official(kind: DatasetKind, layout: Layout) -> Option<Source> {
        official(kind, layout).map(|o| Source {
            url: o.url.to_owned(),
            checksums: vec![Checksum::Md5(o.md5.to_owned())],
        })
    }

    /// What to download for `kind`: the official `layout` archive, or the
    /// URL and checksums of `overrides`. A URL given without a checksum is
    /// checked against the official sum of the archive of that file name
    /// (a mirror), and refused when the name is not an official one:
    /// nothing unverified is ever unpacked.
    pub fn resolve(
        kind: DatasetKind,
        layout: Layout,
        overrides: &Overrides,
    ) -> Result<Source, FetchError> {
        let default = Source::official(kind, layout).ok_or(FetchError::Bundled)?;
        let url = overrides.url.clone().unwrap_or(default.url);
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(FetchError::BadUrl { url });
        }
        let mut checksums = Vec::new();
        if let Some(hex) = &overrides.md5 {
            checksums.push(Checksum::md5(hex).ok_or_else(|| FetchError::BadChecksum {
                algorithm: "md5",
                given: hex.clone(),
                digits: 32,
            })?);
        }
        if let Some(hex) = &overrides.sha256 {
            checksums.push(
                Checksum::sha256(hex).ok_or_else(|| FetchError::BadChecksum {
                    algorithm: "sha256",
                    given: hex.clone(),
                    digits: 64,
                })?,
            );
        }
        if checksums.is_empty() {
            let name = file_name(&url);
            let known = OFFICIAL
                .iter()
                .find(|o| o.kind == kind && file_name(o.url) == name)
                .ok_or_else(|| FetchError::NoChecksum {
                    url: url.clone(),
                    md5_env: env_name(kind, "MD5"),
                })?;
            checksums.push(Checksum::Md5(known.md5.to_owned()));
        }
        Ok(Source { url, checksums })
    }
}

/// Why a dataset could not be fetched. Each message is one line that says
/// what went wrong and what to do, because the reader is usually about to
/// start a long sweep.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The digits are compiled into ddsas.
    #[error("the digits are bundled with ddsas; there is nothing to download")]
    Bundled,
    /// Not an http(s) URL.
    #[error("{url} is not an http:// or https:// URL")]
    BadUrl {
        /// The URL given.
        url: String,
    },
    /// A checksum that is not hex of the right length.
    #[error("{given} is not an {algorithm} sum ({digits} hex digits)")]
    BadChecksum {
        /// "md5" or "sha256".
        algorithm: &'static str,
        /// The text given.
        given: String,
        /// The number of hex digits expected.
        digits: usize,
    },
    /// A URL whose archive has no known sum, and none was given.
    #[error(
        "no checksum to verify {url} against: give --md5 or --sha256 (for download on first use: \
         {md5_env} or the _SHA256 one)"
    )]
    NoChecksum {
        /// The URL.
        url: String,
        /// The environment variable that would give one.
        md5_env: String,
    },
    /// The server cannot be reached at all (offline, DNS, firewall).
    #[error("cannot reach {host}: {reason}; fetch {url} by hand and unpack it into {dir}")]
    Unreachable {
        /// Host of the URL.
        host: String,
        /// What failed.
        reason: String,
        /// The URL.
        url: String,
        /// The data folder.
        dir: PathBuf,
    },
    /// The server answered with an error status.
    #[error(
        "{url} answered HTTP {status}; check the URL (--url, or the _URL environment variable), \
         or fetch the archive by hand and unpack it into {dir}"
    )]
    Http {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The data folder.
        dir: PathBuf,
    },
    /// The connection kept breaking off; what arrived is kept.
    #[error(
        "the download of {url} broke off at byte {have} ({reason}); run the same command again \
         to resume from {part}"
    )]
    BrokeOff {
        /// The URL.
        url: String,
        /// Bytes kept in the partial file.
        have: u64,
        /// The last failure.
        reason: String,
        /// The partial file.
        part: PathBuf,
    },
    /// The archive does not hash to the published sum (after one retry).
    #[error(
        "{url}: the archive's {algorithm} is {actual}, expected {expected}: it is damaged or is \
         not the archive asked for; the download was deleted and nothing is marked verified \
         (check --url and --{algorithm})"
    )]
    Checksum {
        /// The URL.
        url: String,
        /// "md5" or "sha256".
        algorithm: &'static str,
        /// The published (or given) sum.
        expected: String,
        /// The sum of what arrived.
        actual: String,
    },
    /// A verified archive that holds neither layout of the dataset.
    #[error("{url} holds no {dataset} data of either layout: {detail}")]
    BadArchive {
        /// The URL.
        url: String,
        /// "CIFAR-10" or "CIFAR-100".
        dataset: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A file operation in the data folder failed.
    #[error("cannot {what} {path}: {source}")]
    Io {
        /// What was being done ("create", "write", ...).
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FetchError {
    let path = path.to_owned();
    move |source| FetchError::Io { what, path, source }
}

/// How a fetch behaves and where its status lines go.
pub struct Options<'a> {
    /// Download and unpack again even when the dataset is there, verified.
    pub force: bool,
    /// Draw a progress bar (on stderr, and only when it is a terminal).
    pub progress: bool,
    /// Receives one-line status messages (what is downloaded, resumed,
    /// retried, waited for).
    pub say: &'a dyn Fn(&str),
}

/// What a verified dataset's marker file records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// `cifar10` or `cifar100`.
    pub dataset: String,
    /// "binary" or "Python".
    pub layout: String,
    /// The layout folder inside the data folder (`cifar-10-batches-bin`).
    pub folder: String,
    /// Where the archive came from.
    pub url: String,
    /// The archive's MD5.
    pub md5: String,
    /// The archive's SHA-256.
    pub sha256: String,
    /// The archive's size in bytes.
    pub bytes: u64,
    /// When it was verified and unpacked, seconds since 1970.
    pub verified_at: u64,
}

/// How [`get`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    /// Downloaded, verified and unpacked now.
    Fetched(Marker),
    /// It was there and verified (by another process, or before).
    AlreadyVerified(Marker),
}

impl Got {
    /// The marker, either way.
    pub fn marker(&self) -> &Marker {
        match self {
            Got::Fetched(m) | Got::AlreadyVerified(m) => m,
        }
    }
}

/// `<dir>/<dataset>.verified.json`.
pub fn marker_path(kind: DatasetKind, dir: &Path) -> PathBuf {
    dir.join(format!("{}.verified.json", kind.name()))
}

/// `<dir>/<dataset>.tar.gz.part`: the download in progress.
pub fn part_path(kind: DatasetKind, dir: &Path) -> PathBuf {
    dir.join(format!("{}.tar.gz.part", kind.name()))
}

/// The marker of `kind` in `dir` if it vouches for the data a search would
/// read there: written by a fetch, and the layout [`find`] picks is the one
/// it unpacked, whole.
pub fn verified(kind: DatasetKind, dir: &Path) -> Option<(Marker, Found)> {
    let text = fs::read_to_string(marker_path(kind, dir)).ok()?;
    let marker: Marker = serde_json::from_str(&text).ok()?;
    let found = find(kind, dir).ok()?;
    (found.folder == dir.join(&marker.folder) && marker.dataset == kind.name())
        .then_some((marker, found))
}

/// Fetches `kind` from `source` into the data folder `dir` (created if
/// missing): download (resuming a `.part` left by an earlier try), verify,
/// unpack, mark verified. Holds the dataset's lock throughout, and returns
/// at once, without downloading, when the data is there and verified
/// (unless `force`).
pub fn get(
    kind: DatasetKind,
    dir: &Path,
    source: &Source,
    opts: &Options<'_>,
) -> Result<Got, FetchError> {
    fs::create_dir_all(dir).map_err(io_err("create the data folder", dir))?;
    let _lock = lock(kind, dir, opts)?;
    if let Some((marker, _)) = verified(kind, dir) {
        if !opts.force {
            return Ok(Got::AlreadyVerified(marker));
        }
    } else {
        // A marker whose data is gone (or was replaced by hand) vouches
        // for nothing.
        let _ = fs::remove_file(marker_path(kind, dir));
    }
    let part = part_path(kind, dir);
    let sums = download_verified(source, &part, dir, opts)?;
    let found = unpack(kind, &part, dir, &source.url)?;
    let marker = Marker {
        dataset: kind.name().to_owned(),
        layout: found.layout.to_owned(),
        folder: found.folder_name.to_owned(),
        url: source.url.clone(),
        md5: sums.md5,
        sha256: sums.sha256,
        bytes: sums.bytes,
        verified_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    write_marker(kind, dir, &marker)?;
    let _ = fs::remove_file(&part);
    Ok(Got::Fetched(marker))
}

/// Download on first use: fetches `kind` into `dir` unless [`find`] sees
/// it there already (verified or unpacked by hand), from the official
/// binary archive or what the environment names ([`Overrides::from_env`]).
/// `None` when nothing had to be done.
pub fn ensure(
    kind: DatasetKind,
    dir: &Path,
    opts: &Options<'_>,
) -> Result<Option<Got>, FetchError> {
    if kind == DatasetKind::Digits || find(kind, dir).is_ok() {
        return Ok(None);
    }
    let source = Source::resolve(
        kind,
        Layout::Binary,
        &Overrides::from_env(kind, Layout::Binary),
    )?;
    get(kind, dir, &source, opts).map(Some)
}

/// Takes the dataset's lock in `dir`, waiting (and saying so) while
/// another process holds it. Released when the file is closed, also when
/// the process dies, so a crash never leaves it taken.
fn lock(kind: DatasetKind, dir: &Path, opts: &Options<'_>) -> Result<File, FetchError> {
    let path = dir.join(format!(".{}.lock", kind.name()));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err("create the lock file", &path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            (opts.say)(&format!(
                "another ddsas is fetching {} into {} (lock {}); waiting for it",
                kind.name(),
                dir.display(),
                path.display()
            ));
            file.lock().map_err(io_err("lock", &path))?;
        }
        Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", &path)(e)),
    }
    Ok(file)
}

/// Sizes and sums of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sums {
    md5: String,
    sha256: String,
    bytes: u64,
}

fn sums(path: &Path) -> Result<Sums, FetchError> {
    let mut file = File::open(path).map_err(io_err("read", path))?;
    let (mut md5, mut sha) = (Md5::new(), Sha256::new());
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        sha.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(Sums {
        md5: hex::encode(md5.finalize()),
        sha256: hex::encode(sha.finalize()),
        bytes,
    })
}

/// Downloads `source` to `part` and checks every sum; a mismatch deletes
/// the download, says both sums and starts over once; a second mismatch
/// is the error.
fn download_verified(
    source: &Source,
    part: &Path,
    dir: &Path,
    opts: &Options<'_>,
) -> Result<Sums, FetchError> {
    let mut tries = 0;
    loop {
        tries += 1;
        http::download(&source.url, part, dir, opts)?;
        let sums = sums(part)?;
        let Some(bad) = source.checksums.iter().find(|c| c.actual(&sums) != c.hex()) else {
            return Ok(sums);
        };
        let _ = fs::remove_file(part);
        let err = FetchError::Checksum {
            url: source.url.clone(),
            algorithm: bad.algorithm(),
            expected: bad.hex().to_owned(),
            actual: bad.actual(&sums).to_owned(),
        };
        if tries >= 2 {
            return Err(err);
        }
        (opts.say)(&format!(
            "{}: the archive's {} is {}, expected {}; deleted it, downloading it again once",
            source.url,
            bad.algorithm(),
            bad.actual(&sums),
            bad.hex()
        ));
    }
}

/// Unpacks the verified archive into a temporary folder of `dir`, finds
/// the dataset in it (either layout, in its folder or at the top) and
/// renames that folder into place, replacing an older copy.
fn unpack(kind: DatasetKind, archive: &Path, dir: &Path, url: &str) -> Result<Found, FetchError> {
    let tmp = dir.join(format!(".{}.unpacking-{}", kind.name(), std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
    let result = unpack_into(kind, archive, &tmp, dir, url);
    let _ = fs::remove_dir_all(&tmp);
    result
}

fn unpack_into(
    kind: DatasetKind,
    archive: &Path,
    tmp: &Path,
    dir: &Path,
    url: &str,
) -> Result<Found, FetchError> {
    let bad = |detail: String| FetchError::BadArchive {
        url: url.to_owned(),
        dataset: kind.display_name(),
        detail,
    };
    let file = File::open(archive).map_err(io_err("read", archive))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    // `unpack` keeps every entry inside `tmp` (no `..`, no absolute paths).
    tar.unpack(tmp)
        .map_err(|e| bad(format!("it does not unpack as a .tar.gz ({e})")))?;
    let found = find(kind, tmp).map_err(|e| {
        let top: Vec<String> = fs::read_dir(tmp)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        bad(format!(
            "it holds [{}]; {}",
            top.join(", "),
            e.to_string()
                .split(';')
                .next()
                .unwrap_or_default()
                .replace(&tmp.display().to_string(), "the archive")
        ))
    })?;
    let dest = dir.join(found.folder_name);
    replace_folder(&found.folder, &dest, kind)?;
    Ok(Found {
        folder: dest,
        ..found
    })
}

/// Moves `new` to `dest`; an existing `dest` is moved aside first and
/// removed after, so a reader sees the old folder or the new one.
fn replace_folder(new: &Path, dest: &Path, kind: DatasetKind) -> Result<(), FetchError> {
    if dest.exists() {
        let parent = dest.parent().unwrap_or(Path::new("."));
        let old = parent.join(format!(".{}.old-{}", kind.name(), std::process::id()));
        let _ = fs::remove_dir_all(&old);
        fs::rename(dest, &old).map_err(io_err("move aside", dest))?;
        if let Err(e) = fs::rename(new, dest) {
            let _ = fs::rename(&old, dest);
            return Err(io_err("move into place", dest)(e));
        }
        let _ = fs::remove_dir_all(&old);
        Ok(())
    } else {
        fs::rename(new, dest).map_err(io_err("move into place", dest))
    }
}

/// Writes the marker through a temporary file and a rename, so that a
/// crash never leaves half a marker.
fn write_marker(kind: DatasetKind, dir: &Path, marker: &Marker) -> Result<(), FetchError> {
    let path = marker_path(kind, dir);
    let tmp = dir.join(format!(".{}.verified.json.tmp", kind.name()));
    let text = serde_json::to_string_pretty(marker).expect("a marker always serializes");
    fs::write(&tmp, text + "\n").map_err(io_err("write", &tmp))?;
    fs::rename(&tmp, &path).map_err(io_err("write", &path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_sums_are_the_published_ones() {
        let s = Source::official(DatasetKind::Cifar10, Layout::Binary).unwrap();
        assert_eq!(
            s.url,
            "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
        );
        assert_eq!(
            s.checksums,
            vec![Checksum::Md5("c32a1d4ab5d03f1284b67883e8d87530".into())]
        );
        let s = Source::official(DatasetKind::Cifar100, Layout::Python).unwrap();
        assert_eq!(s.checksums[0].hex(), "eb9058c3a382ffc7106e4002c42a8d85");
        assert!(Source::official(DatasetKind::Digits, Layout::Binary).is_none());
    }

    #[test]
    fn a_mirror_url_is_checked_against_the_official_sum_of_its_file_name() {
        let kind = DatasetKind::Cifar10;
        let over = Overrides {
            url: Some("http://mirror.example/cifar/cifar-10-python.tar.gz".into()),
            ..Overrides::default()
        };
        let s = Source::resolve(kind, Layout::Binary, &over).unwrap();
        assert_eq!(
            s.checksums,
            vec![Checksum::Md5("c58f30108f718f92721af3b95e74349a".into())]
        );
        // Any other name needs a sum.
        let over = Overrides {
            url: Some("http://mirror.example/cifar.tgz".into()),
            ..Overrides::default()
        };
        let e = Source::resolve(kind, Layout::Binary, &over).unwrap_err();
        assert!(matches!(e, FetchError::NoChecksum { .. }), "{e}");
        let over = Overrides {
            sha256: Some("AB".repeat(32)),
            ..over
        };
        let s = Source::resolve(kind, Layout::Binary, &over).unwrap();
        assert_eq!(s.checksums, vec![Checksum::Sha256("ab".repeat(32))]);
        let bad = Overrides {
            md5: Some("xyz".into()),
            ..Overrides::default()
        };
        let e = Source::resolve(kind, Layout::Binary, &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("xyz") && e.contains("32 hex digits"), "{e}");
        let e = Source::resolve(
            kind,
            Layout::Binary,
            &Overrides {
                url: Some("ftp://x/cifar-10-binary.tar.gz".into()),
                ..Overrides::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::BadUrl { .. }), "{e}");
    }

    #[test]
    fn environment_overrides_name_the_dataset_and_a_mirror() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let o = Overrides::from_lookup(
            DatasetKind::Cifar100,
            Layout::Binary,
            env(&[("DDSAS_DATA_MIRROR", "http://m/x/")]),
        );
        assert_eq!(o.url.as_deref(), Some("http://m/x/cifar-100-binary.tar.gz"));
        let o = Overrides::from_lookup(
            DatasetKind::Cifar10,
            Layout::Binary,
            env(&[
                ("DDSAS_DATA_MIRROR", "http://m"),
                ("DDSAS_CIFAR10_URL", "http://own/a.tgz"),
                ("DDSAS_CIFAR10_MD5", "00"),
                ("DDSAS_CIFAR100_URL", "http://wrong"),
            ]),
        );
        assert_eq!(o.url.as_deref(), Some("http://own/a.tgz"));
        assert_eq!(o.md5.as_deref(), Some("00"));
        // A flag's URL drops the environment's sums; a flag's sum keeps
        // the environment's URL.
        let flags = Overrides {
            url: Some("http://flag".into()),
            ..Overrides::default()
        };
        assert_eq!(flags.clone().or(o.clone()), flags);
        let flags = Overrides {
            sha256: Some("s".into()),
            ..Overrides::default()
        };
        let merged = flags.or(o.clone());
        assert_eq!(
            (merged.url.as_deref(), merged.md5, merged.sha256.as_deref()),
            (Some("http://own/a.tgz"), None, Some("s"))
        );
        assert_eq!(Overrides::default().or(o.clone()), o);
    }

    #[test]
    fn offline_is_one_line_naming_host_url_and_folder() {
        // A port nothing listens on: bind, note the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}/cifar-10-binary.tar.gz");
        let source = Source::resolve(
            DatasetKind::Cifar10,
            Layout::Binary,
            &Overrides {
                url: Some(url.clone()),
                ..Overrides::default()
            },
        )
        .unwrap();
        let opts = Options {
            force: false,
            progress: false,
            say: &|_| {},
        };
        let e = get(DatasetKind::Cifar10, dir.path(), &source, &opts)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot reach 127.0.0.1: ")
                && e.contains(&format!(
                    "fetch {url} by hand and unpack it into {}",
                    dir.path().display()
                ))
                && !e.contains('\n'),
            "{e}"
        );
        assert!(!marker_path(DatasetKind::Cifar10, dir.path()).exists());
    }
}
