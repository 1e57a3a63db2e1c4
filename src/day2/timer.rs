//! A scheduled day-2 feature (`backup`, `maintain`) as a step: its service and timer files are
//! installed with the rest (`Step::files`), and the timer is enabled once etcd runs. The shape
//! every scheduled service shares lives here too: where it finds this tool, its sandbox, and
//! its timer.

use super::{Node, Step};
use crate::install::desired::{file, FileKind, Item, Meta};
use crate::seed::Config;
use crate::util::time::format_duration;
use anyhow::{Context as _, Result};
use std::path::PathBuf;
use std::time::Duration;

use crate::state::UNIT_DIR;
/// A scheduled service and its timer: the files installed with the rest, the timer enabled (and
/// started on a live system) once etcd runs.
pub struct TimerStep {
    /// (file name, text) of the service and the timer.
    units: [(String, String); 2],
    /// What else the feature installs (the dir its service writes into: under systemd's
    /// `ProtectSystem=strict` the service cannot make it).
    extra: Vec<Item>,
    timer: String,
    /// What it does, for the log: "a snapshot every 1h".
    does: String,
}

impl TimerStep {
    /// `names`: (service, timer); `texts`: their unit files.
    pub fn new(names: (String, String), texts: (String, String), does: String) -> TimerStep {
        TimerStep {
            timer: names.1.clone(),
            units: [(names.0, texts.0), (names.1, texts.1)],
            extra: vec![],
            does,
        }
    }

    /// The same, installing `items` too (before its units).
    pub fn with(mut self, items: Vec<Item>) -> TimerStep {
        self.extra = items;
        self
    }
}

impl Step for TimerStep {
    /// Config, not Unit: etcd does not read these, so a change needs no etcd restart.
    fn files(&self, _cfg: &Config) -> Vec<Item> {
        let units = self.units.iter().map(|(name, text)| {
            file(
                PathBuf::from(UNIT_DIR).join(name),
                Meta::root(0o644),
                text.clone(),
                FileKind::Config,
            )
        });
        self.extra.iter().cloned().chain(units).collect()
    }

    fn preview(&self, node: &Node) -> Vec<String> {
        if node.services.is_enabled(&self.timer) {
            vec![]
        } else {
            vec![format!("enable    unit   {}", self.timer)]
        }
    }

    fn after_start(&mut self, node: &Node) -> Result<()> {
        let timer = &self.timer;
        if node.services.is_enabled(timer) {
            return Ok(());
        }
        node.services
            .enable(timer)
            .with_context(|| format!("enabling {timer}"))?;
        log::info!("enabled {timer}: {}", self.does);
        if node.mode.live_start {
            node.services.start(timer)?;
        }
        Ok(())
    }
}

/// Where the scheduled services find this tool: where the .deb and the images put it.
pub const SELF_PATH: &str = "/usr/local/bin/etcd-bootstrap";

/// The sandbox of a scheduled service that runs this tool as root: a deadline for the whole run
/// (a store or member that never answers cannot keep it running), the system read-only but for
/// `writes` (each `-`: a dir that is not there yet is no failure), no new privileges, no devices,
/// no kernel knobs, only the address families it uses (the members over TCP, the journal, the
/// interface facts over netlink), and only the capabilities root needs to read and write files
/// etcd's user owns.
pub fn sandbox(timeout: Duration, writes: &[&std::path::Path]) -> String {
    let rw: Vec<String> = writes
        .iter()
        .map(|p| crate::render::systemd_word(&format!("-{}", p.display())))
        .collect();
    format!(
        "TimeoutStartSec={}\n\
         NoNewPrivileges=yes\n\
         ProtectSystem=strict\n\
         ReadWritePaths={}\n\
         PrivateTmp=yes\n\
         PrivateDevices=yes\n\
         ProtectHome=yes\n\
         ProtectKernelTunables=yes\n\
         ProtectKernelModules=yes\n\
         ProtectKernelLogs=yes\n\
         ProtectControlGroups=yes\n\
         ProtectClock=yes\n\
         ProtectHostname=yes\n\
         ProtectProc=invisible\n\
         RestrictNamespaces=yes\n\
         RestrictRealtime=yes\n\
         RestrictSUIDSGID=yes\n\
         LockPersonality=yes\n\
         MemoryDenyWriteExecute=yes\n\
         RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\n\
         SystemCallArchitectures=native\n\
         SystemCallFilter=@system-service\n\
         SystemCallErrorNumber=EPERM\n\
         CapabilityBoundingSet=CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_CHOWN CAP_FOWNER\n\
         UMask=0077\n",
        timeout.as_secs(),
        rw.join(" ")
    )
}

/// A timer that runs its service `interval` after boot and after each run, each time up to
/// `spread` later.
pub fn timer_unit(what: &str, interval: Duration, spread: Duration) -> String {
    let iv = format_duration(interval);
    let spread = format_duration(spread);
    format!(
        "# Written by etcd-bootstrap from its seed; edit the seed, not this file.\n\
         [Unit]\n\
         Description={what} every {iv}\n\
         \n\
         [Timer]\n\
         OnBootSec={iv}\n\
         OnUnitActiveSec={iv}\n\
         RandomizedDelaySec={spread}\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n"
    )
}

#[cfg(test)]
#[path = "timer_tests.rs"]
mod tests;
