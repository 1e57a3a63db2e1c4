//! `maintain`: one maintenance run on this member (what the etcd_maintenance timer runs): the
//! seed's `etcd_maintenance` values, each overridable by a flag.

use super::run::{Options, Run};
use crate::cli::MaintainArgs;
use crate::day2::maintain;
use anyhow::Result;

pub fn run(o: &MaintainArgs) -> Result<()> {
    let run = Run::new(&Options::scheduled(&o.common))?;
    let cfg = &run.cfg;
    // The seed's values whether or not its timer is on (a run by hand), each flag over them.
    let spec = &cfg.maintenance;
    let options = maintain::Options {
        fragmentation: o.fragmentation.unwrap_or(spec.fragmentation),
        min_db_size: o.min_db_size.unwrap_or(spec.min_db_size),
        compact_keep_revisions: o
            .compact_keep_revisions
            .unwrap_or(spec.compact_keep_revisions),
        timeout: o.timeout.unwrap_or(cfg.restart_timeout),
    };
    // The timer's run and one by hand never at once (a second waits for the first).
    let _one = crate::host::lock::maintenance(&run.root, options.timeout)?;
    let line = maintain::run(&run.looking(), &options)?;
    println!("{line}");
    Ok(())
}
