//! `ddsas data`: fetch CIFAR into the data folder (`get`) and show what is
//! there (`list`); and the download on first use that `search`,
//! `train` and `sweep run` do for configs with `download: true`. ImageNet
//! is the user's own download: `get imagenet` says where from and how to
//! lay it out, `list` shows it once it is there.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use crate::data::fetch::{self, Got, Layout, Options, Overrides, Source};
use crate::data::home::{self, DataHome, DATA_ENV};
use crate::data::{find, imagenet, DatasetKind};

/// Data commands.
#[derive(Debug, clap::Subcommand)]
pub enum DataCmd {
    /// Download a dataset's official archive, verify its checksum and unpack it into the data folder.
    #[command(after_help = "Examples:
  ddsas data get cifar10                       # into $DDSAS_DATA, else ~/.cache/ddsas/data
  ddsas data get cifar100 --to /scratch/data   # then DDSAS_DATA=/scratch/data, or data_dir=/scratch/data
  ddsas data get cifar10 --url http://mirror.lab/cifar-10-binary.tar.gz
  ddsas data get cifar10 --url http://files.lab/c10.tgz --sha256 HEX
An interrupted download resumes where it stopped (run the same command again).
Download on first use (`--set download=true`, or `resources: {data: {download: true}}` in a
sweep) reads DDSAS_CIFAR10_URL / _MD5 / _SHA256 (CIFAR100 likewise) or DDSAS_DATA_MIRROR, a
folder URL holding the official file names.
`ddsas data get imagenet` downloads nothing: it says how to lay out your own copy of ImageNet
(exit status 1 until the folder is there).")]
    Get(GetArgs),
    /// Show the datasets in the data folder: layout, path, size and whether they verified.
    #[command(after_help = "Example:\n  ddsas data list\n  ddsas data list --to /scratch/data")]
    List(ListArgs),
}

/// A dataset `ddsas data get` can fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fetchable {
    /// CIFAR-10 (162 MB).
    Cifar10,
    /// CIFAR-100 (161 MB).
    Cifar100,
    /// ImageNet (ILSVRC2012, about 150 GB): not downloaded, says how to
    /// lay out your own copy.
    Imagenet,
}

impl Fetchable {
    fn kind(self) -> DatasetKind {
        match self {
            Fetchable::Cifar10 => DatasetKind::Cifar10,
            Fetchable::Cifar100 => DatasetKind::Cifar100,
            Fetchable::Imagenet => DatasetKind::ImageNet,
        }
    }
}

/// Which official archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutArg {
    /// Fixed-size records: the loader reads it fastest.
    Binary,
    /// Python pickles (what torchvision downloads).
    Python,
}

/// Arguments of `data get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The dataset.
    dataset: Fetchable,
    /// The data folder (default: DDSAS_DATA, else ~/.cache/ddsas/data).
    #[arg(long, value_name = "DIR")]
    to: Option<PathBuf>,
    /// Which official archive to download.
    #[arg(long, value_enum, default_value = "binary")]
    layout: LayoutArg,
    /// Download from this URL instead (a mirror; an archive of either layout).
    #[arg(long)]
    url: Option<String>,
    /// The archive's expected MD5 (default: the official sum of the archive's file name).
    #[arg(long, value_name = "HEX")]
    md5: Option<String>,
    /// The archive's expected SHA-256.
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,
    /// Download and unpack again even if the dataset is there and verified.
    #[arg(long)]
    force: bool,
    /// No progress bar and no status lines; only the final line.
    #[arg(long, short)]
    quiet: bool,
}

/// Arguments of `data list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The data folder (default: DDSAS_DATA, else ~/.cache/ddsas/data).
    #[arg(long, visible_alias = "dir", value_name = "DIR")]
    to: Option<PathBuf>,
}

impl DataCmd {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            DataCmd::Get(args) => get(args),
            DataCmd::List(args) => list(args),
        }
    }
}

/// `--to DIR`, else the data folder of the environment.
fn data_folder(to: Option<&Path>) -> anyhow::Result<DataHome> {
    if let Some(dir) = to {
        return Ok(DataHome {
            dir: home::absolute(dir),
            from: "--to",
        });
    }
    home::data_home().with_context(|| {
        format!("no data folder: give --to DIR, or set {DATA_ENV} (neither it nor HOME is set)")
    })
}

