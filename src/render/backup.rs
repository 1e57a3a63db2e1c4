//! The backup service and timer: `etcd-bootstrap backup` on a schedule.

use crate::seed::{BackupSpec, Config};
use crate::util::time::format_duration;
use std::time::Duration;

/// `--flag=<path>` as one unit word, quoted when the path needs it.
fn arg(flag: &str, path: &std::path::Path) -> String {
    super::systemd_word(&format!("{flag}{}", path.display()))
}

/// Where the backup timer finds this tool: where the .deb and the images put it.
pub const SELF_PATH: &str = "/usr/local/bin/etcd-bootstrap";

/// The sandbox of a scheduled service that runs this tool as root: a deadline for the whole run
/// (a store or member that never answers cannot keep it running), the system read-only but for
/// `writes` (each `-`: a dir that is not there yet is no failure), no new privileges, no devices,
/// no kernel knobs, only the address families it uses (the members over TCP, the journal, the
/// interface facts over netlink), and only the capabilities root needs to read and write files
/// etcd's user owns.
pub(super) fn sandbox(timeout: Duration, writes: &[&std::path::Path]) -> String {
    let rw: Vec<String> = writes
        .iter()
        .map(|p| super::systemd_word(&format!("-{}", p.display())))
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

/// The most one scheduled backup may take: a snapshot of etcd's largest database (8 GiB) streams
/// in minutes.
const BACKUP_TIMEOUT: Duration = Duration::from_secs(3600);

/// The backup service and timer the seed's `etcd_backup` asks for.
pub fn backup_units(cfg: &Config, b: &BackupSpec) -> (String, String) {
    let state = std::path::Path::new(crate::state::DIR);
    let service = format!(
        "# Written by etcd-bootstrap from its seed; edit the seed, not this file.\n\
         [Unit]\n\
         Description=etcd snapshot into {shown}\n\
         After={svc}.service\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={exe} backup {dir} --keep={keep} {conf} {bin}\n\
         {sandbox}",
        sandbox = sandbox(
            BACKUP_TIMEOUT,
            &[&b.dir, state, std::path::Path::new("/run")]
        ),
        svc = cfg.service_name,
        shown = b.dir.display().to_string().replace('%', "%%"),
        dir = arg("--dir=", &b.dir),
        keep = b.keep,
        conf = arg("--conf-dir=", &cfg.conf_dir),
        bin = arg("--bin-dir=", &cfg.bin_dir),
        exe = SELF_PATH,
    );
    // Members of one cluster were often installed together: spread their snapshots a little.
    let spread = std::time::Duration::from_secs((b.interval.as_secs() / 10).clamp(1, 300));
    let timer = timer_unit("etcd snapshot", b.interval, spread);
    (service, timer)
}

/// A timer that runs its service `interval` after boot and after each run, each time up to
/// `spread` later.
pub(super) fn timer_unit(what: &str, interval: Duration, spread: Duration) -> String {
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
