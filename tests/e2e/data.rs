//! End-to-end tests of `ddsas data get|list` and download on first use,
//! with no internet: archives built from the CIFAR fixtures
//! (tar + gzip, here) are served by a small HTTP server inside the test on
//! 127.0.0.1, which counts requests, honours ranges, and can cut a
//! connection half-way, ignore ranges or go slowly.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::Digest;

use super::util::{scalar, text, BIN};

/// The fixtures' folder (all four layouts).
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cifar")
}

/// A `.tar.gz` of one fixture layout folder, as the official archives
/// unpack: `<folder>/<files>`.
fn archive(folder: &str) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all(folder, fixtures().join(folder)).unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(md5::Md5::digest(bytes))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// What the server does beyond serving bytes.
#[derive(Clone, Copy, Default)]
struct Quirks {
    /// Close the first full-body response after this many body bytes.
    cut_first_at: Option<usize>,
    /// Answer every request with the whole file (200), ranges or not.
    ignore_range: bool,
    /// Pause between 8 KiB chunks of a body.
    slow: Option<Duration>,
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    path: String,
    range_from: Option<u64>,
}

/// A tiny HTTP/1.1 file server on 127.0.0.1 (test code: one thread per
/// connection, `Connection: close`). It lives as long as the test binary.
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(files: Vec<(&str, Vec<u8>)>, quirks: Quirks) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let files: Arc<Vec<(String, Vec<u8>)>> = Arc::new(
            files
                .into_iter()
                .map(|(p, b)| (format!("/{p}"), b))
                .collect(),
        );
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (files, log) = (files.clone(), log.clone());
                std::thread::spawn(move || serve(stream, &files, &log, quirks));
            }
        });
        Server { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(mut stream: TcpStream, files: &[(String, Vec<u8>)], log: &Mutex<Vec<Seen>>, q: Quirks) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut range_from = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("range:") {
            range_from = v
                .trim()
                .strip_prefix("bytes=")
                .and_then(|r| r.trim_end_matches('-').parse().ok());
        }
    }
    let first_full = {
        let mut log = log.lock().unwrap();
        log.push(Seen {
            path: path.clone(),
            range_from,
        });
        log.len() == 1
    };
    let Some((_, body)) = files.iter().find(|(p, _)| *p == path) else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let len = body.len() as u64;
    let (head, from) = match range_from.filter(|_| !q.ignore_range) {
        Some(from) if from >= len => {
            let _ = stream.write_all(format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
            return;
        }
        Some(from) => (
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{}/{len}\r\nContent-Length: {}\r\n",
                len - 1,
                len - from
            ),
            from as usize,
        ),
        None => (format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n"), 0),
    };
    let head = format!("{head}Content-Type: application/gzip\r\nConnection: close\r\n\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut end = body.len();
    if let (Some(cut), true) = (q.cut_first_at, first_full) {
        end = cut.min(end);
    }
    for chunk in body[from..end].chunks(8 * 1024) {
        if stream.write_all(chunk).is_err() {
            return;
        }
        if let Some(pause) = q.slow {
            let _ = stream.flush();
            std::thread::sleep(pause);
        }
    }
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// `ddsas ARGS` with `DDSAS_DATA` = `data`, and no download settings of
/// the environment leaking in.
fn ddsas(data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("DDSAS_DATA", data).stdin(Stdio::null());
    for var in [
        "DDSAS_DB",
        "DDSAS_DATA_MIRROR",
        "DDSAS_CIFAR10_URL",
        "DDSAS_CIFAR10_MD5",
        "DDSAS_CIFAR10_SHA256",
        "DDSAS_CIFAR100_URL",
        "DDSAS_CIFAR100_MD5",
        "DDSAS_CIFAR100_SHA256",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn run(data: &Path, args: &[&str]) -> Output {
    ddsas(data, args).output().unwrap()
}

/// A tiny NB201 search on the CIFAR-10 fixture: a few seconds on one core.
const TINY_CIFAR: &[&str] = &[
    "dataset=cifar10",
    "space=nb201",
    "layers=1",
    "init_channels=4",
    "batch_size=8",
    "epochs=1",
    "steps_per_epoch=2",
    "L=10",
    "M=1",
];

fn search_args<'a>(db: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["search", "--quiet", "--threads", "1", "--db", db];
    for s in TINY_CIFAR.iter().chain(extra) {
        args.extend(["--set", s]);
    }
    args
}

#[test]
fn get_verifies_unpacks_and_a_search_then_finds_the_data_without_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bin = archive("cifar-10-batches-bin");
    let py100 = archive("cifar-100-python");
    let (md5, sha) = (md5_hex(&bin), sha256_hex(&py100));
    let server = Server::start(
        vec![("cifar-10-binary.tar.gz", bin), ("c100.tgz", py100)],
        Quirks::default(),
    );
    // Before: the search says how to get the data.
    let db = tmp.path().join("results.db");
    let db = db.to_str().unwrap();
    let out = run(&data, &search_args(db, &[]));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("ddsas data get cifar10") && text(&out).contains("data_dir"),
        "{}",
        text(&out)
    );

    let url = server.url("cifar-10-binary.tar.gz");
    let out = run(
        &data,
        &["data", "get", "cifar10", "--url", &url, "--md5", &md5],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let folder = data.join("cifar-10-batches-bin");
    assert!(
        stdout.contains("verified") && stdout.contains(&folder.display().to_string()),
        "{}",
        text(&out)
    );
    assert!(folder.join("data_batch_5.bin").is_file());
    assert!(
        !data.join("cifar10.tar.gz.part").exists(),
        "the archive is removed"
    );
    let marker: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("cifar10.verified.json")).unwrap())
            .unwrap();
    assert_eq!(marker["md5"], md5.as_str());
    assert_eq!(marker["url"], url.as_str());
    assert_eq!(marker["folder"], "cifar-10-batches-bin");

    // A second get finds it verified and downloads nothing.
    let out = run(
        &data,
        &["data", "get", "cifar10", "--url", &url, "--md5", &md5],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("already in"), "{}", text(&out));
    assert_eq!(server.seen().len(), 1);

    // An archive of the Python layout, checked by SHA-256, for CIFAR-100.
    let out = run(
        &data,
        &[
            "data",
            "get",
            "cifar100",
            "--url",
            &server.url("c100.tgz"),
            "--sha256",
            &sha,
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&data, &["data", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.contains("from DDSAS_DATA"), "{list}");
    for needle in [
        "cifar10 ".to_owned(),
        "binary".to_owned(),
        format!("yes (md5 {md5})"),
        "cifar100".to_owned(),
        "Python".to_owned(),
        data.join("cifar-100-python").display().to_string(),
        "0.2 MB".to_owned(),
    ] {
        assert!(list.contains(&needle), "no `{needle}` in\n{list}");
    }

    // The search finds it in the data folder; the stored config keeps no
    // data_dir (the run's identity does not depend on the cache's place).
    let out = run(&data, &search_args(db, &[]));
    assert!(out.status.success(), "{}", text(&out));
    let db = Path::new(db);
    assert_eq!(scalar(db, "SELECT status FROM runs"), "done");
    assert_eq!(
        scalar(
            db,
            "SELECT json_extract(config_json, '$.data_dir') IS NULL FROM runs"
        ),
        "1"
    );
}

#[test]
fn a_connection_cut_half_way_resumes_and_completes() {
    let bin = archive("cifar-10-batches-bin");
    let (md5, half) = (md5_hex(&bin), bin.len() / 2);
    // Cut during the download: the same command resumes with a range.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = Server::start(
        vec![("cifar-10-binary.tar.gz", bin.clone())],
        Quirks {
            cut_first_at: Some(half),
            ..Quirks::default()
        },
    );
    let url = server.url("cifar-10-binary.tar.gz");
    let out = run(
        &data,
        &["data", "get", "cifar10", "--url", &url, "--md5", &md5],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("resuming"), "{}", text(&out));
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].range_from, None);
    assert_eq!(seen[1].range_from, Some(half as u64), "{seen:?}");
    assert!(data.join("cifar10.verified.json").is_file());

    // A download interrupted earlier (half a .part left): the next get
    // asks for the rest only.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("cifar10.tar.gz.part"), &bin[..half]).unwrap();
    let out = run(&data, &["data", "list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("downloaded so far"),
        "{}",
        text(&out)
    );
    let server = Server::start(
        vec![("cifar-10-binary.tar.gz", bin.clone())],
        Quirks::default(),
    );
    let url = server.url("cifar-10-binary.tar.gz");
    let out = run(
        &data,
        &["data", "get", "cifar10", "--url", &url, "--md5", &md5],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        server.seen(),
        vec![Seen {
            path: "/cifar-10-binary.tar.gz".into(),
            range_from: Some(half as u64)
        }]
    );
    assert!(data.join("cifar10.verified.json").is_file());

    // A server that ignores ranges sends it all again: started over, fine.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("cifar10.tar.gz.part"), &bin[..half]).unwrap();
    let server = Server::start(
        vec![("cifar-10-binary.tar.gz", bin)],
        Quirks {
            ignore_range: true,
            ..Quirks::default()
        },
    );
    let url = server.url("cifar-10-binary.tar.gz");
    let out = run(
        &data,
        &["data", "get", "cifar10", "--url", &url, "--md5", &md5],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.seen().len(), 1);
    assert!(data.join("cifar10.verified.json").is_file());
}

