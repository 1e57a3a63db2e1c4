//! `maintain`: one maintenance run on this member (what the etcd_maintenance timer runs): the
//! seed's `etcd_maintenance` values, each overridable by a flag. Every run leaves its metrics for
//! node_exporter (`day2::textfile`).

use super::run::{Options, Run};
use crate::cli::MaintainArgs;
use crate::day2::maintain;
use crate::day2::textfile::{self, Job, RunOf};
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
    let (at, started) = (crate::util::time::unix_now(), std::time::Instant::now());
    let done = maintain::run(&run.looking(), &options);
    let ran = RunOf {
        target: "",
        at,
        ok: done.is_ok(),
        duration: started.elapsed(),
        success_at: done.is_ok().then_some(at),
        size: None,
    };
    textfile::record(cfg, &run.root, Job::Maintenance, &[ran]);
    println!("{}", done?);
    Ok(())
}
