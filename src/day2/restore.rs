//! `etcd_restore`: this member's data dir made from a snapshot before etcd first starts, as etcd's
//! disaster-recovery procedure says (every member restores the same snapshot with its own name and
//! peer URLs).

use super::{Context, Step};
use crate::etcd::tools::Tools;
use crate::host::users;
use crate::preflight::Report;
use crate::seed::{Config, RestoreSpec};
use crate::state;
use crate::util::fs;
use crate::util::http::Fetcher;
use crate::util::io::sha256_file;
use anyhow::{anyhow, bail, Context as _, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where the snapshot to restore is: a path on the target system, or downloaded into the download dir.
fn snapshot_file(cfg: &Config, root: &Path, r: &RestoreSpec, fetcher: &Fetcher) -> Result<PathBuf> {
    if r.snapshot.starts_with('/') {
        return Ok(fs::under(root, Path::new(&r.snapshot)));
    }
    if let Some(p) = r.snapshot.strip_prefix("file://") {
        return Ok(PathBuf::from(p));
    }
    let dir = fs::under(root, &cfg.release.download_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dest = dir.join(format!("snapshot-{}.db", r.sha256));
    if sha256_file(&dest)?.is_some_and(|(d, _)| d.to_string() == r.sha256) {
        return Ok(dest);
    }
    let (file, part) = fs::create_temp(&dest)?;
    let downloaded = fetcher.download(&r.snapshot, file, &part, &mut |_| {});
    match downloaded {
        Ok((digest, _)) if digest.to_string() == r.sha256 => {}
        Ok((digest, _)) => {
            let _ = std::fs::remove_file(&part);
            bail!(
                "etcd_restore: {} has sha256 {digest}, but etcd_restore.sha256 is {}; not restoring",
                r.snapshot,
                r.sha256
            );
        }
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    }
    std::fs::rename(&part, &dest)?;
    Ok(dest)
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .with_context(|| format!("setting the owner of {}", path.display()))?;
    if std::fs::symlink_metadata(path)?.is_dir() {
        for e in std::fs::read_dir(path)? {
            chown_tree(&e?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// For `check`: whether the snapshot is there and is the one the seed pins (a local file is hashed;
/// a URL is only fetched by apply). Err(message) when apply would refuse it.
pub fn preview(cfg: &Config, root: &Path, r: &RestoreSpec) -> Result<String, String> {
    if state::data_dir_has_member(root, &cfg.data_dir) {
        return Ok(format!(
            "{} already holds a member: apply will not restore over it",
            cfg.data_dir.display()
        ));
    }
    let file = if r.snapshot.starts_with('/') {
        fs::under(root, Path::new(&r.snapshot))
    } else if let Some(p) = r.snapshot.strip_prefix("file://") {
        PathBuf::from(p)
    } else {
        return Ok(format!(
            "apply will download {} and restore it if its sha256 is {}",
            r.snapshot, r.sha256
        ));
    };
    match sha256_file(&file) {
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

/// A snapshot whose sha256 matched the seed's, ready to restore.
pub struct Verified {
    pub file: PathBuf,
    pub size: u64,
}

/// Phase one, before anything is installed: the data dir is empty (else `None`: never restore over
/// a member), the snapshot is here (downloaded if it is a URL) and has the pinned sha256. A wrong
/// snapshot therefore changes nothing on the node.
pub fn verify(
    cfg: &Config,
    root: &Path,
    r: &RestoreSpec,
    fetcher: &Fetcher,
) -> Result<Option<Verified>> {
    if state::data_dir_has_member(root, &cfg.data_dir) {
        log::info!(
            "etcd_restore: {} already holds a member; not restoring over it",
            cfg.data_dir.display()
        );
        return Ok(None);
    }
    let leftovers = fs::entries(&fs::under(root, &cfg.data_dir));
    if !leftovers.is_empty() {
        bail!(
            "etcd_restore: {} is not empty ({}) but holds no member; move those away first",
            cfg.data_dir.display(),
            leftovers.join(", ")
        );
    }
    if cfg.setting("wal-dir").is_some() {
        bail!("etcd_restore with a separate wal-dir is not supported; restore without wal-dir, then move it");
    }
    let file = snapshot_file(cfg, root, r, fetcher)?;
    let (digest, size) = sha256_file(&file)?.ok_or_else(|| {
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
/// snapshot into a temp dir beside the data dir, hands it to the etcd user and renames it in.
pub fn restore(cfg: &Config, root: &Path, v: &Verified) -> Result<()> {
    let data = fs::under(root, &cfg.data_dir);
    let tools = Tools::in_bin_dir(root, &cfg.bin_dir)?;
    let st = tools.snapshot_status(&v.file)?;
    let parent = data.parent().context("the data dir has no parent")?;
    let base = data
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    // An interrupted restore leaves its temp dir; it holds nothing another run can use.
    fs::sweep_temps(parent, Some(&base));
    let tmp = fs::temp_path(&data);
    let _ = std::fs::remove_dir_all(&tmp);
    let get = |k: &str| cfg.settings.get(k).cloned().unwrap_or_default();
    let mut c = tools.offline();
    c.args(["snapshot", "restore"])
        .arg(&v.file)
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
        crate::util::cmd::run(c, &format!("restoring {}", v.file.display()), None)?;
        let ids = users::ids(root, &cfg.user, &cfg.group)?.unwrap_or(fs::Ids::ROOT);
        chown_tree(&tmp, ids.uid, ids.gid)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700))?;
        crate::failpoint!("restore-before-rename");
        // rename(2) replaces the empty data dir in one step: etcd sees no data or all of it.
        std::fs::rename(&tmp, &data)
            .with_context(|| format!("renaming {} to {}", tmp.display(), data.display()))?;
        fs::fsync_dir(parent)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result?;
    log::info!(
        "restored {} ({} bytes, sha256 verified, revision {}, {} keys) into {} as member {}",
        v.file.display(),
        v.size,
        st.revision,
        st.total_keys,
        cfg.data_dir.display(),
        get("name")
    );
    Ok(())
}

/// The restore as a day-2 step: verified before the install, restored before the start.
pub struct RestoreStep {
    spec: RestoreSpec,
    verified: Option<Verified>,
}

impl RestoreStep {
    pub fn new(spec: RestoreSpec) -> RestoreStep {
        RestoreStep {
            spec,
            verified: None,
        }
    }
}

impl Step for RestoreStep {
    fn check(&mut self, cx: &Context, cfg: &Config, report: &mut Report) {
        match preview(cfg, cx.root, &self.spec) {
            Ok(m) => report.ok("restore", m),
            Err(m) => report.error("restore", m),
        }
    }

    fn verify(&mut self, cx: &Context, cfg: &mut Config) -> Result<()> {
        if !cx.dry_run {
            self.verified = verify(cfg, cx.root, &self.spec, cx.fetcher)?;
        }
        Ok(())
    }

    fn preview(&self, cx: &Context, cfg: &Config) -> Vec<String> {
        if state::data_dir_has_member(cx.root, &cfg.data_dir) {
            return vec![];
        }
        vec![format!(
            "restore   datadir {} from {} (sha256 {})",
            cfg.data_dir.display(),
            self.spec.snapshot,
            self.spec.sha256
        )]
    }

    fn before_start(&mut self, cx: &Context, cfg: &Config) -> Result<()> {
        match &self.verified {
            Some(v) => restore(cfg, cx.root, v),
            None => Ok(()),
        }
    }
}
