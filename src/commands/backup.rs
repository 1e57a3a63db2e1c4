//! `backup`: one snapshot now (what the etcd_backup timer runs); prints `<sha256>  <path>`.

use super::run::{Options, Run};
use crate::cli::BackupArgs;
use crate::day2::backup::{take, BackupOptions};
use anyhow::Result;
use std::time::Duration;

pub fn run(o: &BackupArgs) -> Result<()> {
    let run = Run::new(&Options {
        seed: super::run::applied_or(&o.common),
        root: &o.common.root,
        wait_interface: Duration::ZERO,
        lock: None,
    })?;
    let t = take(&BackupOptions::of(
        &run.cfg,
        &run.root,
        o.dir.clone(),
        o.keep,
    ))?;
    log::info!(
        "snapshot at revision {} ({} keys) verified: {}",
        t.status.revision,
        t.status.total_keys,
        t.path.display()
    );
    for p in &t.pruned {
        log::info!("removed the old snapshot {}", p.display());
    }
    println!("{}  {}", t.sha256, t.path.display());
    Ok(())
}
