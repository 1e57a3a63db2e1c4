//! Driving the service manager: live (`daemon-reload`, `enable`, `start --no-block`) or offline
//! under a root (`systemctl --root=DIR enable`, nothing started).
//!
//! The tool drives systemd only through `systemctl` on `PATH`, so that command line is the one seam
//! between this tool and the service manager: a test puts a supervising `systemctl`
//! (`tests/support/supervising-systemctl`) first on `PATH`.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the tool asks of a service manager.
pub trait ServiceManager {
    /// Whether units are started here (a live system) or only enabled (an image under `--root`).
    fn live(&self) -> bool;
    /// On a live system systemd must be the running init, or nothing can be started.
    fn check_running(&self) -> Result<()>;
    fn daemon_reload(&self) -> Result<()>;
    fn enable(&self, unit: &str) -> Result<()>;
    fn is_enabled(&self, unit: &str) -> bool;
    fn is_active(&self, unit: &str) -> bool;
    /// Never blocks: under cloud-init's runcmd a blocking start would wait on boot to finish,
    /// which waits on us.
    fn start(&self, unit: &str) -> Result<()>;
    fn restart(&self, unit: &str) -> Result<()>;
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

    fn is_active(&self, unit: &str) -> bool {
        self.live() && systemctl(&["is-active", "--quiet", unit]).is_ok()
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
}
