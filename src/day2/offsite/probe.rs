//! `check`'s look at the offsite store, before a backup depends on it: the endpoint answers over
//! TLS from `ca_file`, the credentials are accepted, the bucket exists, and a probe object can be
//! written under this cluster's prefix, read back and deleted (the rights an upload and its
//! retention need). The probe's name can never be taken for a snapshot.

use super::s3::Store;
use super::{cluster_prefix, snapshots};
use crate::cluster::node::Node;
use crate::seed::OffsiteSpec;
use crate::util::error::Error;
use anyhow::{Context as _, Result};
use std::time::{Duration, Instant};

/// A check is short work: a store that has not answered by then is reported as not answering.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the store said, in one line; an error names the step that failed and the store's word.
pub fn probe(node: &Node, spec: &OffsiteSpec, now: i64) -> Result<String> {
    let store = Store::open(
        spec,
        node.root,
        Instant::now() + spec.timeout.min(PROBE_TIMEOUT),
    )?;
    let cluster = cluster_prefix(node, spec);
    let key = format!(
        "{cluster}.etcd-bootstrap-probe-{}-{now}",
        node.cfg.this_member.name
    );
    let body = format!(
        "written by etcd-bootstrap check on {}\n",
        node.cfg.this_member.name
    );
    store
        .put_new(&key, body.clone().into_bytes())
        .context("writing a probe object")?;
    let read = store.head(&key).context("reading the probe object back");
    let deleted = store.delete(&key).context("deleting the probe object");
    match read? {
        Some((size, ..)) if size == body.len() as u64 => {}
        other => {
            return Err(Error::other(format!(
                "{}/{key}: the probe object of {} bytes reads back as {:?} bytes",
                store.name(),
                body.len(),
                other.map(|o| o.0)
            ))
            .into())
        }
    }
    deleted?;
    let listed = store
        .list(&cluster)
        .context("listing the cluster's prefix")?;
    let mut snaps = snapshots(&listed, &cluster);
    snaps.retain(|s| s.verified);
    snaps.sort_by(|a, b| a.name.cmp(&b.name));
    let there = match snaps.last() {
        None => "no snapshot there yet".to_string(),
        Some(s) => format!(
            "{} verified snapshot(s) there, the newest {}",
            snaps.len(),
            s.name
        ),
    };
    Ok(format!(
        "{}/{cluster}: TLS and credentials accepted, bucket there, a probe object written, \
         read back and deleted; {there}",
        store.name()
    ))
}
