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

/// The backup service and timer the seed's `etcd_backup` asks for.
pub fn backup_units(cfg: &Config, b: &BackupSpec) -> (String, String) {
    let service = format!(
        "# Written by etcd-bootstrap from its seed; edit the seed, not this file.\n\
         [Unit]\n\
         Description=etcd snapshot into {shown}\n\
         After={svc}.service\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={exe} backup {dir} --keep={keep} {conf} {bin}\n",
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
