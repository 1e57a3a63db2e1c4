//! The backup service and timer: `etcd-bootstrap backup` on a schedule.

use crate::day2::timer::{sandbox, timer_unit, SELF_PATH};
use crate::seed::{BackupSpec, Config};
use std::time::Duration;

/// The most one scheduled backup may take: a snapshot of etcd's largest database (8 GiB) streams
/// in minutes.
const BACKUP_TIMEOUT: Duration = Duration::from_secs(3600);

/// The backup service and timer the seed's `etcd_backup` asks for. The service runs `backup` with
/// no flags: it reads the seed apply applied (`state::APPLIED_SEED`), as `maintain` does, so no
/// setting is written into the unit and read back.
pub fn backup_units(cfg: &Config, b: &BackupSpec) -> (String, String) {
    let state = std::path::Path::new(crate::state::DIR);
    let mut writes = vec![b.dir.as_path(), state, std::path::Path::new("/run")];
    writes.extend(cfg.textfile_dir.as_deref());
    let service = format!(
        "# Written by etcd-bootstrap from its seed; edit the seed, not this file.\n\
         [Unit]\n\
         Description=etcd snapshot into {shown}\n\
         After={svc}.service\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         # Reads the seed apply applied: {applied}\n\
         ExecStart={exe} backup\n\
         {sandbox}",
        applied = crate::state::APPLIED_SEED,
        sandbox = sandbox(BACKUP_TIMEOUT, &writes),
        svc = cfg.service_name,
        shown = b.dir.display().to_string().replace('%', "%%"),
        exe = SELF_PATH,
    );
    // Members of one cluster were often installed together: spread their snapshots a little.
    let spread = std::time::Duration::from_secs((b.interval.as_secs() / 10).clamp(1, 300));
    let timer = timer_unit("etcd snapshot", b.interval, spread);
    (service, timer)
}
