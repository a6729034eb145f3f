//! Who holds a run: owner ids and process liveness on this host, shared by
//! the orchestrator (taking over runs of dead orchestrators) and `ddsas
//! search` (taking over its own crashed runs).

/// Whether a process of this host is alive (a zombie is not).
pub fn pid_alive(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    if rc != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EPERM) {
        return false;
    }
    // A zombie (dead, not yet reaped) still answers kill(0).
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z" && state != "X"),
        Err(_) => true,
    }
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it (or truncates, which is fine for an id).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).replace(':', "_")
}

/// The signals that ask a search, worker or orchestrator to stop at its
/// next safe point: Ctrl-C (SIGINT), `kill` (SIGTERM), and a closed
/// terminal or ssh session (SIGHUP), whose default would kill the process
/// without releasing its run.
pub struct StopSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers (inside a tokio runtime).
    pub fn new() -> std::io::Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next of them.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
    }
}

/// Watches SIGINT, SIGTERM and SIGHUP for a run in this process: the first
/// sets `stop` (the search ends at its next safe point, the run becomes
/// `interrupted` and keeps its checkpoint); a second exits at once, and
/// the run is taken over from its last checkpoint. `who` prefixes the
/// messages (`worker: ` in worker logs).
pub fn watch_stop_signals(
    rt: &tokio::runtime::Runtime,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    who: &'static str,
) -> Result<(), super::ExecError> {
    use std::sync::atomic::Ordering;
    let mut signals = {
        let _inside = rt.enter();
        StopSignals::new().map_err(super::ExecError::io("installing the signal handlers"))?
    };
    rt.spawn(async move {
        loop {
            signals.recv().await;
            if stop.swap(true, Ordering::SeqCst) {
                crate::errln!("{who}second signal: exiting now; the last checkpoint is kept");
                exit_now(super::EXIT_INTERRUPTED);
            }
            crate::errln!("{who}signal received: stopping at the next safe point (a second one exits at once)");
        }
    });
    Ok(())
}

/// Ends the process at once with `code`, from any thread. `_exit(2)`, not
/// `std::process::exit`: the latter runs libtorch's static destructors
/// while the main thread may still be inside a libtorch call, which then
/// fails ("Invalid (backend, op) pair" from `at::Context`, seen when
/// Slurm's `scancel` and the orchestrator signalled a worker at once), and
/// the panic guard recorded the run as failed before the process was gone.
/// Nothing is lost by skipping the destructors: epochs are committed in
/// transactions, checkpoints are renamed into place, stderr is unbuffered
/// and stdout is flushed at every line.
pub fn exit_now(code: u8) -> ! {
    // SAFETY: _exit has no preconditions; it ends the process without
    // running any handler.
    unsafe { libc::_exit(i32::from(code)) }
}

/// Who holds a run, as written in `runs.owner`: built and parsed only here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// `orch:<host>:<pid>:<start unix ms>`: a `sweep run` orchestrator; the
    /// start time makes it unique per process.
    Orchestrator {
        /// Host name.
        host: String,
        /// Process id.
        pid: i64,
        /// Start, unix milliseconds.
        start_ms: u128,
    },
    /// `search:<host>:<pid>` (older ids: `search:<pid>`, taken as this
    /// host's): a `ddsas search` process.
    Search {
        /// Host name, if the id has one.
        host: Option<String>,
        /// Process id.
        pid: i64,
    },
    /// `slurm:<job>`: a training a pull worker handed to Slurm job `job`
    /// of its own (an `evaluate:` entry with `nproc`), held for that job
    /// while it waits in the queue; its rank 0 takes it over when it
    /// starts, and again after a requeue.
    SlurmJob {
        /// The job id.
        job: String,
    },
}

impl Owner {
    /// This process as an orchestrator.
    pub fn orchestrator() -> Owner {
        let start_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Owner::Orchestrator {
            host: hostname(),
            pid: i64::from(std::process::id()),
            start_ms,
        }
    }

    /// This process as a `ddsas search`.
    pub fn search() -> Owner {
        Owner::Search {
            host: Some(hostname()),
            pid: i64::from(std::process::id()),
        }
    }