#[test]
fn a_wrong_checksum_is_refused_and_leaves_nothing_marked_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bin = archive("cifar-10-batches-bin");
    let md5 = md5_hex(&bin);
    let server = Server::start(vec![("cifar-10-binary.tar.gz", bin)], Quirks::default());
    let url = server.url("cifar-10-binary.tar.gz");
    let wrong = "0".repeat(32);
    let out = run(
        &data,
        &["data", "get", "cifar10", "--url", &url, "--md5", &wrong],
    );
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&wrong) && err.contains(&md5) && err.contains("again once"),
        "both sums and the retry are named: {err}"
    );
    assert_eq!(server.seen().len(), 2, "retried once");
    assert!(!data.join("cifar10.verified.json").exists());
    assert!(!data.join("cifar10.tar.gz.part").exists());
    assert!(
        !data.join("cifar-10-batches-bin").exists(),
        "nothing unpacked"
    );
    let out = run(&data, &["data", "list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("missing: `ddsas data get cifar10`"),
        "{}",
        text(&out)
    );

    // Verified data stays verified when a forced fetch gets a bad archive.
    let out = run(
        &data,
        &["data", "get", "cifar10", "--url", &url, "--md5", &md5],
    );
    assert!(out.status.success(), "{}", text(&out));
    let marker = std::fs::read(data.join("cifar10.verified.json")).unwrap();
    let out = run(
        &data,
        &[
            "data", "get", "cifar10", "--url", &url, "--md5", &wrong, "--force",
        ],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read(data.join("cifar10.verified.json")).unwrap(),
        marker
    );
    assert!(data.join("cifar-10-batches-bin/test_batch.bin").is_file());

    // Offline: one line with the host, the URL to fetch by hand and where
    // to unpack it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = format!("http://127.0.0.1:{port}/cifar-100-binary.tar.gz");
    let out = run(&data, &["data", "get", "cifar100", "--url", &gone]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot reach 127.0.0.1")
            && err.contains(&format!(
                "fetch {gone} by hand and unpack it into {}",
                data.display()
            )),
        "{err}"
    );
}