fn get(args: GetArgs) -> anyhow::Result<ExitCode> {
    let kind = args.dataset.kind();
    if kind == DatasetKind::ImageNet {
        return explain_imagenet(&data_folder(args.to.as_deref())?);
    }
    let layout = match args.layout {
        LayoutArg::Binary => Layout::Binary,
        LayoutArg::Python => Layout::Python,
    };
    let folder = data_folder(args.to.as_deref())?;
    let flags = Overrides {
        url: args.url.clone(),
        md5: args.md5.clone(),
        sha256: args.sha256.clone(),
    };
    let source = Source::resolve(kind, layout, &flags.or(Overrides::from_env(kind, layout)))?;
    let say = |line: &str| {
        if !args.quiet {
            crate::errln!("{line}");
        }
    };
    let opts = Options {
        force: args.force,
        progress: !args.quiet,
        say: &say,
    };
    let got = fetch::get(kind, &folder.dir, &source, &opts)?;
    say_got(kind, &folder, &got);
    Ok(ExitCode::SUCCESS)
}

/// `data get imagenet`: ImageNet's licence lets only the user download it,
/// so this says from where, which two archives, and how to lay them out;
/// once the folder is there, it checks and counts it instead.
fn explain_imagenet(folder: &DataHome) -> anyhow::Result<ExitCode> {
    let target = folder.dir.join(imagenet::FOLDER);
    if let Ok(found) = imagenet::Folder::open(&folder.dir) {
        crate::outln!("imagenet: {} in {}", counts(&found), found.root.display());
        return Ok(ExitCode::SUCCESS);
    }
    crate::outln!(
        "ImageNet is not downloaded by ddsas: its licence asks each user to download it.
1. Sign in at https://image-net.org (Download, ILSVRC2012) and download
   ILSVRC2012_img_train.tar (138 GB) and ILSVRC2012_img_val.tar (6.3 GB).
2. Lay them out in {t}:
     mkdir -p {t}/train {t}/val
     tar -xf ILSVRC2012_img_train.tar -C {t}/train
     cd {t}/train && for f in *.tar; do d=${{f%.tar}}; mkdir -p $d && tar -xf $f -C $d && rm $f; done
     tar -xf ILSVRC2012_img_val.tar -C {t}/val
   then sort val/ into class folders (val/<wnid>/*.JPEG), e.g. with the well-known
   valprep.sh, or from the devkit's ILSVRC2012_validation_ground_truth.txt and meta.mat.
3. `ddsas data list` then shows it (or point data_dir at the folder holding train/ and val/).",
        t = target.display()
    );
    if let Err(e) = imagenet::Folder::open(&folder.dir) {
        if !matches!(e, crate::data::DataError::NoImageNet { .. }) {
            crate::outln!("what is there now: {e}");
        }
    }
    Ok(ExitCode::from(1))
}

/// `N images, C classes (train T, val V)`.
fn counts(f: &imagenet::Folder) -> String {
    format!(
        "{} images, {} classes (train {}, val {})",
        f.train.len() + f.val.len(),
        f.classes.len(),
        f.train.len(),
        f.val.len()
    )
}

/// The `data list` row of ImageNet: listed whole (class folders checked,
/// images counted), since that is what a training run will do first.
fn imagenet_row(dir: &Path) -> Vec<String> {
    let row = |layout: &str, path: String, size: String, state: String| {
        vec!["imagenet".to_owned(), layout.to_owned(), path, size, state]
    };
    match imagenet::Folder::open(dir) {
        Ok(f) => row(
            "folders",
            f.root.display().to_string(),
            counts(&f),
            "n/a (your own download)".into(),
        ),
        Err(crate::data::DataError::NoImageNet { .. }) => row(
            "-",
            "-".into(),
            "-".into(),
            "missing: your own download, `ddsas data get imagenet` says how".into(),
        ),
        Err(e) => row(
            "folders",
            "-".into(),
            "-".into(),
            format!("no: {}", first_clause(&e.to_string())),
        ),
    }
}

/// The final lines of a fetch: what is where, and how searches find it.
fn say_got(kind: DatasetKind, folder: &DataHome, got: &Got) {
    let m = got.marker();
    let at = folder.dir.join(&m.folder);
    match got {
        Got::Fetched(_) => crate::outln!(
            "{}: verified (md5 {}, sha256 {}) and unpacked into {}",
            kind.name(),
            m.md5,
            m.sha256,
            at.display()
        ),
        Got::AlreadyVerified(_) => crate::outln!(
            "{}: already in {} (verified, md5 {}); --force fetches it again",
            kind.name(),
            at.display(),
            m.md5
        ),
    }
    let default = home::data_home().map(|h| h.dir);
    if default.as_deref() != Some(folder.dir.as_path()) {
        crate::outln!(
            "searches find it with {DATA_ENV}={} or --set data_dir={}",
            folder.dir.display(),
            folder.dir.display()
        );
    }
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let folder = data_folder(args.to.as_deref())?;
    crate::outln!(
        "data folder: {} (from {})",
        folder.dir.display(),
        folder.from
    );
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec!["dataset", "layout", "path", "size", "verified"]);
    table.add_row(vec![
        "digits",
        "bundled",
        "(compiled into ddsas)",
        "1797 images",
        "yes",
    ]);
    for kind in DatasetKind::FETCHABLE {
        table.add_row(list_row(kind, &folder.dir));
    }
    table.add_row(imagenet_row(&folder.dir));
    crate::outln!("{table}");
    Ok(ExitCode::SUCCESS)
}

/// One row of `data list`: where the dataset a search would read lies,
/// and whether a fetch vouches for it.
fn list_row(kind: DatasetKind, dir: &Path) -> Vec<String> {
    let part = fetch::part_path(kind, dir);
    let partial = std::fs::metadata(&part).map(|m| m.len()).ok();
    match find(kind, dir) {
        Ok(found) => {
            let verified = match fetch::verified(kind, dir) {
                Some((m, _)) => format!("yes (md5 {})", m.md5),
                None => "no (not fetched by ddsas data get)".to_owned(),
            };
            vec![
                kind.name().to_owned(),
                found.layout.to_owned(),
                found.folder.display().to_string(),
                megabytes(found.bytes),
                verified,
            ]
        }
        Err(e) => {
            let state = match (&e, partial) {
                (_, Some(bytes)) => format!(
                    "no: {} downloaded so far; `ddsas data get {}` resumes",
                    megabytes(bytes),
                    kind.name()
                ),
                (crate::data::DataError::NotFound { .. }, None) => {
                    format!("missing: `ddsas data get {}`", kind.name())
                }
                (e, None) => format!("no: {}", first_clause(&e.to_string())),
            };
            vec![
                kind.name().to_owned(),
                "-".into(),
                "-".into(),
                "-".into(),
                state,
            ]
        }
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn first_clause(text: &str) -> &str {
    text.split(';').next().unwrap_or(text)
}

/// Download on first use for a run about to start: fetches `kind` into
/// `dir` when `download` is set and the dataset is not there. Status lines
/// go to stderr; a failure stops the command before the run is claimed.
pub fn fetch_if_missing(
    kind: DatasetKind,
    dir: Option<&Path>,
    download: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    let Some(dir) = dir else { return Ok(()) };
    if !download || kind == DatasetKind::Digits || find(kind, dir).is_ok() {
        return Ok(());
    }
    let say = |line: &str| {
        if !quiet {
            crate::errln!("{line}");
        }
    };
    say(&format!(
        "{} is not in {}; fetching it (download: true)",
        kind.name(),
        dir.display()
    ));
    let opts = Options {
        force: false,
        progress: !quiet,
        say: &say,
    };
    if let Some(got) = fetch::ensure(kind, dir, &opts)? {
        say(&format!(
            "{}: {} in {}",
            kind.name(),
            match got {
                Got::Fetched(_) => "verified and unpacked",
                Got::AlreadyVerified(_) => "fetched by another ddsas, verified,",
            },
            dir.join(&got.marker().folder).display()
        ));
    }
    if let Err(e) = find(kind, dir) {
        bail!("{e}");
    }
    Ok(())
}