    /// Parses an owner id; `None` for ids of another kind.
    pub fn parse(id: &str) -> Option<Owner> {
        if let Some(rest) = id.strip_prefix("orch:") {
            let mut parts = rest.rsplitn(3, ':');
            let start_ms = parts.next()?.parse().ok()?;
            let pid = parts.next()?.parse().ok()?;
            let host = parts.next()?.to_owned();
            return Some(Owner::Orchestrator {
                host,
                pid,
                start_ms,
            });
        }
        if let Some(job) = id.strip_prefix("slurm:") {
            return (!job.is_empty()).then(|| Owner::SlurmJob {
                job: job.to_owned(),
            });
        }
        let rest = id.strip_prefix("search:")?;
        Some(match rest.rsplit_once(':') {
            Some((host, pid)) => Owner::Search {
                host: Some(host.to_owned()),
                pid: pid.parse().ok()?,
            },
            None => Owner::Search {
                host: None,
                pid: rest.parse().ok()?,
            },
        })
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Orchestrator {
                host,
                pid,
                start_ms,
            } => write!(f, "orch:{host}:{pid}:{start_ms}"),
            Owner::Search {
                host: Some(host),
                pid,
            } => write!(f, "search:{host}:{pid}"),
            Owner::Search { host: None, pid } => write!(f, "search:{pid}"),
            Owner::SlurmJob { job } => write!(f, "slurm:{job}"),
        }
    }
}

/// The owner id of a `ddsas search` process: `search:<host>:<pid>`.
pub fn search_owner_id() -> String {
    Owner::search().to_string()
}

/// Whether a run held by `owner` belongs to a `ddsas search` of this host
/// that is no longer alive, so another search may take it over at once
/// instead of waiting for its heartbeat to go stale.
pub fn dead_search_owner(owner: Option<&str>) -> bool {
    let Some(Owner::Search {
        host,
        pid: owner_pid,
    }) = owner.and_then(Owner::parse)
    else {
        return false;
    };
    if host.is_some_and(|h| h != hostname()) {
        return false;
    }
    !pid_alive(owner_pid)
}

#[cfg(test)]
mod tests {
    #[test]
    fn owner_ids_parse_back() {
        let me = Owner::orchestrator();
        assert_eq!(Owner::parse(&me.to_string()), Some(me));
        let Some(Owner::Orchestrator { host, pid, .. }) = Owner::parse("orch:a:b:12:34") else {
            panic!("an orchestrator id");
        };
        assert_eq!(
            (host.as_str(), pid),
            ("a:b", 12),
            "host names may hold colons"
        );
        assert_eq!(
            Owner::parse("search:12"),
            Some(Owner::Search {
                host: None,
                pid: 12
            })
        );
        let job = Owner::SlurmJob { job: "42".into() };
        assert_eq!(Owner::parse("slurm:42"), Some(job.clone()));
        assert_eq!(job.to_string(), "slurm:42");
        assert_eq!(Owner::parse("slurm:"), None);
        assert_eq!(Owner::parse("worker:1"), None);
        assert_eq!(Owner::search().to_string(), search_owner_id());
    }

    use std::time::Duration;

    use super::*;

    #[test]
    fn liveness_of_pids() {
        assert!(pid_alive(i64::from(std::process::id())));
        assert!(!pid_alive(0));
        assert!(!pid_alive(-5));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i64::from(child.id());
        // Exited but not reaped: a zombie counts as dead.
        std::thread::sleep(Duration::from_millis(200));
        assert!(!pid_alive(pid));
        child.wait().unwrap();
    }

    #[test]
    fn dead_searches_of_this_host_are_recognised() {
        let me = search_owner_id();
        assert!(!dead_search_owner(Some(&me)));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i64::from(child.id());
        child.wait().unwrap();
        let dead = format!("search:{}:{pid}", hostname());
        assert!(dead_search_owner(Some(&dead)));
        assert!(dead_search_owner(Some(&format!("search:{pid}"))));
        assert!(!dead_search_owner(Some(&format!("search:elsewhere:{pid}"))));
        assert!(!dead_search_owner(Some("orch:h:1:2")));
        assert!(!dead_search_owner(None));
    }
}
