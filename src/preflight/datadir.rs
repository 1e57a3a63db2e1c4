//! Data dir: etcd reads `initial-cluster` and its kin only when it makes its data dir. A seed that
//! changes them over a data dir that holds a member changes nothing in the cluster: said here.
//! A seed that changes anything else (the version, a certificate) is not a membership change.

use super::Report;
use crate::seed::Config;
use crate::state::{Stamp, MEMBERSHIP};
use crate::util::fs;
use std::path::Path;

/// What an etcd data dir holds: its member dir, and on a file system of its own, `lost+found`.
fn etcds_own(entry: &str) -> bool {
    matches!(entry, "member" | "lost+found")
}

pub fn check(r: &mut Report, cfg: &Config, root: &Path, seed_digest: &str, last: Option<&Stamp>) {
    let entries = fs::entries(&fs::under(root, &cfg.data_dir));
    let dir = cfg.data_dir.display();
    let foreign: Vec<&String> = entries.iter().filter(|e| !etcds_own(e)).collect();
    if !foreign.is_empty() {
        // Not etcd's: etcd-bootstrap would make every file in it etcd's (0700, etcd:etcd).
        r.input_error(
            "datadir",
            format!(
                "etcd_data_dir {dir} holds files that are not etcd's ({}): refusing to make it \
                 etcd's; name an empty dir, or one that holds only etcd's member/",
                crate::util::text::printable(
                    &foreign
                        .iter()
                        .take(5)
                        .map(|e| e.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            ),
        );
        return;
    }
    if entries.is_empty() {
        r.ok(
            "datadir",
            format!("{dir} is empty: etcd will bootstrap from the seed"),
        );
        return;
    }
    let state = cfg.cluster_state();
    if state != "new" {
        r.ok(
            "datadir",
            format!("{dir} holds data; initial-cluster-state is {state}"),
        );
        return;
    }
    let stamp = last.cloned().unwrap_or_default();
    let changed: Vec<&str> = if stamp.membership.is_empty() {
        // Recorded before the membership inputs were: only the whole seed can be compared.
        if stamp.seed_sha256 == seed_digest {
            vec![]
        } else {
            vec!["the seed"]
        }
    } else {
        MEMBERSHIP
            .iter()
            .filter(|k| {
                let was = stamp
                    .membership
                    .iter()
                    .find(|(n, _)| n == *k)
                    .map(|(_, v)| v.as_str());
                was.unwrap_or("") != cfg.setting(k).unwrap_or("")
            })
            .copied()
            .collect()
    };
    if changed.is_empty() {
        r.ok(
            "datadir",
            format!("{dir} holds this member's data, made with the same membership"),
        );
    } else {
        r.warn(
            "datadir",
            format!(
                "{dir} already holds a member ({}) and {} differs from when it was made: etcd will \
                 ignore the new initial-cluster; change membership with etcdctl member add/remove, or empty \
                 the data dir to bootstrap anew (losing its data)",
                entries.join(", "),
                changed.join(", ")
            ),
        );
    }
}
