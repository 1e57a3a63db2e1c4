//! The backup service and timer: `etcd-bootstrap backup` on a schedule.

use crate::seed::{BackupSpec, Config};
use crate::util::time::format_duration;

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
    let iv = format_duration(b.interval);
    // Members of one cluster were often installed together: spread their snapshots a little.
    let spread = format_duration(std::time::Duration::from_secs(
        (b.interval.as_secs() / 10).clamp(1, 300),
    ));
    let timer = format!(
        "# Written by etcd-bootstrap from its seed; edit the seed, not this file.\n\
         [Unit]\n\
         Description=etcd snapshot every {iv}\n\
         \n\
         [Timer]\n\
         OnBootSec={iv}\n\
         OnUnitActiveSec={iv}\n\
         RandomizedDelaySec={spread}\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n"
    );
    (service, timer)
}
