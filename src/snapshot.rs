//! Snapshots: `backup` takes one (`etcdctl snapshot save`, verified, renamed into place, old ones
//! pruned); `etcd_restore` makes this member's data dir from one before etcd first starts.

use crate::fsutil;
use crate::release::checksum::Sha256;
use crate::seed::{BackupSpec, Config, RestoreSpec};
use anyhow::{anyhow, bail, Context, Result};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the backup timer finds this tool: where the .deb and the images put it.
pub const SELF_PATH: &str = "/usr/local/bin/etcd-bootstrap";
const PREFIX: &str = "etcd-snapshot-";

/// The etcd tools of the installed release: `etcdutl` reads snapshot files on 3.5+, `etcdctl` on 3.4.
pub struct Tools {
    pub etcdctl: PathBuf,
    pub etcdutl: Option<PathBuf>,
}

impl Tools {
    pub fn in_bin_dir(root: &Path, bin_dir: &Path) -> Result<Tools> {
        let dir = fsutil::under(root, bin_dir);
        let etcdctl = dir.join("etcdctl");
        if !etcdctl.is_file() {
            bail!(
                "{} does not exist: is etcd installed (apply) and is etcd_bin_dir right?",
                etcdctl.display()
            );
        }
        let etcdutl = Some(dir.join("etcdutl")).filter(|p| p.is_file());
        Ok(Tools { etcdctl, etcdutl })
    }

    /// The tool for offline snapshot work (`snapshot status` / `snapshot restore`).
    fn offline(&self) -> Command {
        match &self.etcdutl {
            Some(u) => Command::new(u),
            None => {
                let mut c = Command::new(&self.etcdctl);
                c.env("ETCDCTL_API", "3");
                c
            }
        }
    }
}

fn run(cmd: Command, what: &str) -> Result<String> {
    crate::cmd::run(cmd, what, None)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub revision: u64,
    pub total_keys: u64,
}

/// `snapshot status -w json`: proves the file is a whole etcd snapshot (it checks the hash that
/// `snapshot save` appends) and tells its revision.
pub fn status(tools: &Tools, file: &Path) -> Result<Status> {
    let mut c = tools.offline();
    c.args(["snapshot", "status", "-w", "json"]).arg(file);
    let text = run(c, &format!("verifying the snapshot {}", file.display()))?;
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .with_context(|| format!("reading snapshot status of {}: {text}", file.display()))?;
    Ok(Status {
        revision: v.get("revision").and_then(|r| r.as_u64()).unwrap_or(0),
        total_keys: v.get("totalKey").and_then(|r| r.as_u64()).unwrap_or(0),
    })
}

/// `YYYYmmddTHHMMSSZ` for a time in seconds since the epoch: sorts as time does.
pub fn utc_stamp(secs: u64) -> String {
    let (y, m, d, hh, mm, ss) = crate::duration::civil_utc(secs as i64);
    format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}Z")
}

/// What `backup` needs, from flags (the timer's unit) or defaults matching a default install.
pub struct BackupOptions {
    pub root: PathBuf,
    pub dir: PathBuf,
    pub keep: u32,
    pub conf_dir: PathBuf,
    pub bin_dir: PathBuf,
}

/// Endpoint and TLS files from `etcdctl.env`, paths taken under `root`.
fn etcdctl_env(root: &Path, conf_dir: &Path) -> Result<Vec<(String, String)>> {
    let path = fsutil::under(root, conf_dir).join("etcdctl.env");
    let text = fs::read_to_string(&path)
        .with_context(|| format!("reading {} (has apply run?)", path.display()))?;
    let mut env = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = match k {
            // A snapshot is taken from one member: this one.
            "ETCDCTL_ENDPOINTS" => v.split(',').next().unwrap_or("").to_string(),
            "ETCDCTL_CACERT" | "ETCDCTL_CERT" | "ETCDCTL_KEY" => {
                fsutil::under(root, Path::new(v)).display().to_string()
            }
            _ => v.to_string(),
        };
        env.push((k.to_string(), v));
    }
    if !env.iter().any(|(k, _)| k == "ETCDCTL_ENDPOINTS") {
        bail!("{} names no ETCDCTL_ENDPOINTS", path.display());
    }
    Ok(env)
}

pub struct Taken {
    pub path: PathBuf,
    pub sha256: Sha256,
    pub status: Status,
    pub pruned: Vec<PathBuf>,
}

