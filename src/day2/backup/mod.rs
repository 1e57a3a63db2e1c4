//! Backups, one room: `etcd-bootstrap backup` takes one snapshot (`etcdctl snapshot save`,
//! verified, renamed into place, old ones pruned); `units` renders the service and timer that run
//! it; `step` is the `etcd_backup` day-2 step (`day2::timer`) that installs them and enables the
//! timer.

mod units;
pub use units::backup_units;

use crate::cluster::node::Node;
use crate::etcd::tools::{SnapshotStatus, Tools};
use crate::seed::Config;
use crate::util::fs;
use crate::util::io::Sha256;
use crate::util::time::{unix_now, utc_stamp};
use anyhow::{Context as _, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The `etcd_backup` step: its units, installed with the rest, and its timer enabled.
pub fn step(cfg: &Config, spec: &crate::seed::BackupSpec) -> super::timer::TimerStep {
    let does = format!(
        "a snapshot every {}",
        crate::util::time::format_duration(spec.interval)
    );
    // The dir is made at install: the service, read-only but for it, cannot make it itself.
    let dir = crate::install::desired::Item::Dir {
        path: spec.dir.clone(),
        meta: crate::install::desired::Meta::root(0o700),
        enforce: true,
    };
    let mut items = vec![dir];
    items.extend(super::textfile::dir_item(cfg));
    super::timer::TimerStep::new(cfg.backup_unit_names(), backup_units(cfg, spec), does).with(items)
}

const PREFIX: &str = "etcd-snapshot-";
/// The temp name a snapshot is saved under before its revision (and so its name) is known.
const SAVING: &str = "etcd-snapshot.db";

/// What `backup` needs: all from the applied config (`of`), the dir and count flags over it.
pub struct BackupOptions {
    pub root: PathBuf,
    pub dir: PathBuf,
    pub keep: u32,
    pub bin_dir: PathBuf,
    /// This member's client URL: a snapshot is taken from one member, this one.
    pub endpoint: String,
    /// The CA, client certificate and key etcdctl uses (paths on the node, under `root`).
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl BackupOptions {
    /// The applied config's: this member's URL (as `etcdctl.env` names it), the certificates
    /// installed, the bin dir, and `etcd_backup`'s dir and count unless `dir` or `keep` say
    /// otherwise (without `etcd_backup`: /var/backups/etcd, every snapshot kept).
    pub fn of(node: &Node, dir: Option<PathBuf>, keep: Option<u32>) -> BackupOptions {
        let (cfg, root) = (node.cfg, node.root);
        let (cert, key) = cfg.client_cert_and_key();
        let endpoint = member_endpoint(cfg);
        BackupOptions {
            root: root.to_path_buf(),
            dir: dir
                .or_else(|| cfg.backup.as_ref().map(|b| b.dir.clone()))
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR)),
            keep: keep.or(cfg.backup.as_ref().map(|b| b.keep)).unwrap_or(0),
            bin_dir: cfg.bin_dir.clone(),
            endpoint,
            ca: cfg.trusted_ca(),
            cert,
            key,
        }
    }

    /// etcdctl's environment: this member, the files under the root.
    fn etcdctl_env(&self) -> Vec<(String, String)> {
        let under = |p: &Path| fs::under(&self.root, p).display().to_string();
        vec![
            ("ETCDCTL_API".into(), "3".into()),
            ("ETCDCTL_ENDPOINTS".into(), self.endpoint.clone()),
            ("ETCDCTL_CACERT".into(), under(&self.ca)),
            ("ETCDCTL_CERT".into(), under(&self.cert)),
            ("ETCDCTL_KEY".into(), under(&self.key)),
        ]
    }
}

/// This member's client URL (the first it advertises): a snapshot is taken from this member.
pub fn member_endpoint(cfg: &Config) -> String {
    cfg.setting("advertise-client-urls")
        .and_then(|u| u.split(',').next())
        .map(|u| u.trim().to_string())
        .unwrap_or_else(|| cfg.this_member.url(cfg.client_port))
}

/// Where snapshots go when neither the seed nor `--dir` says.
pub const DEFAULT_DIR: &str = "/var/backups/etcd";

pub struct Taken {
    pub path: PathBuf,
    /// Bytes, as saved.
    pub size: u64,
    pub sha256: Sha256,
    pub status: SnapshotStatus,
    pub pruned: Vec<PathBuf>,
}

