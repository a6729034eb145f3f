//! The HTTP side of a fetch: one file downloaded into a `.part` file with
//! range requests, resumed after every break of the connection, with a
//! progress bar; the proxy the environment names.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{file_name, io_err, FetchError, Options};

/// How many times in a row a download may fail without receiving a byte
/// before it gives up (each wait one second longer).
const MAX_STALLS: u32 = 3;

/// Downloads `url` into `part`, continuing from what `part` holds with a
/// range request, and again after each break of the connection, until the
/// whole file (as the server announced its length) is there.
pub(super) fn download(
    url: &str,
    part: &Path,
    dir: &Path,
    opts: &Options<'_>,
) -> Result<(), FetchError> {
    let agent = agent_for(url);
    let bar = progress_bar(url);
    let mut contacted = false;
    let mut stalls = 0u32;
    loop {
        let have = fs::metadata(part).map_or(0, |m| m.len());
        let mut request = agent.get(url);
        if have > 0 {
            request = request.set("Range", &format!("bytes={have}-"));
        }
        let failure = match request.call() {
            Ok(response) => {
                contacted = true;
                match receive(response, url, part, have, &bar, opts)? {
                    Received::Whole => {
                        bar.finish_and_clear();
                        return Ok(());
                    }
                    Received::Broken { reason, progressed } => {
                        if progressed {
                            stalls = 0;
                        }
                        reason
                    }
                }
            }
            // The range starts at the end: what we hold is the whole file
            // (the checksum says whether it is the right one).
            Err(ureq::Error::Status(416, _)) if have > 0 => {
                bar.finish_and_clear();
                return Ok(());
            }
            Err(ureq::Error::Status(status, _)) => {
                bar.finish_and_clear();
                return Err(FetchError::Http {
                    url: url.to_owned(),
                    status,
                    dir: dir.to_owned(),
                });
            }
            Err(ureq::Error::Transport(t)) if !contacted => {
                bar.finish_and_clear();
                return Err(FetchError::Unreachable {
                    host: host_of(url).unwrap_or(url).to_owned(),
                    reason: transport_text(&t),
                    url: url.to_owned(),
                    dir: dir.to_owned(),
                });
            }
            Err(ureq::Error::Transport(t)) => transport_text(&t),
        };
        stalls += 1;
        let have = fs::metadata(part).map_or(0, |m| m.len());
        if stalls > MAX_STALLS {
            bar.finish_and_clear();
            return Err(FetchError::BrokeOff {
                url: url.to_owned(),
                have,
                reason: failure,
                part: part.to_owned(),
            });
        }
        bar.suspend(|| {
            (opts.say)(&format!(
                "{}: the connection broke off at byte {have} ({failure}); resuming",
                file_name(url)
            ))
        });
        std::thread::sleep(Duration::from_secs(u64::from(stalls - 1)));
    }
}

/// The download's progress bar, hidden: it is drawn once the first
/// response says how long the file is.
fn progress_bar(url: &str) -> ProgressBar {
    let bar = ProgressBar::hidden();
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message(file_name(url).to_owned());
    bar
}

/// How one response's body went.
enum Received {
    /// The file is complete.
    Whole,
    /// The body stopped short; `progressed` if any byte arrived.
    Broken { reason: String, progressed: bool },
}

/// Appends one response's body to `part` (or starts it over when the
/// server ignored the range and sent the whole file).
fn receive(
    response: ureq::Response,
    url: &str,
    part: &Path,
    have: u64,
    bar: &ProgressBar,
    opts: &Options<'_>,
) -> Result<Received, FetchError> {
    let length: Option<u64> = response
        .header("Content-Length")
        .and_then(|v| v.trim().parse().ok());
    let (start, total) = if response.status() == 206 {
        match response.header("Content-Range").and_then(content_range) {
            Some((start, total)) if start == have => (start, total.or(length.map(|l| start + l))),
            // A range we did not ask for: start over.
            _ => {
                let _ = fs::remove_file(part);
                return Ok(Received::Broken {
                    reason: "the server sent another range than asked for".into(),
                    progressed: true,
                });
            }
        }
    } else {
        (0, length)
    };
    let line = start_line(url, part, start, total);
    bar.suspend(|| (opts.say)(&line));
    bar.set_length(total.unwrap_or(0));
    bar.set_position(start);
    if opts.progress && bar.is_hidden() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
    }
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(start > 0)
        .truncate(start == 0)
        .open(part)
        .map_err(io_err("write", part))?;
    let mut body = response.into_reader();
    let mut buf = vec![0u8; 64 * 1024];
    let mut now = start;
    loop {
        match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                file.write_all(&buf[..n]).map_err(io_err("write", part))?;
                now += n as u64;
                bar.set_position(now);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                file.flush().map_err(io_err("write", part))?;
                return Ok(Received::Broken {
                    reason: e.to_string(),
                    progressed: now > start,
                });
            }
        }
    }
    file.flush().map_err(io_err("write", part))?;
    match total {
        Some(total) if now < total => Ok(Received::Broken {
            reason: format!("the body ended at byte {now} of {total}"),
            progressed: now > start,
        }),
        _ => Ok(Received::Whole),
    }
}

