//! Offsite backups, one room: after `backup` saved and verified a snapshot on this node, one
//! member per interval (the one that takes the interval's claim, a lease-held key in etcd)
//! streams it to an S3-compatible store: file → gzip → parts of 8 MiB, each part's
//! SHA-256 signed with it, the object completed only if its name is new, checked by HEAD, and
//! only then its `_etcd_backup.meta` written: a snapshot without its meta never counts. Then
//! retention (`retention`) under this cluster's prefix.
//!
//! Layout (etcd-manager's): `<prefix>/<cluster token>/<UTC time>-rev<16 hex>/etcd.backup.gz`
//! and `_etcd_backup.meta` beside it.

mod age;
mod credentials;
pub mod fetch;
pub mod gzip;
pub mod list;
pub mod probe;
pub mod retention;
pub mod s3;
mod sigv4;
pub mod unage;
pub mod upload;

use crate::cluster::node::Node;
use crate::day2::backup::Taken;
use crate::etcd::api::Api;
use crate::seed::OffsiteSpec;
use anyhow::{Context as _, Result};
use s3::Store;
use std::time::{Duration, Instant};

pub const OBJECT: &str = "etcd.backup.gz";
/// The object's name when it is encrypted to `recipients`.
pub const OBJECT_AGE: &str = "etcd.backup.gz.age";
pub const META: &str = "_etcd_backup.meta";

/// What a backup run did offsite.
pub enum Outcome {
    Uploaded {
        key: String,
        stored: u64,
        took: Duration,
        pruned: Vec<String>,
    },
    /// Another member uploads this interval: who, and when the cluster's last verified upload
    /// was (`LAST`), if it says.
    Left { why: String, last: Option<i64> },
}

/// `<prefix>/<token>/`: this cluster's part of the store.
pub fn cluster_prefix(node: &Node, spec: &OffsiteSpec) -> String {
    let token = node
        .cfg
        .setting("initial-cluster-token")
        .unwrap_or("etcd-cluster");
    if spec.prefix.is_empty() {
        format!("{token}/")
    } else {
        format!("{}/{token}/", spec.prefix)
    }
}

/// The snapshot dirs under `cluster` in a listing, and whether each has its meta.
pub fn snapshots(listed: &[s3::Listed], cluster: &str) -> Vec<retention::Snap> {
    let mut out: Vec<retention::Snap> = Vec::new();
    for o in listed {
        let Some((dir, file)) = o.key.strip_prefix(cluster).and_then(|r| r.split_once('/')) else {
            continue;
        };
        if !is_snapshot_dir(dir) {
            continue;
        }
        match out.iter_mut().find(|s| s.name == dir) {
            Some(s) => s.verified |= file == META,
            None => out.push(retention::Snap {
                name: dir.to_string(),
                verified: file == META,
            }),
        }
    }
    out
}

/// `YYYYmmddTHHMMSSZ-rev` and 16 hex digits: only what this tool (or etcd-manager) wrote.
fn is_snapshot_dir(d: &str) -> bool {
    let b = d.as_bytes();
    d.len() == 16 + 4 + 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && &d[16..20] == "-rev"
        && d[20..].bytes().all(|c| c.is_ascii_hexdigit())
}

/// The key a member holds, under a lease of about one interval, while the cluster's upload of
/// that interval is its: the first member whose timer fires takes it, the others find it taken.
pub const CLAIM: &str = "etcd-bootstrap/offsite-claim";

/// The claim's lease: a little under one interval, so the claimant's own next run (an interval
/// later, or a little more) finds it gone and takes the next one.
fn claim_ttl(interval: Duration) -> u64 {
    (interval.as_secs() * 19 / 20).max(10)
}

/// The cluster's last verified upload, `<unix seconds> <object key>`, written by its uploader:
/// `status` on any member shows it.
pub const LAST: &str = "etcd-bootstrap/offsite-last";

/// After a local snapshot: upload it when this member takes the interval's claim, then apply
/// retention. A failed upload gives the claim back: the next member's run uploads. What this
/// run did is recorded for `status` (`state::OFFSITE`), failures too.
pub fn after_snapshot(node: &Node, taken: &Taken, spec: &OffsiteSpec, now: i64) -> Result<Outcome> {
    let outcome = claim_and_upload(node, taken, spec, now);
    let record = crate::state::RunRecord {
        at: now,
        ok: outcome.is_ok(),
        result: match &outcome {
            Ok(Outcome::Uploaded { key, .. }) => format!("uploaded {key}"),
            Ok(Outcome::Left { why, .. }) => why.clone(),
            Err(e) => format!("{e:#}"),
        },
    };
    if let Err(e) = record.save(node.root, crate::state::OFFSITE) {
        log::warn!("could not record the offsite run: {e:#}");
    }
    outcome
}

