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

/// The owner id of a `ddsas search` process: `search:<host>:<pid>`.
pub fn search_owner_id() -> String {
    format!("search:{}:{}", hostname(), std::process::id())
}

/// Whether a run held by `owner` (with worker `pid`) belongs to a `ddsas
/// search` of this host that is no longer alive, so another search may take
/// it over at once instead of waiting for its heartbeat to go stale. Older
/// ids without a host (`search:<pid>`) count as this host's.
pub fn dead_search_owner(owner: Option<&str>, pid: Option<i64>) -> bool {
    let Some(rest) = owner.and_then(|o| o.strip_prefix("search:")) else {
        return false;
    };
    let (host, owner_pid) = match rest.rsplit_once(':') {
        Some((host, p)) => (Some(host), p.parse::<i64>().ok()),
        None => (None, rest.parse::<i64>().ok()),
    };
    if host.is_some_and(|h| h != hostname()) {
        return false;
    }
    match owner_pid.or(pid) {
        Some(p) => !pid_alive(p),
        None => false,
    }
}

#[cfg(test)]
mod tests {
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
        assert!(!dead_search_owner(Some(&me), None));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i64::from(child.id());
        child.wait().unwrap();
        let dead = format!("search:{}:{pid}", hostname());
        assert!(dead_search_owner(Some(&dead), Some(pid)));
        assert!(dead_search_owner(Some(&format!("search:{pid}")), None));
        assert!(!dead_search_owner(
            Some(&format!("search:elsewhere:{pid}")),
            None
        ));
        assert!(!dead_search_owner(Some("orch:h:1:2"), Some(pid)));
        assert!(!dead_search_owner(None, Some(pid)));
    }
}