/// Takes one snapshot: saved under a temp name, verified, made 0600 (it holds every key, secrets
/// included), renamed to `etcd-snapshot-<UTC time>-rev<revision>.db` with its `.sha256` beside it;
/// then only the newest `keep` are kept.
pub fn backup(o: &BackupOptions) -> Result<Taken> {
    let tools = Tools::in_bin_dir(&o.root, &o.bin_dir)?;
    let env = etcdctl_env(&o.root, &o.conf_dir)?;
    let dir = fsutil::under(&o.root, &o.dir);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting the mode of {}", dir.display()))?;
    sweep_partials(&dir);
    let tmp = dir.join(format!(".{PREFIX}{}.part", std::process::id()));
    let result = (|| -> Result<Taken> {
        let etcdctl = |args: &[&str]| {
            let mut c = Command::new(&tools.etcdctl);
            c.env("ETCDCTL_API", "3")
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .args(args);
            c
        };
        let endpoint = &env
            .iter()
            .find(|(k, _)| k == "ETCDCTL_ENDPOINTS")
            .unwrap()
            .1;
        // A member that does not answer would hold `snapshot save` for its whole timeout, which must
        // be long for a big database: ask briefly first.
        run(
            etcdctl(&["--command-timeout=15s", "endpoint", "status"]),
            &format!("etcdctl endpoint status on {endpoint} (before the snapshot)"),
        )?;
        let mut save = etcdctl(&["--command-timeout=30m", "snapshot", "save"]);
        save.arg(&tmp);
        run(save, &format!("etcdctl snapshot save from {endpoint}"))?;
        let status = status(&tools, &tmp)?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
        let (sha256, _) = fsutil::sha256_file(&tmp)?.context("the snapshot vanished")?;
        fs::File::open(&tmp)?.sync_all()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let name = format!("{PREFIX}{}-rev{}.db", utc_stamp(now), status.revision);
        let path = dir.join(&name);
        let sums = dir.join(format!("{name}.sha256"));
        fsutil::write_atomic(
            &sums,
            0o600,
            fsutil::Ids { uid: 0, gid: 0 },
            &mut format!("{sha256}  {name}\n").as_bytes(),
        )?;
        fs::rename(&tmp, &path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        fsutil::fsync_dir(&dir)?;
        let pruned = prune(&dir, o.keep)?;
        Ok(Taken {
            path,
            sha256,
            status,
            pruned,
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn sweep_partials(dir: &Path) {
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        if n.starts_with(&format!(".{PREFIX}")) && n.ends_with(".part") {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Removes all but the newest `keep` snapshots (names sort by time); 0 keeps all.
fn prune(dir: &Path, keep: u32) -> Result<Vec<PathBuf>> {
    if keep == 0 {
        return Ok(vec![]);
    }
    let mut snaps: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(".db"))
        })
        .collect();
    snaps.sort();
    let excess = snaps.len().saturating_sub(keep as usize);
    let old: Vec<PathBuf> = snaps.into_iter().take(excess).collect();
    for p in &old {
        fs::remove_file(p).with_context(|| format!("removing {}", p.display()))?;
        let _ = fs::remove_file(format!("{}.sha256", p.display()));
    }
    Ok(old)
}

/// The backup service and timer the seed's `etcd_backup` asks for.
pub fn units(cfg: &Config, b: &BackupSpec) -> (String, String) {
    let service = format!(
        "# Written by etcd-bootstrap from its seed; edit the seed, not this file.\n\
         [Unit]\n\
         Description=etcd snapshot into {dir}\n\
         After={svc}.service\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={exe} backup --dir={dir} --keep={keep} --conf-dir={conf} --bin-dir={bin}\n",
        svc = cfg.service_name,
        dir = b.dir.display(),
        keep = b.keep,
        conf = cfg.conf_dir.display(),
        bin = cfg.bin_dir.display(),
        exe = SELF_PATH,
    );
    let iv = crate::duration::format(b.interval);
    // Members of one cluster were often installed together: spread their snapshots a little.
    let spread = crate::duration::format(std::time::Duration::from_secs(
        (b.interval.as_secs() / 10).clamp(1, 300),
    ));
    let timer = format!(
        "# Written by etcd-bootstrap from its seed; edit the seed, not this file.\n\
         [Unit]\n\
         Description=etcd snapshot every {iv}\n\
         \n\
         [Timer]\n\
         OnBootSec={iv}\n\
         OnUnitActiveSec={iv}\n\
         RandomizedDelaySec={spread}\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n"
    );
    (service, timer)
}

pub fn unit_names(cfg: &Config) -> (String, String) {
    (
        format!("{}-backup.service", cfg.service_name),
        format!("{}-backup.timer", cfg.service_name),
    )
}

/// Where the snapshot to restore is: a path on the target system, or downloaded into the download dir.
fn snapshot_file(
    cfg: &Config,
    root: &Path,
    r: &RestoreSpec,
    fetcher: &crate::release::download::Fetcher,
) -> Result<PathBuf> {
    if r.snapshot.starts_with('/') {
        return Ok(fsutil::under(root, Path::new(&r.snapshot)));
    }
    if let Some(p) = r.snapshot.strip_prefix("file://") {
        return Ok(PathBuf::from(p));
    }
    let dir = fsutil::under(root, &cfg.release.download_dir);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dest = dir.join(format!("snapshot-{}.db", r.sha256));
    if fsutil::sha256_file(&dest)?.is_some_and(|(d, _)| d.to_string() == r.sha256) {
        return Ok(dest);
    }
    let part = dir.join(format!(".snapshot-{}.part", r.sha256));
    let (digest, _) = fetcher.download(&r.snapshot, &part, &mut |_| {})?;
    if digest.to_string() != r.sha256 {
        let _ = fs::remove_file(&part);
        bail!(
            "etcd_restore: {} has sha256 {digest}, but etcd_restore.sha256 is {}; not restoring",
            r.snapshot,
            r.sha256
        );
    }
    fs::set_permissions(&part, fs::Permissions::from_mode(0o600))?;
    fs::rename(&part, &dest)?;
    Ok(dest)
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .with_context(|| format!("setting the owner of {}", path.display()))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for e in fs::read_dir(path)? {
            chown_tree(&e?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// For `check`: whether the snapshot is there and is the one the seed pins (a local file is hashed;
/// a URL is only fetched by apply). Err(message) when apply would refuse it.
pub fn restore_preview(cfg: &Config, root: &Path, r: &RestoreSpec) -> Result<String, String> {
    if crate::join::data_dir_has_member(cfg, root) {
        return Ok(format!(
            "{} already holds a member: apply will not restore over it",
            cfg.data_dir.display()
        ));
    }
    let file = if r.snapshot.starts_with('/') {
        fsutil::under(root, Path::new(&r.snapshot))
    } else if let Some(p) = r.snapshot.strip_prefix("file://") {
        PathBuf::from(p)
    } else {
        return Ok(format!(
            "apply will download {} and restore it if its sha256 is {}",
            r.snapshot, r.sha256
        ));
    };
    match fsutil::sha256_file(&file) {
        Ok(Some((d, size))) if d.to_string() == r.sha256 => Ok(format!(
            "{} ({size} bytes) has the pinned sha256: apply will restore it into {}",
            file.display(),
            cfg.data_dir.display()
        )),
        Ok(Some((d, _))) => Err(format!(
            "{} has sha256 {d}, but etcd_restore.sha256 is {}",
            file.display(),
            r.sha256
        )),
        Ok(None) => Err(format!("the snapshot {} does not exist", file.display())),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// Whether apply would restore: the seed asks for it and the data dir holds no member yet.
pub fn restore_pending(cfg: &Config, root: &Path) -> bool {
    cfg.restore.is_some() && !crate::join::data_dir_has_member(cfg, root)
}

/// A snapshot whose sha256 matched the seed's, ready to restore.
pub struct Verified {
    pub file: PathBuf,
    pub size: u64,
}

/// Phase one of a restore, before anything is installed: the data dir is empty (else `None`: never
/// restore over a member), the snapshot is here (downloaded if it is a URL) and has the pinned
/// sha256. A wrong snapshot therefore changes nothing on the node.
pub fn verify_restore(
    cfg: &Config,
    root: &Path,
    r: &RestoreSpec,
    fetcher: &crate::release::download::Fetcher,
) -> Result<Option<Verified>> {
    let data = fsutil::under(root, &cfg.data_dir);
    if crate::join::data_dir_has_member(cfg, root) {
        log::info!(
            "etcd_restore: {} already holds a member; not restoring over it",
            cfg.data_dir.display()
        );
        return Ok(None);
    }
    let leftovers: Vec<String> = fs::read_dir(&data)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    if !leftovers.is_empty() {
        bail!(
            "etcd_restore: {} is not empty ({}) but holds no member; move those away first",
            cfg.data_dir.display(),
            leftovers.join(", ")
        );
    }
    if cfg.settings.get("wal-dir").is_some_and(|w| !w.is_empty()) {
        bail!("etcd_restore with a separate wal-dir is not supported; restore without wal-dir, then move it");
    }
    let file = snapshot_file(cfg, root, r, fetcher)?;
    let (digest, size) = fsutil::sha256_file(&file)?.ok_or_else(|| {
        anyhow!(
            "etcd_restore: the snapshot {} does not exist",
            file.display()
        )
    })?;
    if digest.to_string() != r.sha256 {
        bail!(
            "etcd_restore: {} has sha256 {digest}, but etcd_restore.sha256 is {}; nothing was changed",
            file.display(),
            r.sha256
        );
    }
    Ok(Some(Verified { file, size }))
}

/// Phase two, after the binaries are installed and before etcd first starts: restores the verified
/// snapshot into this member's data dir, as etcd's disaster-recovery procedure says (every member
/// restores the same snapshot with its own name and peer URLs).
pub fn restore(cfg: &Config, root: &Path, v: &Verified) -> Result<()> {
    let data = fsutil::under(root, &cfg.data_dir);
    let (file, size) = (&v.file, v.size);
    let tools = Tools::in_bin_dir(root, &cfg.bin_dir)?;
    let st = status(&tools, file)?;
    let parent = data
        .parent()
        .context("the data dir has no parent")?
        .to_path_buf();
    let base = data
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    // An interrupted restore leaves its temp dir; it holds nothing another run can use.
    for e in fs::read_dir(&parent).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        if n.starts_with(&format!(".{base}.restore-")) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    let tmp = parent.join(format!(".{base}.restore-{}", std::process::id()));
    let get = |k: &str| cfg.settings.get(k).cloned().unwrap_or_default();
    let mut c = tools.offline();
    c.args(["snapshot", "restore"])
        .arg(file)
        .arg(format!("--name={}", get("name")))
        .arg(format!("--initial-cluster={}", get("initial-cluster")))
        .arg(format!(
            "--initial-cluster-token={}",
            get("initial-cluster-token")
        ))
        .arg(format!(
            "--initial-advertise-peer-urls={}",
            get("initial-advertise-peer-urls")
        ))
        .arg(format!("--data-dir={}", tmp.display()));
    let result = (|| -> Result<()> {
        run(c, &format!("restoring {}", file.display()))?;
        let ids = crate::users::ids(root, &cfg.user, &cfg.group)?
            .unwrap_or(fsutil::Ids { uid: 0, gid: 0 });
        chown_tree(&tmp, ids.uid, ids.gid)?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o700))?;
        crate::failpoint!("restore-before-rename");
        // rename(2) replaces the empty data dir in one step: etcd sees no data or all of it.
        fs::rename(&tmp, &data)
            .with_context(|| format!("renaming {} to {}", tmp.display(), data.display()))?;
        fsutil::fsync_dir(&parent)
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result?;
    log::info!(
        "restored {} ({size} bytes, sha256 verified, revision {}, {} keys) into {} as member {}",
        file.display(),
        st.revision,
        st.total_keys,
        cfg.data_dir.display(),
        get("name")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_sort_as_time_does() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
        assert_eq!(utc_stamp(1_795_657_445), "20261126T014405Z");
        assert!(utc_stamp(1_795_657_445) < utc_stamp(1_795_657_446));
    }

    #[test]
    fn prunes_the_oldest_and_their_sums() {
        let d = tempfile::tempdir().unwrap();
        for t in ["20260101T000000Z", "20260102T000000Z", "20260103T000000Z"] {
            let n = format!("{PREFIX}{t}-rev9.db");
            fs::write(d.path().join(&n), "x").unwrap();
            fs::write(d.path().join(format!("{n}.sha256")), "x").unwrap();
        }
        fs::write(d.path().join("unrelated.db"), "x").unwrap();
        let gone = prune(d.path(), 2).unwrap();
        assert_eq!(gone.len(), 1);
        assert!(gone[0].ends_with(format!("{PREFIX}20260101T000000Z-rev9.db")));
        let mut left: Vec<String> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(left.len(), 5, "{left:?}");
        assert!(prune(d.path(), 0).unwrap().is_empty());
    }
}