fn claim_and_upload(node: &Node, taken: &Taken, spec: &OffsiteSpec, now: i64) -> Result<Outcome> {
    let cfg = node.cfg;
    let started = Instant::now();
    let endpoint = crate::day2::backup::member_endpoint(cfg);
    let api = Api::new(node.client()?, vec![endpoint.clone()]);
    let me = api
        .status_of(&endpoint)
        .with_context(|| format!("asking {endpoint} for its status"))?;
    let interval = cfg
        .backup
        .as_ref()
        .map(|b| b.interval)
        .unwrap_or(spec.timeout);
    let lease = api
        .grant(claim_ttl(interval))
        .with_context(|| format!("taking the offsite claim on {endpoint}"))?;
    let mine = format!("{:x}", me.member_id);
    if !api.create(CLAIM, &mine, lease)? {
        let _ = api.revoke(lease);
        let holder = api.get(CLAIM).ok().flatten().unwrap_or_default();
        let last = api
            .get(LAST)
            .ok()
            .flatten()
            .and_then(|v| v.split_once(' ').and_then(|(t, _)| t.parse().ok()));
        return Ok(Outcome::Left {
            why: format!("member {holder} uploads this interval's snapshot"),
            last,
        });
    }
    let done = upload_claimed(node, &api, taken, spec, now, &me);
    if let Ok((key, ..)) = &done {
        if let Err(e) = api.put(LAST, &format!("{now} {key}")) {
            log::warn!("could not record the upload in the cluster ({LAST}): {e:#}");
        }
    }
    if done.is_err() {
        // Given back at once: the next member need not wait out the interval.
        let _ = api.revoke(lease);
    }
    done.map(|(key, stored, pruned)| Outcome::Uploaded {
        key,
        stored,
        took: started.elapsed(),
        pruned,
    })
}

fn upload_claimed(
    node: &Node,
    api: &Api,
    taken: &Taken,
    spec: &OffsiteSpec,
    now: i64,
    me: &crate::etcd::member::MemberStatus,
) -> Result<(String, u64, Vec<String>)> {
    let store = Store::open(spec, node.root, Instant::now() + spec.timeout)?;
    let cluster = cluster_prefix(node, spec);
    let members = api.list().map(|m| m.len()).unwrap_or(0);
    let dir = format!(
        "{cluster}{}-rev{:016x}",
        crate::util::time::utc_stamp(now),
        taken.status.revision
    );
    let encrypted = !spec.recipients.is_empty();
    let object = if encrypted { OBJECT_AGE } else { OBJECT };
    let key = format!("{dir}/{object}");
    let stored = upload::upload(&store, &key, &taken.path, &spec.recipients)?;
    let meta = serde_json::json!({
        "etcd_version": me.version,
        "revision": taken.status.revision,
        "revision_source": "etcdutl snapshot status of the saved file",
        "total_keys": taken.status.total_keys,
        "sha256": taken.sha256.to_string(),
        "size": std::fs::metadata(&taken.path).map(|m| m.len()).unwrap_or(0),
        "stored_size": stored.size,
        "parts": stored.parts,
        "compression": "gzip",
        "encrypted": encrypted,
        "encryption": if encrypted { "age X25519" } else { "none" },
        "recipients": spec.recipients.len(),
        "members": members,
        "member": format!("{:x}", me.member_id),
        "taken_at": crate::util::time::utc(now),
        "object": object,
        "tool": concat!("etcd-bootstrap ", env!("CARGO_PKG_VERSION")),
    });
    store.put_new(
        &format!("{dir}/{META}"),
        serde_json::to_vec_pretty(&meta).context("the meta")?,
    )?;
    let pruned = prune(&store, &cluster, spec, now)?;
    Ok((key, stored.size, pruned))
}

/// Applies retention under `cluster`, after a verified upload; the dirs removed.
fn prune(store: &Store, cluster: &str, spec: &OffsiteSpec, now: i64) -> Result<Vec<String>> {
    let listed = store.list(cluster)?;
    let snaps = snapshots(&listed, cluster);
    let today = crate::util::time::utc_stamp(now)[..8].to_string();
    let gone = retention::to_delete(&snaps, spec.keep, spec.keep_daily, &today);
    for dir in &gone {
        let under = format!("{cluster}{dir}/");
        // The meta first: a dir half deleted is no longer counted as a snapshot.
        let mut keys: Vec<&str> = listed
            .iter()
            .filter(|o| o.key.starts_with(&under))
            .map(|o| o.key.as_str())
            .collect();
        keys.sort_by_key(|k| !k.ends_with(META));
        for k in keys {
            store.delete(k)?;
        }
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_snapshot_dirs_and_their_metas() {
        let l = |k: &str| s3::Listed {
            key: k.into(),
            size: 1,
        };
        let c = "p/tok/";
        let listed = [
            l("p/tok/20261201T000000Z-rev0000000000000010/etcd.backup.gz"),
            l("p/tok/20261201T000000Z-rev0000000000000010/_etcd_backup.meta"),
            l("p/tok/20261202T000000Z-rev0000000000000020/etcd.backup.gz"),
            l("p/tok/notes.txt"),
            l("p/tok/x/etcd.backup.gz"),
        ];
        let s = snapshots(&listed, c);
        assert_eq!(s.len(), 2);
        assert!(s[0].verified && !s[1].verified);
    }
}
