//! `backup`: one snapshot now (what the etcd_backup timer runs); prints `<sha256>  <path>`. With
//! `etcd_backup.offsite`, the snapshot is then uploaded when it is this member's turn; a failed
//! upload keeps the local snapshot, exits 1, and the next run tries again. Every run, failed or
//! not, leaves its metrics for node_exporter (`day2::textfile`). `--list` only lists, `--download`
//! only fetches one back.

use super::run::{Options, Run};
use crate::cli::BackupArgs;
use crate::day2::backup::{take, BackupOptions, Taken};
use crate::day2::offsite::{self, Outcome};
use crate::day2::textfile::{self, Job, RunOf};
use crate::seed::OffsiteSpec;
use anyhow::{Context as _, Result};
use std::time::Instant;

pub fn run(o: &BackupArgs) -> Result<()> {
    let run = Run::new(&Options::scheduled(&o.common))?;
    let node = run.looking();
    if o.list {
        return super::backup_list::run(&node, o);
    }
    if o.download {
        return super::backup_list::download(&node, o);
    }
    let now = crate::util::time::unix_now();
    let started = Instant::now();
    let taken = take(&BackupOptions::of(&node, o.dir.clone(), o.keep));
    let local = RunOf {
        target: "local",
        at: now,
        ok: taken.is_ok(),
        duration: started.elapsed(),
        success_at: taken.is_ok().then_some(now),
        size: taken.as_ref().ok().map(|t| t.size),
    };
    let t = match taken {
        Ok(t) => t,
        Err(e) => {
            textfile::record(node.cfg, node.root, Job::Backup, &[local]);
            return Err(e);
        }
    };
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
        textfile::record(node.cfg, node.root, Job::Backup, &[local]);
        return Ok(());
    };
    let started = Instant::now();
    let outcome = offsite::after_snapshot(&node, &t, spec, now);
    let offsite = RunOf {
        target: "offsite",
        at: now,
        ok: outcome.is_ok(),
        duration: started.elapsed(),
        success_at: match &outcome {
            Ok(Outcome::Uploaded { .. }) => Some(now),
            Ok(Outcome::Left { last, .. }) => *last,
            Err(_) => None,
        },
        size: match &outcome {
            Ok(Outcome::Uploaded { stored, .. }) => Some(*stored),
            _ => None,
        },
    };
    textfile::record(node.cfg, node.root, Job::Backup, &[local, offsite]);
    report(outcome, spec, &t)
}

fn report(outcome: Result<Outcome>, spec: &OffsiteSpec, t: &Taken) -> Result<()> {
    let outcome = outcome.with_context(|| {
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
        Outcome::Left { why, .. } => log::info!("offsite: not this member's turn: {why}"),
    }
    Ok(())
}
