//! Offsite backups, one room: after `backup` saved and verified a snapshot on this node, one
//! member per interval (the one that takes the interval's claim, a lease-held key in etcd)
//! streams it to an S3-compatible store: file → gzip → parts of 8 MiB, each part's
//! SHA-256 signed with it, the object completed only if its name is new, checked by HEAD, and
//! only then its `_etcd_backup.meta` written: a snapshot without its meta never counts. Then
//! retention (`retention`) under this cluster's prefix.
//!
//! Layout (etcd-manager's): `<prefix>/<cluster token>/<UTC time>-rev<16 hex>/etcd.backup.gz`
//! and `_etcd_backup.meta` beside it.

mod credentials;
pub mod retention;
pub mod s3;
mod sigv4;

use crate::cluster::node::Node;
use crate::day2::backup::Taken;
use crate::etcd::api::Api;
use crate::seed::OffsiteSpec;
use crate::util::error::Error;
use crate::util::io::Sha256;
use anyhow::{Context as _, Result};
use base64::Engine as _;
use s3::Store;
use std::io::Read;
use std::time::{Duration, Instant};

pub const OBJECT: &str = "etcd.backup.gz";
pub const META: &str = "_etcd_backup.meta";
/// Parts of this size stream through memory one or two at a time (S3 wants at least 5 MiB but
/// for the last, and at most 10 000 of them: 78 GiB, far above etcd's largest database).
const PART: usize = 8 << 20;

/// What a backup run did offsite.
pub enum Outcome {
    Uploaded {
        key: String,
        stored: u64,
        took: Duration,
        pruned: Vec<String>,
    },
    /// Another member uploads this interval.
    Left(String),
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

/// After a local snapshot: upload it when this member takes the interval's claim, then apply
/// retention. A failed upload gives the claim back: the next member's run uploads.
pub fn after_snapshot(node: &Node, taken: &Taken, spec: &OffsiteSpec, now: i64) -> Result<Outcome> {
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
        return Ok(Outcome::Left(format!(
            "member {holder} uploads this interval's snapshot"
        )));
    }
    let done = upload_claimed(node, &api, taken, spec, now, &me);
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
    let key = format!("{dir}/{OBJECT}");
    let stored = upload(&store, &key, &taken.path)?;
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
        "encrypted": false,
        "members": members,
        "member": format!("{:x}", me.member_id),
        "taken_at": crate::util::time::utc(now),
        "object": OBJECT,
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

pub struct Stored {
    pub size: u64,
    pub parts: u32,
}

/// `upload_once`, started over from the first part when the store lost the upload or a part
/// failed in a way worth another try, while the deadline allows.
pub fn upload(store: &Store, key: &str, file: &std::path::Path) -> Result<Stored> {
    let backoff = crate::util::retry::Backoff {
        first: Duration::from_secs(1),
        max: Duration::from_secs(30),
        jitter: true,
    };
    let mut tries = 0;
    loop {
        let e = match upload_once(store, key, file) {
            Ok(s) => return Ok(s),
            Err(e) => e,
        };
        let again = e.downcast_ref::<s3::LostUpload>().is_some()
            || crate::util::error::kind(&e) == crate::util::error::Kind::Transient;
        let wait = backoff.delay(tries);
        if !again || !store.time_for(wait) {
            return Err(e);
        }
        log::warn!(
            "{e:#}; uploading {key} again from its first part in {}",
            crate::util::time::format_duration(wait)
        );
        std::thread::sleep(wait);
        tries += 1;
    }
}

/// Streams `file` gzipped into `key`: a reader thread compresses into parts while this one
/// uploads the previous; at most three parts are in memory. The object counts only once HEAD
/// gives back its size and checksum; on any failure the upload is abandoned (no object).
fn upload_once(store: &Store, key: &str, file: &std::path::Path) -> Result<Stored> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let id = store.create_multipart(key)?;
    let result = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(1);
        s.spawn(move || {
            let mut gz = flate2::read::GzEncoder::new(f, flate2::Compression::fast());
            loop {
                let mut buf = Vec::with_capacity(PART);
                match (&mut gz).take(PART as u64).read_to_end(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {
                        if tx.send(Ok(buf)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        send_parts(store, key, &id, rx)
    });
    let checked = result.and_then(|(parts, size)| {
        store.complete(key, &id, &parts)?;
        verify(store, key, &parts, size)?;
        Ok(Stored {
            size,
            parts: parts.len() as u32,
        })
    });
    if checked.is_err() {
        store.abort(key, &id);
    }
    checked
}

type Parts = Vec<(u32, String, String)>;

fn send_parts(
    store: &Store,
    key: &str,
    id: &str,
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
) -> Result<(Parts, u64)> {
    let mut parts = Vec::new();
    let mut size = 0u64;
    for chunk in rx {
        let chunk = chunk.context("reading and compressing the snapshot")?;
        let n = parts.len() as u32 + 1;
        size += chunk.len() as u64;
        let sum = base64::engine::general_purpose::STANDARD.encode(Sha256::of(&chunk).0);
        let etag = store.upload_part(key, id, n, &bytes::Bytes::from(chunk), &sum)?;
        parts.push((n, etag, sum));
    }
    if parts.is_empty() {
        return Err(Error::other("the snapshot compressed to nothing").into());
    }
    Ok((parts, size))
}

/// HEAD: the size must be what was sent, and a checksum the store gives must be the parts'.
fn verify(store: &Store, key: &str, parts: &Parts, size: u64) -> Result<()> {
    let at = format!("{}/{key}", store.name());
    let (got, sum, etag) = store
        .head(key)?
        .ok_or_else(|| Error::other(format!("{at}: not there after its upload completed")))?;
    if got != size {
        return Err(Error::other(format!(
            "{at}: the store holds {got} bytes, {size} were sent"
        ))
        .into());
    }
    if let Some(sum) = sum {
        let want = composite(parts);
        let bare = |s: &str| s.split('-').next().unwrap_or("").to_string();
        if bare(&sum) != bare(&want) && bare(&sum) != parts[0].2 {
            return Err(Error::other(format!(
                "{at}: the store's checksum {sum} is not the parts' {want}"
            ))
            .into());
        }
    }
    if let Some((_, n)) = etag.rsplit_once('-') {
        if n.parse::<usize>().ok() != Some(parts.len()) {
            return Err(Error::other(format!(
                "{at}: the store holds {n} parts, {} were sent",
                parts.len()
            ))
            .into());
        }
    }
    Ok(())
}

/// S3's checksum of a multipart object: the SHA-256 of its parts' SHA-256s, and their count.
fn composite(parts: &Parts) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut all = Vec::with_capacity(parts.len() * 32);
    for (_, _, s) in parts {
        all.extend(b64.decode(s).unwrap_or_default());
    }
    format!("{}-{}", b64.encode(Sha256::of(&all).0), parts.len())
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
