//! `backup`: one snapshot now (what the etcd_backup timer runs); prints `<sha256>  <path>`.

use crate::cli::BackupArgs;
use crate::day2::backup::{take, BackupOptions};
use anyhow::Result;

pub fn run(o: &BackupArgs) -> Result<()> {
    let t = take(&BackupOptions {
        root: o.root.clone(),
        dir: o.dir.clone(),
        keep: o.keep,
        conf_dir: o.conf_dir.clone(),
        bin_dir: o.bin_dir.clone(),
    })?;
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
