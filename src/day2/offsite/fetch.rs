//! A snapshot back from the store, checked: the newest verified snapshot of this cluster (or the
//! one named), downloaded, decrypted with the identity when it is sealed, gunzipped, and its
//! sha256 compared with its meta's. One that does not match is skipped for the next newest, and
//! said so: a snapshot is never handed on unless it is the one the meta describes.

use super::s3::Store;
use super::unage::{Decryptor, Identity};
use super::{cluster_prefix, snapshots, META, OBJECT, OBJECT_AGE};
use crate::cluster::node::Node;
use crate::seed::OffsiteSpec;
use crate::util::error::Error;
use crate::util::fs;
use crate::util::io::Sha256;
use anyhow::{Context as _, Result};
use std::io::{self, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct Fetched {
    /// The plain snapshot, root's alone, in the dir asked for.
    pub path: PathBuf,
    pub sha256: Sha256,
    /// `<store>/<key>` of the object it came from.
    pub from: String,
    pub revision: u64,
}

/// Fetches `only` (a snapshot dir name from `backup --list`) or else the newest verified snapshot
/// that checks, into `dir` (on the host, made root's alone).
pub fn fetch(
    node: &Node,
    spec: &OffsiteSpec,
    identity: Option<&Identity>,
    only: Option<&str>,
    dir: &Path,
) -> Result<Fetched> {
    let store = Store::open(spec, node.root, Instant::now() + spec.timeout)?;
    let cluster = cluster_prefix(node, spec);
    let mut snaps: Vec<_> = snapshots(&store.list(&cluster)?, &cluster)
        .into_iter()
        .filter(|s| s.verified && only.is_none_or(|o| o == s.name))
        .collect();
    // By revision, then time: every member computes the same order from the same listing.
    snaps.sort_by_key(|s| {
        let rev = s.name.rsplit_once("-rev").map(|(_, r)| r.to_string());
        std::cmp::Reverse((rev, s.name.clone()))
    });
    if snaps.is_empty() {
        return Err(Error::other(format!(
            "{}/{cluster}: {}",
            store.name(),
            match only {
                Some(o) => format!("no verified snapshot named {o}"),
                None => "no verified snapshot".to_string(),
            }
        ))
        .into());
    }
    fs::private_dir(node.root, dir, 0o700)?;
    let mut skipped = Vec::new();
    for s in &snaps {
        match one(&store, &format!("{cluster}{}", s.name), identity, dir) {
            Ok(f) => return Ok(f),
            Err(e) => {
                log::warn!("skipped the offsite snapshot {}: {e:#}", s.name);
                skipped.push(format!("{}: {e:#}", s.name));
            }
        }
    }
    Err(Error::other(format!(
        "{}/{cluster}: no snapshot checks out ({})",
        store.name(),
        skipped.join("; ")
    ))
    .into())
}

/// One snapshot dir: its meta, its object downloaded beside the result, opened and checked.
fn one(store: &Store, at: &str, identity: Option<&Identity>, dir: &Path) -> Result<Fetched> {
    let meta: serde_json::Value = serde_json::from_slice(&store.get(&format!("{at}/{META}"))?)
        .context("its meta is not JSON")?;
    let want = meta["sha256"]
        .as_str()
        .and_then(|s| s.parse::<Sha256>().ok())
        .context("its meta has no sha256")?;
    // A store's answer sized the way it likes could fill the disk before the sha256 is known:
    // nothing beyond the size the meta gives is written.
    let size = meta["size"].as_u64().context("its meta has no size")?;
    let object = match meta["object"].as_str() {
        Some(o) if o == OBJECT || o == OBJECT_AGE => o,
        _ => anyhow::bail!("its meta names no object this tool reads"),
    };
    let key = format!("{at}/{object}");
    // The name passed `is_snapshot_dir`: a plain name, its revision 16 hex digits.
    let name = at.rsplit('/').next().unwrap_or(at);
    let revision = name
        .rsplit_once("-rev")
        .and_then(|(_, r)| u64::from_str_radix(r, 16).ok())
        .context("its name holds no revision")?;
    let stored = dir.join(format!(".{name}.{object}"));
    // Not `etcd-snapshot-*`: the local snapshots' retention must not count it as one of them.
    let path = dir.join(format!("offsite-{name}.db"));
    let result = (|| -> Result<Sha256> {
        store.download(&key, &stored)?;
        let file = BufReader::new(
            std::fs::File::open(&stored)
                .with_context(|| format!("opening {}", stored.display()))?,
        );
        let plain: Box<dyn io::Read> = if object == OBJECT_AGE {
            let id = identity.ok_or_else(|| {
                Error::input("it is encrypted (age): give the identity to open it")
            })?;
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(
                Decryptor::new(file, id).context("opening it with the identity")?,
            )))
        } else {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        };
        let mut plain = plain.take(size + 1);
        let (tmp, sum) = fs::write_temp(&path, 0o600, fs::Ids::current(), &mut plain)?;
        let written = std::fs::metadata(&tmp).map(|m| m.len()).unwrap_or(0);
        if sum != want || written != size {
            let _ = std::fs::remove_file(&tmp);
            anyhow::bail!(
                "it opens to {written} bytes of sha256 {sum}, not the {size} bytes of {want} its \
                 meta says"
            );
        }
        fs::commit_temp(&tmp, &path)?;
        Ok(sum)
    })();
    let _ = std::fs::remove_file(&stored);
    Ok(Fetched {
        path,
        sha256: result?,
        from: format!("{}/{key}", store.name()),
        revision,
    })
}