/// What a response starts: the download, or its resumption at `start`.
fn start_line(url: &str, part: &Path, start: u64, total: Option<u64>) -> String {
    if start > 0 {
        format!(
            "resuming {} at byte {start}{}",
            file_name(url),
            total.map_or(String::new(), |t| format!(" of {t}"))
        )
    } else {
        format!(
            "downloading {url}{} into {}",
            total.map_or(String::new(), |t| format!(" ({:.1} MB)", t as f64 / 1e6)),
            part.display()
        )
    }
}

/// `bytes START-END/TOTAL` → (START, TOTAL if known).
fn content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

/// A transport error in a few words.
fn transport_text(t: &ureq::Transport) -> String {
    use std::error::Error as _;
    let mut text = t.message().map(str::to_owned).unwrap_or_default();
    let mut source = t.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&s_text);
        }
        source = s.source();
    }
    if text.is_empty() {
        t.kind().to_string()
    } else {
        text
    }
}

/// The host of an http(s) URL (without port or brackets).
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next();
    }
    authority.split(':').next().filter(|h| !h.is_empty())
}

/// An HTTP agent with timeouts (a silent server must not hang a sweep) and
/// the proxy the environment names for this URL.
fn agent_for(url: &str) -> ureq::Agent {
    let mut builder = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .user_agent(concat!("ddsas/", env!("CARGO_PKG_VERSION")));
    if let Some(proxy) = proxy_for(url, |k| std::env::var(k).ok()) {
        if let Ok(proxy) = ureq::Proxy::new(proxy) {
            builder = builder.proxy(proxy);
        }
    }
    builder.build()
}

/// The proxy for `url` by the usual variables (`https_proxy`,
/// `http_proxy`, `all_proxy`, either case), unless the host is local or
/// listed in `no_proxy` (ureq 2 reads the first three but not the last,
/// which clusters rely on).
fn proxy_for(url: &str, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    let host = host_of(url)?.to_ascii_lowercase();
    if host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
    {
        return None;
    }
    let get = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| env(n).filter(|v| !v.trim().is_empty()))
    };
    if let Some(list) = get(&["no_proxy", "NO_PROXY"]) {
        let skip = list.split(',').map(str::trim).any(|entry| {
            let entry = entry.trim_start_matches('.').to_ascii_lowercase();
            entry == "*"
                || (!entry.is_empty() && (host == entry || host.ends_with(&format!(".{entry}"))))
        });
        if skip {
            return None;
        }
    }
    if url.starts_with("https://") {
        get(&["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"])
    } else {
        get(&["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_hosts_ranges_and_proxies() {
        assert_eq!(
            file_name("https://h/~kriz/cifar-10-binary.tar.gz?x=1"),
            "cifar-10-binary.tar.gz"
        );
        assert_eq!(host_of("http://127.0.0.1:8080/a"), Some("127.0.0.1"));
        assert_eq!(
            host_of("https://u:p@www.cs.toronto.edu/x"),
            Some("www.cs.toronto.edu")
        );
        assert_eq!(host_of("http://[::1]:80/a"), Some("::1"));
        assert_eq!(content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(content_range("items 1-2/3"), None);
        let env = |name: &str| match name {
            "https_proxy" => Some("http://proxy:3128".to_owned()),
            "NO_PROXY" => Some("internal.org, .lab".to_owned()),
            _ => None,
        };
        assert_eq!(
            proxy_for("https://www.cs.toronto.edu/a", env).as_deref(),
            Some("http://proxy:3128")
        );
        assert_eq!(proxy_for("http://www.cs.toronto.edu/a", env), None);
        assert_eq!(proxy_for("https://files.internal.org/a", env), None);
        assert_eq!(proxy_for("https://x.lab/a", env), None);
        assert_eq!(proxy_for("https://127.0.0.1:9/a", env), None);
        assert_eq!(proxy_for("https://localhost/a", env), None);
    }
}
