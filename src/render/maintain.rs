//! The maintenance service and timer: `etcd-bootstrap maintain` on a schedule.

use super::backup::SELF_PATH;
use crate::seed::{Config, MaintenanceSpec};

/// The maintenance service and timer the seed's `etcd_maintenance` asks for. The service reads
/// the seed where the first-boot unit does (the default source), so it needs no flags.
pub fn maintenance_units(cfg: &Config, m: &MaintenanceSpec) -> (String, String) {
    let service = format!(
        "# Written by etcd-bootstrap from its seed; edit the seed, not this file.\n\
         [Unit]\n\
         Description=etcd maintenance: defragment when over {frag}% fragmented, recover NOSPACE\n\
         After={svc}.service\n\
         Requisite={svc}.service\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={SELF_PATH} maintain\n",
        svc = cfg.service_name,
        frag = m.fragmentation,
    );
    // Members installed together run at different times; the cluster turn keeps them apart anyway.
    let spread = std::time::Duration::from_secs((m.interval.as_secs() / 10).clamp(60, 1800));
    let timer = super::backup::timer_unit("etcd maintenance", m.interval, spread);
    (service, timer)
}
