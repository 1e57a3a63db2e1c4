//! `backup --list`: the local snapshots and this cluster's offsite ones, newest first, one line
//! (or JSON object) each. The local ones are listed even when the store cannot be: the store's
//! error is then said, and the exit is 1. `backup --download`: one back from the store, checked.

use crate::cli::{BackupArgs, Output};
use crate::cluster::node::Node;
use crate::day2::backup::{saved, BackupOptions};
use crate::util::size::format_bytes;
use anyhow::Result;
use serde::Serialize;

#[derive(Serialize)]
struct Row {
    target: &'static str,
    /// Unix seconds, from the name.
    taken: Option<i64>,
    revision: Option<u64>,
    size: u64,
    encrypted: bool,
    verified: bool,
    location: String,
}

pub fn run(node: &Node, o: &BackupArgs) -> Result<()> {
    let dir = crate::util::fs::under(node.root, &BackupOptions::of(node, o.dir.clone(), None).dir);
    let mut rows: Vec<Row> = saved(&dir)
        .into_iter()
        .map(|s| Row {
            target: "local",
            taken: s.taken,
            revision: s.revision,
            size: s.size,
            encrypted: false,
            verified: s.verified,
            location: s.path.display().to_string(),
        })
        .collect();
    let spec = node.cfg.backup.as_ref().and_then(|b| b.offsite.as_ref());
    let remote = spec.map(|spec| crate::day2::offsite::list::list(node, spec));
    if let Some(Ok(remote)) = &remote {
        rows.extend(remote.iter().map(|r| Row {
            target: "offsite",
            taken: r.taken,
            revision: r.revision,
            size: r.size,
            encrypted: r.encrypted,
            verified: r.verified,
            location: r.url.clone(),
        }));
    }
    rows.sort_by_key(|r| std::cmp::Reverse((r.taken, r.revision)));
    match o.output {
        Output::Json => {
            for r in &rows {
                println!("{}", crate::util::text::json_line(r)?);
            }
        }
        Output::Text => print!("{}", table(&rows)),
    }
    match (remote, spec) {
        (Some(Err(e)), Some(spec)) => Err(e.context(format!(
            "listing the offsite snapshots at {}/{} (the local ones are listed above)",
            spec.endpoint, spec.bucket
        ))),
        _ => Ok(()),
    }
}

pub fn download(node: &Node, o: &BackupArgs) -> Result<()> {
    let spec = node
        .cfg
        .backup
        .as_ref()
        .and_then(|b| b.offsite.as_ref())
        .ok_or_else(|| {
            crate::util::error::Error::input("--download: the seed has no etcd_backup.offsite")
        })?;
    let identity = o
        .identity
        .as_ref()
        .map(|p| {
            crate::day2::offsite::unage::Identity::read(
                &crate::util::fs::under(node.root, p),
                "--identity",
            )
        })
        .transpose()?;
    let dir = crate::util::fs::under(node.root, &BackupOptions::of(node, o.dir.clone(), None).dir);
    let f = crate::day2::offsite::fetch::fetch(
        node,
        spec,
        identity.as_ref(),
        o.snapshot.as_deref(),
        &dir,
    )?;
    log::info!(
        "fetched {} (revision {}): its sha256 is its meta's",
        f.from,
        f.revision
    );
    println!("{}  {}", f.sha256, f.path.display());
    Ok(())
}

fn table(rows: &[Row]) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut out = format!(
        "{:<8} {:<23} {:>10} {:>10} {:<9} {:<8} {}\n",
        "TARGET", "TAKEN", "REVISION", "SIZE", "ENCRYPTED", "VERIFIED", "LOCATION"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<8} {:<23} {:>10} {:>10} {:<9} {:<8} {}\n",
            r.target,
            r.taken
                .map(crate::util::time::utc)
                .unwrap_or_else(|| "?".into()),
            r.revision
                .map(|v| v.to_string())
                .unwrap_or_else(|| "?".into()),
            format_bytes(r.size),
            yes(r.encrypted),
            yes(r.verified),
            crate::util::text::printable(&r.location),
        ));
    }
    if rows.is_empty() {
        out.push_str("(no snapshot)\n");
    }
    out
}
