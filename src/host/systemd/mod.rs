//! Driving the service manager: live (`daemon-reload`, `enable`, `start --no-block`) or offline
//! under a root (`systemctl --root=DIR enable`, nothing started).
//!
//! The tool drives systemd only through `systemctl` on `PATH`, so that command line is the one seam
//! between this tool and the service manager: a test puts a supervising `systemctl`
//! (`tests/support/supervising-systemctl`) first on `PATH`. The tests beside the code use `fake`,
//! a `ServiceManager` as asynchronous as systemd.

#[cfg(test)]
pub mod fake;

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the tool asks of a service manager.
pub trait ServiceManager: Sync {
    /// Whether units are started here (a live system) or only enabled (an image under `--root`).
    fn live(&self) -> bool;
    /// On a live system systemd must be the running init, or nothing can be started.
    fn check_running(&self) -> Result<()>;
    fn daemon_reload(&self) -> Result<()>;
    fn enable(&self, unit: &str) -> Result<()>;
    fn is_enabled(&self, unit: &str) -> bool;
    /// The unit's `ActiveState` (live systems; `Inactive` offline).
    fn active_state(&self, unit: &str) -> Active;
    /// Active and ready (for etcd, `Type=notify`: it said READY).
    fn is_active(&self, unit: &str) -> bool {
        self.active_state(unit) == Active::Active
    }
    /// Whether the unit file on disk differs from what systemd loaded (`NeedDaemonReload=yes`):
    /// whatever run wrote it, a start or restart before a reload would run the old unit.
    fn needs_reload(&self, unit: &str) -> bool;
    /// Never blocks: under cloud-init's runcmd a blocking start would wait on boot to finish,
    /// which waits on us.
    fn start(&self, unit: &str) -> Result<()>;
    /// Never blocks either: it returns once the job is queued, while the old process may still
    /// run and answer for seconds (see `main_process`).
    fn restart(&self, unit: &str) -> Result<()>;
    /// The unit's main process as the service manager knows it (None: none runs, or it cannot
    /// tell). A restart is over only once this is another process than before.
    fn main_process(&self, unit: &str) -> Option<MainProcess>;
}

/// A unit's `ActiveState=` as systemd says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Active {
    Active,
    /// Started, not ready yet: a `Type=notify` etcd until it sends READY (the first member
    /// waiting for its peers), or a unit between the tries of `Restart=`.
    Activating,
    Reloading,
    Deactivating,
    Inactive,
    Failed,
}

impl Active {
    pub fn parse(s: &str) -> Active {
        match s.trim() {
            "active" => Active::Active,
            "activating" => Active::Activating,
            "reloading" => Active::Reloading,
            "deactivating" => Active::Deactivating,
            "failed" => Active::Failed,
            _ => Active::Inactive,
        }
    }

    /// A process runs, or is about to under `Restart=`: what it reads changing needs a restart
    /// (a start would be merged into the job that runs, and change nothing).
    pub fn running(self) -> bool {
        matches!(
            self,
            Active::Active | Active::Activating | Active::Reloading
        )
    }
}

/// The value of `key=` in `systemctl show` output.
fn shown<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
}

/// A unit's main process: its pid and when it was started (µs of the monotonic clock), which
/// together tell one process from the next even when a pid is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainProcess {
    pub pid: u32,
    pub started_us: u64,
}

impl MainProcess {
    /// From `systemctl show --property=MainPID --property=ExecMainStartTimestampMonotonic`.
    pub fn parse_show(text: &str) -> Option<MainProcess> {
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(k)?.strip_prefix('='))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let pid = u32::try_from(field("MainPID")?).ok()?;
        (pid != 0).then(|| MainProcess {
            pid,
            started_us: field("ExecMainStartTimestampMonotonic").unwrap_or(0),
        })
    }
}

#[derive(Debug, Clone)]
pub enum Mode {
    Live,
    Offline(PathBuf),
}

/// systemd, through `systemctl`.
pub struct Systemd {
    pub mode: Mode,
}

fn systemctl(args: &[&str]) -> Result<String> {
    let shown = format!("systemctl {}", args.join(" "));
    let mut c = Command::new("systemctl");
    c.args(args);
    crate::util::cmd::run(c, &shown, None)
        .map(|out| out.trim().to_string())
        .map_err(|e| {
            // Not a failure systemctl reported: it could not be run at all.
            if e.root_cause().downcast_ref::<std::io::Error>().is_some() {
                e.context("systemctl could not be run (is systemd installed?)")
            } else {
                e
            }
        })
}

impl Systemd {
    pub fn new(root: &Path) -> Systemd {
        if root == Path::new("/") {
            Systemd { mode: Mode::Live }
        } else {
            Systemd {
                mode: Mode::Offline(root.to_path_buf()),
            }
        }
    }