/// Takes one snapshot: saved under a temp name, verified, made 0600 (it holds every key, secrets
/// included), renamed to `etcd-snapshot-<UTC time>-rev<revision>.db` with its `.sha256` beside it;
/// then only the newest `keep` are kept.
pub fn take(o: &BackupOptions) -> Result<Taken> {
    let tools = Tools::verified(&o.root, &o.bin_dir)?;
    let env = o.etcdctl_env();
    let dir = fs::under(&o.root, &o.dir);
    // Snapshots hold every key: the dir must be root's alone (a dir another user owns would let
    // them read the snapshot through a file they made there), then private.
    fs::private_dir(&o.root, &dir, 0o700)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting the mode of {}", dir.display()))?;
    fs::sweep_temps(&dir, Some(SAVING));
    let tmp = fs::temp_path(&dir.join(SAVING));
    let result = save_verify_rename(&tools, &env, &dir, &tmp, o.keep);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn save_verify_rename(
    tools: &Tools,
    env: &[(String, String)],
    dir: &Path,
    tmp: &Path,
    keep: u32,
) -> Result<Taken> {
    let run = |c, what: &str| crate::util::cmd::run(c, what, None);
    let endpoint = &env
        .iter()
        .find(|(k, _)| k == "ETCDCTL_ENDPOINTS")
        .context("no ETCDCTL_ENDPOINTS")?
        .1;
    // A member that does not answer would hold `snapshot save` for its whole timeout, which must
    // be long for a big database: ask briefly first.
    run(
        tools.etcdctl(env, &["--command-timeout=15s", "endpoint", "status"]),
        &format!("etcdctl endpoint status on {endpoint} (before the snapshot)"),
    )?;
    let mut save = tools.etcdctl(env, &["--command-timeout=30m", "snapshot", "save"]);
    save.arg(tmp);
    run(save, &format!("etcdctl snapshot save from {endpoint}"))?;
    let status = tools.snapshot_status(tmp)?;
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o600))?;
    let (sha256, size) = crate::util::io::sha256_file(tmp)?.context("the snapshot vanished")?;
    std::fs::File::open(tmp)?.sync_all()?;
    let name = format!(
        "{PREFIX}{}-rev{}.db",
        utc_stamp(unix_now()),
        status.revision
    );
    let path = dir.join(&name);
    fs::write_atomic(
        &dir.join(format!("{name}.sha256")),
        0o600,
        fs::Ids::ROOT,
        &mut format!("{sha256}  {name}\n").as_bytes(),
    )?;
    std::fs::rename(tmp, &path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    fs::fsync_dir(dir)?;
    let pruned = prune(dir, keep)?;
    Ok(Taken {
        path,
        size,
        sha256,
        status,
        pruned,
    })
}

/// The snapshots in `dir`, oldest first (names sort by time).
fn snapshots(dir: &Path) -> Vec<PathBuf> {
    let mut snaps: Vec<PathBuf> = fs::entries(dir)
        .into_iter()
        .filter(|n| n.starts_with(PREFIX) && n.ends_with(".db"))
        .map(|n| dir.join(n))
        .collect();
    snaps.sort();
    snaps
}

/// A snapshot this tool saved in the backup dir, for `backup --list`.
pub struct Saved {
    pub path: PathBuf,
    pub size: u64,
    /// From its name (`etcd-snapshot-<UTC time>-rev<revision>.db`).
    pub taken: Option<i64>,
    pub revision: Option<u64>,
    /// Its `.sha256` is beside it: written only once `snapshot status` had read the file whole.
    pub verified: bool,
}

/// The snapshots in `dir`, oldest first.
pub fn saved(dir: &Path) -> Vec<Saved> {
    snapshots(dir)
        .into_iter()
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().to_string());
            let inner = name
                .as_deref()
                .and_then(|n| n.strip_prefix(PREFIX)?.strip_suffix(".db"))
                .unwrap_or("");
            let (stamp, rev) = inner.split_once("-rev").unwrap_or((inner, ""));
            Saved {
                size: std::fs::symlink_metadata(&p).map(|m| m.len()).unwrap_or(0),
                taken: crate::util::time::parse_utc_stamp(stamp),
                revision: rev.parse().ok(),
                verified: std::fs::symlink_metadata(format!("{}.sha256", p.display()))
                    .is_ok_and(|m| m.is_file()),
                path: p,
            }
        })
        .collect()
}

/// The newest snapshot in `dir`, and when it was written.
pub fn newest(dir: &Path) -> Option<(PathBuf, std::time::SystemTime)> {
    let p = snapshots(dir).pop()?;
    let t = std::fs::metadata(&p).and_then(|m| m.modified()).ok()?;
    Some((p, t))
}

/// Removes all but the newest `keep` snapshots (names sort by time); 0 keeps all.
fn prune(dir: &Path, keep: u32) -> Result<Vec<PathBuf>> {
    if keep == 0 {
        return Ok(vec![]);
    }
    let snaps = snapshots(dir);
    let excess = snaps.len().saturating_sub(keep as usize);
    let old: Vec<PathBuf> = snaps.into_iter().take(excess).collect();
    for p in &old {
        std::fs::remove_file(p).with_context(|| format!("removing {}", p.display()))?;
        let _ = std::fs::remove_file(format!("{}.sha256", p.display()));
    }
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prunes_the_oldest_and_their_sums() {
        let d = tempfile::tempdir().unwrap();
        for t in ["20260101T000000Z", "20260102T000000Z", "20260103T000000Z"] {
            let n = format!("{PREFIX}{t}-rev9.db");
            std::fs::write(d.path().join(&n), "x").unwrap();
            std::fs::write(d.path().join(format!("{n}.sha256")), "x").unwrap();
        }
        std::fs::write(d.path().join("unrelated.db"), "x").unwrap();
        let gone = prune(d.path(), 2).unwrap();
        assert_eq!(gone.len(), 1);
        assert!(gone[0].ends_with(format!("{PREFIX}20260101T000000Z-rev9.db")));
        let left = fs::entries(d.path());
        assert_eq!(left.len(), 5, "{left:?}");
        assert!(prune(d.path(), 0).unwrap().is_empty());
    }
}
