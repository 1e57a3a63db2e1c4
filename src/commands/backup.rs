//! `backup`: one snapshot now (what the etcd_backup timer runs); prints `<sha256>  <path>`. With
//! `etcd_backup.offsite`, the snapshot is then uploaded when it is this member's turn; a failed
//! upload keeps the local snapshot, exits 1, and the next run tries again.

use super::run::{Options, Run};
use crate::cli::BackupArgs;
use crate::day2::backup::{take, BackupOptions};
use crate::day2::offsite::{self, Outcome};
use anyhow::{Context as _, Result};

pub fn run(o: &BackupArgs) -> Result<()> {
    let run = Run::new(&Options::scheduled(&o.common))?;
    let node = run.looking();
    let t = take(&BackupOptions::of(&node, o.dir.clone(), o.keep))?;
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
    let Some(spec) = node.cfg.backup.as_ref().and_then(|b| b.offsite.as_ref()) else {
        return Ok(());
    };
    let now = crate::util::time::unix_now();
    let outcome = offsite::after_snapshot(&node, &t, spec, now).with_context(|| {
        format!(
            "uploading the snapshot offsite to {}/{} (kept here: {})",
            spec.endpoint,
            spec.bucket,
            t.path.display()
        )
    })?;
    match outcome {
        Outcome::Uploaded {
            key,
            stored,
            took,
            pruned,
        } => {
            log::info!(
                "offsite: {}/{}/{key} ({}) uploaded and checked in {:.1} s",
                spec.endpoint,
                spec.bucket,
                crate::util::size::format_bytes(stored),
                took.as_secs_f64()
            );
            for p in pruned {
                log::info!("offsite: removed the old snapshot {p}");
            }
        }
        Outcome::Left(why) => log::info!("offsite: not this member's turn: {why}"),
    }
    Ok(())
}
