//! `backup`: one snapshot now (what the etcd_backup timer runs); prints `<sha256>  <path>`.

use super::run::{Options, Run};
use crate::cli::BackupArgs;
use crate::day2::backup::{take, BackupOptions};
use anyhow::Result;

pub fn run(o: &BackupArgs) -> Result<()> {
    let run = Run::new(&Options::scheduled(&o.common))?;
    let t = take(&BackupOptions::of(&run.looking(), o.dir.clone(), o.keep))?;
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
