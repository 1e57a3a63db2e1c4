//! Data dir: etcd ignores initial-cluster once its data dir holds a member.

use super::Report;
use crate::seed::Config;
use crate::state::Stamp;
use crate::util::fs;
use std::path::Path;

pub fn check(r: &mut Report, cfg: &Config, root: &Path, seed_digest: &str) {
    let entries = fs::entries(&fs::under(root, &cfg.data_dir));
    if entries.is_empty() {
        r.ok(
            "datadir",
            format!(
                "{} is empty: etcd will bootstrap from the seed",
                cfg.data_dir.display()
            ),
        );
        return;
    }
    let state = cfg
        .settings
        .get("initial-cluster-state")
        .map(String::as_str)
        .unwrap_or("new");
    if state != "new" {
        r.ok(
            "datadir",
            format!(
                "{} holds data; initial-cluster-state is {state}",
                cfg.data_dir.display()
            ),
        );
        return;
    }
    let made_with = Stamp::load(root).unwrap_or_default().seed_sha256;
    if made_with == seed_digest {
        r.ok(
            "datadir",
            format!(
                "{} holds this member's data, made with this seed",
                cfg.data_dir.display()
            ),
        );
    } else {
        r.warn(
            "datadir",
            format!(
                "{} already holds a member ({}) and the seed differs from the one it was made with: etcd will \
                 ignore the new initial-cluster; change membership with etcdctl member add/remove, or empty \
                 the data dir to bootstrap anew (losing its data)",
                cfg.data_dir.display(),
                entries.join(", ")
            ),
        );
    }
}
