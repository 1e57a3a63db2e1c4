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
/// etcd's answers to `--help` and `--version`, one file per binary digest: a warm run asks a binary
/// it verified nothing it asked before.
pub const ETCD_ANSWERS: &str = "/var/lib/etcd-bootstrap/etcd-answers";
/// Where systemd reads the units this tool writes (etcd's, the scheduled features').
pub const UNIT_DIR: &str = "/etc/systemd/system";
pub const MAINTAIN_LOCK: &str = "/run/etcd-bootstrap-maintain.lock";
/// The seed the last successful apply applied, for the scheduled jobs: they act on what is
/// installed, never on a seed fetched again (a PXE node's URL, a changed file). Root's alone: a
/// seed may hold keys.
pub const APPLIED_SEED: &str = "/var/lib/etcd-bootstrap/applied-seed.yaml";
/// The dir all of the above but the lock live in: root's alone.
pub const DIR: &str = "/var/lib/etcd-bootstrap";
/// What was staged from which verified tarball (`release::unpack`), one record per release.
pub const STAGED: &str = "/var/lib/etcd-bootstrap/staged";
/// A restart of etcd that is wanted (new files installed) but not done yet.
pub const RESTART_PENDING: &str = "/var/lib/etcd-bootstrap/restart-pending";
/// The last `maintain` run: when, and what it did.
pub const MAINTENANCE: &str = "/var/lib/etcd-bootstrap/maintenance";
/// This member's last offsite run: when, and what it did (uploaded, left it to another, failed).
pub const OFFSITE: &str = "/var/lib/etcd-bootstrap/offsite";
/// What the backup runs' metrics keep between runs (`day2::textfile`): the last success of each
/// target, so a failed run does not erase it.
pub const BACKUP_METRICS: &str = "/var/lib/etcd-bootstrap/metrics-backup";
/// The same for the maintenance runs.
pub const MAINTENANCE_METRICS: &str = "/var/lib/etcd-bootstrap/metrics-maintenance";
/// Release digests read from a SHA256SUMS file, so an image pre-staged with `fetch` boots offline.
pub const RELEASE_DIGESTS: &str = "/var/lib/etcd-bootstrap/release-digests";

/// A state path under the root: its dirs resolved inside the root, the file itself never followed.
pub fn path(root: &Path, which: &str) -> PathBuf {
    fs::under_for_write(root, Path::new(which))
}

/// A state file's text, read without following a link (a planted link reads as nothing).
pub fn read(root: &Path, which: &str) -> Option<String> {
    fs::read_nofollow(&path(root, which))
}

/// Writes a state file, making the state dir root's alone if it is new (and refusing one that
/// others can write).
pub fn write(root: &Path, which: &str, text: &str) -> Result<()> {
    let p = path(root, which);
    if let Some(dir) = p.parent() {
        fs::private_dir(root, dir, 0o755)?;
    }
    fs::write_state(&p, text)
}

/// Writes state only root may read (mode 0600).
pub fn write_private(root: &Path, which: &str, text: &str) -> Result<()> {
    let p = path(root, which);
    if let Some(dir) = p.parent() {
        fs::private_dir(root, dir, 0o755)?;
    }
    fs::write_private_state(&p, text)
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
    /// The inputs etcd reads only when it makes its data dir: (name, value), in a fixed order.
    pub membership: Vec<(String, String)>,
}

/// The settings etcd reads only to make a new data dir: what a later seed may not change in
/// vain.
pub const MEMBERSHIP: &[&str] = &[
    "initial-cluster",
    "initial-cluster-token",
    "initial-cluster-state",
    "discovery-srv",
];

impl Stamp {
    pub fn load(root: &Path) -> Option<Stamp> {
        crate::util::seam::count(crate::util::seam::STAMP_READ);
        let text = read(root, STAMP)?;
        let membership = MEMBERSHIP
            .iter()
            .filter_map(|k| Some((k.to_string(), field(&text, k)?)))
            .collect();
        Some(Stamp {
            seed_sha256: field(&text, "seed_sha256").unwrap_or_default(),
            etcd_version: field(&text, "etcd_version").unwrap_or_default(),
            member: field(&text, "member").unwrap_or_default(),
            membership,
        })
    }

    pub fn save(&self, root: &Path) -> Result<()> {
        let mut text = format!(
            "seed_sha256={}\netcd_version={}\nmember={}\n",
            self.seed_sha256, self.etcd_version, self.member
        );
        for (k, v) in &self.membership {
            text.push_str(&format!("{k}={v}\n"));
        }
        write(root, STAMP, &text)
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
        let text = read(root, MEMBER)?;
        Some(MemberRecord {
            id: u64::from_str_radix(&field(&text, "id")?, 16).ok()?,
            learner: field(&text, "learner")? == "true",
            initial_cluster: field(&text, "initial_cluster")?,
        })
    }

    pub fn save(&self, root: &Path) -> Result<()> {
        write(
            root,
            MEMBER,
            &format!(
                "id={:x}\nlearner={}\ninitial_cluster={}\n",
                self.id, self.learner, self.initial_cluster
            ),
        )
    }
}

/// The record of the last run of a scheduled job (`maintain` at `MAINTENANCE`, the offsite
/// upload at `OFFSITE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// Unix seconds.
    pub at: i64,
    pub ok: bool,
    /// What it did, in one line.
    pub result: String,
}

impl RunRecord {
    pub fn load(root: &Path, which: &str) -> Option<RunRecord> {
        let text = read(root, which)?;
        Some(RunRecord {
            at: field(&text, "at")?.parse().ok()?,
            ok: field(&text, "ok")? == "true",
            result: field(&text, "result").unwrap_or_default(),
        })
    }

    pub fn save(&self, root: &Path, which: &str) -> Result<()> {
        let one_line = self.result.replace(['\n', '\r'], " ");
        write(
            root,
            which,
            &format!("at={}\nok={}\nresult={one_line}\n", self.at, self.ok),
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
            membership: vec![("initial-cluster-token".into(), "t".into())],
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
