//! Every path the tool keeps state in on the target system, and the small records it writes there.
//! Nothing else names these paths.

pub mod digests;

use crate::util::fs;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Success: the seed digest and etcd version applied; the first-boot unit's run-once condition.
pub const STAMP: &str = "/var/lib/etcd-bootstrap/applied";
/// What a join produced: this member's ID, the `initial-cluster` it starts with, learner or not.
pub const MEMBER: &str = "/var/lib/etcd-bootstrap/member";
/// Remembered digests of large files (see `digests`).
pub const DIGESTS: &str = "/var/lib/etcd-bootstrap/digests";
/// One run at a time per root.
pub const LOCK: &str = "/run/etcd-bootstrap.lock";

pub fn path(root: &Path, which: &str) -> PathBuf {
    fs::under(root, Path::new(which))
}

/// Whether etcd's data dir under the root holds a member: etcd has run from it, or a restore made it.
pub fn data_dir_has_member(root: &Path, data_dir: &Path) -> bool {
    fs::under(root, data_dir).join("member").is_dir()
}

fn field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_string)
}

/// The record of the last successful apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamp {
    pub seed_sha256: String,
    pub etcd_version: String,
    pub member: String,
}

impl Stamp {
    pub fn load(root: &Path) -> Option<Stamp> {
        let text = std::fs::read_to_string(path(root, STAMP)).ok()?;
        Some(Stamp {
            seed_sha256: field(&text, "seed_sha256").unwrap_or_default(),
            etcd_version: field(&text, "etcd_version").unwrap_or_default(),
            member: field(&text, "member").unwrap_or_default(),
        })
    }

    pub fn save(&self, root: &Path) -> Result<()> {
        fs::write_state(
            &path(root, STAMP),
            &format!(
                "seed_sha256={}\netcd_version={}\nmember={}\n",
                self.seed_sha256, self.etcd_version, self.member
            ),
        )
    }
}

/// What this node's join produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub id: u64,
    pub learner: bool,
    pub initial_cluster: String,
}

impl MemberRecord {
    pub fn load(root: &Path) -> Option<MemberRecord> {
        let text = std::fs::read_to_string(path(root, MEMBER)).ok()?;
        Some(MemberRecord {
            id: u64::from_str_radix(&field(&text, "id")?, 16).ok()?,
            learner: field(&text, "learner")? == "true",
            initial_cluster: field(&text, "initial_cluster")?,
        })
    }

    pub fn save(&self, root: &Path) -> Result<()> {
        fs::write_state(
            &path(root, MEMBER),
            &format!(
                "id={:x}\nlearner={}\ninitial_cluster={}\n",
                self.id, self.learner, self.initial_cluster
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_roundtrip() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(Stamp::load(root.path()), None);
        let s = Stamp {
            seed_sha256: "ab".into(),
            etcd_version: "3.5.1".into(),
            member: "n1".into(),
        };
        s.save(root.path()).unwrap();
        assert_eq!(Stamp::load(root.path()), Some(s));
        let m = MemberRecord {
            id: 0xabc,
            learner: true,
            initial_cluster: "a=https://x:2380".into(),
        };
        m.save(root.path()).unwrap();
        assert_eq!(MemberRecord::load(root.path()), Some(m));
    }
}
