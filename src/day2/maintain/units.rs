//! The maintenance service and timer: `etcd-bootstrap maintain` on a schedule.

use crate::day2::timer::{sandbox, timer_unit, SELF_PATH};
use crate::seed::{Config, MaintenanceSpec};

/// The most one maintenance run may take: its wait for the turn, a defragmentation (at least 10
/// min), the wait for the member to answer again, with room to spare.
fn timeout(cfg: &Config) -> std::time::Duration {
    cfg.restart_timeout * 2 + std::time::Duration::from_secs(900)
}

/// The maintenance service and timer the seed's `etcd_maintenance` asks for. The service reads
/// the seed apply applied (`state::APPLIED_SEED`, its default), never the network.
pub fn maintenance_units(cfg: &Config, m: &MaintenanceSpec) -> (String, String) {
    let mut writes = vec![
        std::path::Path::new(crate::state::DIR),
        std::path::Path::new("/run"),
    ];
    writes.extend(cfg.textfile_dir.as_deref());
    let service = format!(
        "# Written by etcd-bootstrap from its seed; edit the seed, not this file.\n\
         [Unit]\n\
         Description=etcd maintenance: defragment when over {frag}% fragmented, recover NOSPACE\n\
         After={svc}.service\n\
         Requisite={svc}.service\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         # Reads the seed apply applied: {applied}\n\
         ExecStart={SELF_PATH} maintain\n\
         {sandbox}",
        svc = cfg.service_name,
        frag = m.fragmentation,
        applied = crate::state::APPLIED_SEED,
        sandbox = sandbox(timeout(cfg), &writes),
    );
    // Members installed together run at different times; the cluster turn keeps them apart anyway.
    let spread = std::time::Duration::from_secs((m.interval.as_secs() / 10).clamp(60, 1800));
    let timer = timer_unit("etcd maintenance", m.interval, spread);
    (service, timer)
}
