//! What this cluster has offsite, for `backup --list`: one listing of its prefix, nothing read
//! beyond it (no object is downloaded to be listed).

use super::s3::Store;
use super::{cluster_prefix, snapshots, OBJECT, OBJECT_AGE};
use crate::cluster::node::Node;
use crate::seed::OffsiteSpec;
use anyhow::Result;
use std::time::{Duration, Instant};

/// One snapshot dir under the cluster's prefix.
pub struct Remote {
    /// `<store>/<key>` of its snapshot object (or of its dir when the object is missing).
    pub url: String,
    /// The object's size as stored; 0 when there is no object.
    pub size: u64,
    pub encrypted: bool,
    /// Its meta was written: the object was checked by HEAD after its upload.
    pub verified: bool,
    pub taken: Option<i64>,
    pub revision: Option<u64>,
}

/// Listing is short work: a store that does not answer in this long is reported, not waited on
/// for the whole upload timeout.
const LIST_TIMEOUT: Duration = Duration::from_secs(60);

/// This cluster's offsite snapshots, oldest first.
pub fn list(node: &Node, spec: &OffsiteSpec) -> Result<Vec<Remote>> {
    let store = Store::open(
        spec,
        node.root,
        Instant::now() + spec.timeout.min(LIST_TIMEOUT),
    )?;
    let cluster = cluster_prefix(node, spec);
    let listed = store.list(&cluster)?;
    let mut out = Vec::new();
    for snap in snapshots(&listed, &cluster) {
        let dir = format!("{cluster}{}/", snap.name);
        let object = listed.iter().find(|o| {
            o.key
                .strip_prefix(&dir)
                .is_some_and(|f| f == OBJECT || f == OBJECT_AGE)
        });
        let (stamp, rev) = snap.name.split_once("-rev").unwrap_or((&snap.name, ""));
        out.push(Remote {
            url: format!(
                "{}/{}",
                store.name(),
                object.map(|o| o.key.as_str()).unwrap_or(&dir)
            ),
            size: object.map(|o| o.size).unwrap_or(0),
            encrypted: object.is_some_and(|o| o.key.ends_with(OBJECT_AGE)),
            // A meta without its object does not make a snapshot.
            verified: snap.verified && object.is_some(),
            taken: crate::util::time::parse_utc_stamp(stamp),
            revision: u64::from_str_radix(rev, 16).ok(),
        });
    }
    Ok(out)
}