#[test]
fn two_concurrent_gets_download_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bin = archive("cifar-10-batches-bin");
    let md5 = md5_hex(&bin);
    // About a second of download: long enough for the two to overlap.
    let server = Server::start(
        vec![("cifar-10-binary.tar.gz", bin)],
        Quirks {
            slow: Some(Duration::from_millis(40)),
            ..Quirks::default()
        },
    );
    let url = server.url("cifar-10-binary.tar.gz");
    let args = ["data", "get", "cifar10", "--url", &url, "--md5", &md5];
    let a = ddsas(&data, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = ddsas(&data, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    assert_eq!(
        server.seen().len(),
        1,
        "downloaded once: {:?}",
        server.seen()
    );
    let both = format!("{}{}", text(&a), text(&b));
    assert!(both.contains("already in"), "{both}");
    assert!(data.join("cifar10.verified.json").is_file());
}

#[test]
fn download_true_fetches_on_first_use_once_for_searches_started_together() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bin = archive("cifar-10-batches-bin");
    let md5 = md5_hex(&bin);
    let server = Server::start(
        vec![("mirror/c10.tar.gz", bin)],
        Quirks {
            slow: Some(Duration::from_millis(20)),
            ..Quirks::default()
        },
    );
    let url = server.url("mirror/c10.tar.gz");
    // Two databases in two folders: their checkpoints lie beside them.
    let dbs = [
        tmp.path().join("a/results.db"),
        tmp.path().join("b/results.db"),
    ];
    for db in &dbs {
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    }
    let children: Vec<_> = dbs
        .iter()
        .map(|db| {
            ddsas(
                &data,
                &search_args(db.to_str().unwrap(), &["download=true"]),
            )
            .env("DDSAS_CIFAR10_URL", &url)
            .env("DDSAS_CIFAR10_MD5", &md5)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    assert_eq!(server.seen().len(), 1, "fetched once: {:?}", server.seen());
    assert!(data.join("cifar10.verified.json").is_file());
    // Same config without `download`: same run identity.
    let with = scalar(&dbs[0], "SELECT fingerprint FROM runs");
    let out = run(&data, &search_args(dbs[1].to_str().unwrap(), &[]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("already done"), "{}", text(&out));
    assert_eq!(scalar(&dbs[1], "SELECT fingerprint FROM runs"), with);
}

#[test]
fn a_sweep_with_data_download_fetches_before_its_workers_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bin = archive("cifar-10-batches-bin");
    let md5 = md5_hex(&bin);
    let server = Server::start(vec![("cifar-10-binary.tar.gz", bin)], Quirks::default());
    let file = tmp.path().join("s.yaml");
    std::fs::write(
        &file,
        "name: dl\nbase: {dataset: cifar10, space: nb201, layers: 1, init_channels: 4, batch_size: 8, \
         epochs: 1, steps_per_epoch: 2, L: 10, M: 1}\nseeds: [1, 2]\n\
         resources: {data: {download: true}}\n",
    )
    .unwrap();
    let db = tmp.path().join("results.db");
    // Without the data, planning says how to get it.
    let plan = ddsas(
        &tmp.path().join("empty"),
        &[
            "sweep",
            "plan",
            file.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert!(
        plan.status.success(),
        "download: true plans: {}",
        text(&plan)
    );
    let out = ddsas(
        &data,
        &[
            "sweep",
            "run",
            file.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--gpus",
            "none",
            "--cpu-workers",
            "2",
            "--threads",
            "1",
            "--plain",
        ],
    )
    .env("DDSAS_DATA_MIRROR", server.url(""))
    .env("DDSAS_CIFAR10_MD5", &md5)
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.seen().len(), 1, "{:?}", server.seen());
    assert_eq!(server.seen()[0].path, "/cifar-10-binary.tar.gz");
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'"),
        "2"
    );
}
