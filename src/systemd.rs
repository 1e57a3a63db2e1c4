//! Driving systemd: live (`daemon-reload`, `enable`, `start --no-block`) or offline under a root
//! (`systemctl --root=DIR enable`, nothing started).

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone)]
pub enum Mode {
    Live,
    Offline(PathBuf),
}

pub struct Systemd {
    pub mode: Mode,
}

fn systemctl(args: &[&str]) -> Result<String> {
    let shown = format!("systemctl {}", args.join(" "));
    let mut c = Command::new("systemctl");
    c.args(args);
    crate::cmd::run(c, &shown, None)
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

    /// On a live system systemd must be the running init, or nothing can be started.
    pub fn check_running(&self) -> Result<()> {
        if matches!(self.mode, Mode::Live) && !Path::new("/run/systemd/system").exists() {
            bail!(
                "systemd is not running here (no /run/systemd/system), so etcd cannot be started; \
                 use --root DIR to install into an image offline, or --no-start"
            );
        }
        Ok(())
    }

    pub fn daemon_reload(&self) -> Result<()> {
        match &self.mode {
            Mode::Live => systemctl(&["daemon-reload"]).map(|_| ()),
            Mode::Offline(_) => Ok(()),
        }
    }

    pub fn enable(&self, unit: &str) -> Result<()> {
        match &self.mode {
            Mode::Live => systemctl(&["enable", "--quiet", unit]).map(|_| ()),
            Mode::Offline(root) => {
                let r = format!("--root={}", root.display());
                systemctl(&[&r, "enable", "--quiet", unit]).map(|_| ())
            }
        }
    }

    pub fn is_enabled(&self, unit: &str) -> bool {
        match &self.mode {
            Mode::Live => systemctl(&["is-enabled", "--quiet", unit]).is_ok(),
            Mode::Offline(root) => {
                let r = format!("--root={}", root.display());
                systemctl(&[&r, "is-enabled", "--quiet", unit]).is_ok()
            }
        }
    }

    pub fn is_active(&self, unit: &str) -> bool {
        match &self.mode {
            Mode::Live => systemctl(&["is-active", "--quiet", unit]).is_ok(),
            Mode::Offline(_) => false,
        }
    }

    /// `--no-block`: under cloud-init's runcmd a blocking start would wait on boot to finish,
    /// which waits on us.
    pub fn start(&self, unit: &str) -> Result<()> {
        match &self.mode {
            Mode::Live => systemctl(&["start", "--no-block", unit]).map(|_| ()),
            Mode::Offline(_) => Ok(()),
        }
    }

    pub fn restart(&self, unit: &str) -> Result<()> {
        match &self.mode {
            Mode::Live => systemctl(&["restart", "--no-block", unit]).map(|_| ()),
            Mode::Offline(_) => Ok(()),
        }
    }
}
