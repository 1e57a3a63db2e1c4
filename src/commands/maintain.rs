//! `maintain`: one maintenance run on this member (what the etcd_maintenance timer runs): the
//! seed's `etcd_maintenance` values, each overridable by a flag.

use super::run::{Options, Run};
use crate::cli::MaintainArgs;
use crate::cluster::maintain;
use crate::seed::defaults::{MAINTENANCE_FRAGMENTATION, MAINTENANCE_MIN_DB_SIZE};
use anyhow::Result;
use std::time::Duration;

pub fn run(o: &MaintainArgs) -> Result<()> {
    let run = Run::new(&Options {
        seed: o.common.seed_arg(),
        root: &o.common.root,
        wait_interface: Duration::ZERO,
        lock: None,
    })?;
    let cfg = &run.cfg;
    // A seed with `enabled: false` still allows a run by hand, with the defaults.
    let spec = cfg.maintenance.as_ref();
    let options = maintain::Options {
        fragmentation: o
            .fragmentation
            .or(spec.map(|s| s.fragmentation))
            .unwrap_or_else(|| MAINTENANCE_FRAGMENTATION.parse().unwrap_or(50)),
        min_db_size: o
            .min_db_size
            .or(spec.map(|s| s.min_db_size))
            .unwrap_or_else(|| {
                crate::util::size::parse_bytes(MAINTENANCE_MIN_DB_SIZE).unwrap_or(100 << 20)
            }),
        compact_keep_revisions: o
            .compact_keep_revisions
            .or(spec.map(|s| s.compact_keep_revisions))
            .unwrap_or(0),
        timeout: o.timeout.unwrap_or(cfg.restart_timeout),
    };
    let line = maintain::run(cfg, &run.root, &options)?;
    println!("{line}");
    Ok(())
}