    /// `systemctl [--root=DIR] <args>`.
    fn ctl(&self, args: &[&str]) -> Result<String> {
        match &self.mode {
            Mode::Live => systemctl(args),
            Mode::Offline(root) => {
                let r = format!("--root={}", root.display());
                let mut all = vec![r.as_str()];
                all.extend_from_slice(args);
                systemctl(&all)
            }
        }
    }
}

impl ServiceManager for Systemd {
    fn live(&self) -> bool {
        matches!(self.mode, Mode::Live)
    }

    fn check_running(&self) -> Result<()> {
        if self.live() && !Path::new("/run/systemd/system").exists() {
            bail!(
                "systemd is not running here (no /run/systemd/system), so etcd cannot be started; \
                 use --root DIR to install into an image offline, or --no-start"
            );
        }
        Ok(())
    }

    fn daemon_reload(&self) -> Result<()> {
        if !self.live() {
            return Ok(());
        }
        systemctl(&["daemon-reload"]).map(|_| ())
    }

    /// `--no-reload`: enabling only matters at the next boot, and every `enable` would otherwise
    /// reload systemd (seconds each at first boot on a slow VM). The one reload a new or changed
    /// unit needs is `daemon_reload`, before the start.
    fn enable(&self, unit: &str) -> Result<()> {
        self.ctl(&["enable", "--quiet", "--no-reload", unit])
            .map(|_| ())
    }

    fn is_enabled(&self, unit: &str) -> bool {
        self.ctl(&["is-enabled", "--quiet", unit]).is_ok()
    }

    /// From `show`, not `is-active`: that exits 3 for `activating` as for `inactive`.
    fn active_state(&self, unit: &str) -> Active {
        if !self.live() {
            return Active::Inactive;
        }
        systemctl(&["show", "--property=ActiveState", unit])
            .ok()
            .and_then(|t| shown(&t, "ActiveState").map(Active::parse))
            .unwrap_or(Active::Inactive)
    }

    fn needs_reload(&self, unit: &str) -> bool {
        self.live()
            && systemctl(&["show", "--property=NeedDaemonReload", unit])
                .ok()
                .is_some_and(|t| shown(&t, "NeedDaemonReload") == Some("yes"))
    }

    /// A unit file written since systemd last read its unit dirs may be "not found" to an older
    /// systemd: then one reload, and the start again.
    fn start(&self, unit: &str) -> Result<()> {
        if !self.live() {
            return Ok(());
        }
        let start = || systemctl(&["start", "--no-block", unit]).map(|_| ());
        start().or_else(|first| {
            log::debug!("{first:#}; reloading systemd and starting {unit} again");
            self.daemon_reload()?;
            start()
        })
    }

    fn restart(&self, unit: &str) -> Result<()> {
        if !self.live() {
            return Ok(());
        }
        systemctl(&["restart", "--no-block", unit]).map(|_| ())
    }

    fn main_process(&self, unit: &str) -> Option<MainProcess> {
        if !self.live() {
            return None;
        }
        let args = [
            "show",
            "--property=MainPID",
            "--property=ExecMainStartTimestampMonotonic",
            unit,
        ];
        systemctl(&args)
            .ok()
            .and_then(|t| MainProcess::parse_show(&t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_main_process_from_systemctl_show() {
        let p =
            MainProcess::parse_show("MainPID=4242\nExecMainStartTimestampMonotonic=987654321\n");
        assert_eq!(
            p,
            Some(MainProcess {
                pid: 4242,
                started_us: 987654321
            })
        );
        // Either order, and no process at all.
        let q = MainProcess::parse_show("ExecMainStartTimestampMonotonic=5\nMainPID=7\n");
        assert_eq!(q.map(|p| (p.pid, p.started_us)), Some((7, 5)));
        assert_eq!(
            MainProcess::parse_show("MainPID=0\nExecMainStartTimestampMonotonic=0\n"),
            None
        );
        assert_eq!(MainProcess::parse_show("garbage"), None);
    }

    #[test]
    fn reads_the_active_state_and_whether_a_reload_is_needed() {
        assert_eq!(
            shown("ActiveState=activating\n", "ActiveState").map(Active::parse),
            Some(Active::Activating)
        );
        assert!(Active::Activating.running() && Active::Active.running());
        assert!(!Active::Deactivating.running() && !Active::Failed.running());
        assert_eq!(Active::parse("garbage"), Active::Inactive);
        assert_eq!(
            shown("NeedDaemonReload=yes", "NeedDaemonReload"),
            Some("yes")
        );
        assert_eq!(shown("X=1", "NeedDaemonReload"), None);
    }
}
