//! Telling one etcd process from the next: a restart is over only when the process that runs
//! this member is another than the one before the restart was asked (`restart --no-block`
//! returns before the job runs, and the old process may answer for seconds).

use crate::host::systemd::MainProcess;

/// Which etcd process runs this member, as each witness tells.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Instance {
    /// The service manager's main process.
    pub main: Option<MainProcess>,
    /// etcd's own `process_start_time_seconds`, from the process that answers.
    pub started: Option<f64>,
}

impl Instance {
    /// What still keeps `now` from being another process than `self` (taken before the restart
    /// was asked), if anything: every witness that spoke before must now name a process started
    /// later.
    pub fn not_replaced_by(&self, now: &Instance) -> Option<&'static str> {
        if let Some(before) = self.main {
            match now.main {
                Some(n) if n != before && n.started_us >= before.started_us => {}
                Some(_) => return Some("the service manager still runs the old process"),
                None => return Some("the service manager runs no etcd process yet"),
            }
        }
        if let Some(before) = self.started {
            match now.started {
                Some(n) if n > before => {}
                Some(_) => return Some("the old etcd process still answers"),
                None => return Some("no etcd process answers yet"),
            }
        }
        if self.main.is_none() && self.started.is_none() && now.main.is_none() {
            return Some("no etcd process runs yet");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn main(pid: u32, started_us: u64) -> Option<MainProcess> {
        Some(MainProcess { pid, started_us })
    }

    #[test]
    fn a_restart_is_over_only_when_every_witness_names_a_new_process() {
        let before = Instance {
            main: main(100, 5_000),
            started: Some(1000.25),
        };
        // Queued, not run yet: the old process runs and answers.
        let e = before.not_replaced_by(&before).unwrap();
        assert_eq!(e, "the service manager still runs the old process");
        // Stopped, nothing started yet.
        let gone = Instance {
            main: None,
            started: None,
        };
        assert!(before.not_replaced_by(&gone).is_some());
        // The service manager runs a new process, but the old one still answers on the port.
        let half = Instance {
            main: main(200, 9_000),
            started: Some(1000.25),
        };
        assert_eq!(
            before.not_replaced_by(&half).unwrap(),
            "the old etcd process still answers"
        );
        let new = Instance {
            main: main(200, 9_000),
            started: Some(1009.5),
        };
        assert_eq!(before.not_replaced_by(&new), None);
        // A reused pid with a later start is a new process.
        let reused = Instance {
            main: main(100, 9_000),
            started: Some(1009.5),
        };
        assert_eq!(before.not_replaced_by(&reused), None);
        // A witness that did not speak before is not asked after.
        let only_etcd = Instance {
            main: None,
            started: Some(1000.25),
        };
        assert!(only_etcd.not_replaced_by(&new).is_none());
        assert!(only_etcd.not_replaced_by(&only_etcd).is_some());
    }
}
