//! `etcd_restore`: this member's data dir made from a snapshot before etcd first starts, as etcd's
//! disaster-recovery procedure says (every member restores the same snapshot with its own name and
//! peer URLs).

use super::{Node, Settings, Step};
use crate::etcd::tools::Tools;
use crate::host::users;
use crate::seed::RestoreSpec;
use crate::state;
use crate::util::fs;
use crate::util::io::{HashingWriter, Sha256};
use crate::util::report::Report;
use anyhow::{anyhow, bail, Context as _, Result};

/// The largest snapshot a seed may point at: far over any etcd quota (8 GiB is etcd's advice), so
/// only a server that never stops sending reaches it.
const MAX_SNAPSHOT: u64 = 64 << 30;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The snapshot, made a private copy (0600, in the download dir, root's alone) while it is hashed:
/// what was verified is what etcdutl later reads, whoever can write where the snapshot came from.
/// A URL is downloaded straight into such a copy.
fn private_copy(node: &Node, r: &RestoreSpec) -> Result<PathBuf> {
    let (cfg, root, fetcher) = (node.cfg, node.root, node.fetcher);
    let dir = fs::under(root, &cfg.release.download_dir);
    fs::private_dir(root, &dir, 0o755)?;
    let dest = dir.join(format!("snapshot-{}.db", r.sha256));
    let (mut file, part) = fs::create_temp(&dest)?;
    let source = if r.snapshot.starts_with('/') {
        Some(fs::under(root, Path::new(&r.snapshot)))
    } else {
        r.snapshot.strip_prefix("file://").map(PathBuf::from)
    };
    let copied = match &source {
        Some(src) => copy_hashing(src, &mut file, &part),
        None => fetcher
            .download(&r.snapshot, file, &part, MAX_SNAPSHOT, &mut |_| true)
            .map(|(d, _)| d),
    };
    let digest = match copied {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    if digest.to_string() != r.sha256 {
        let _ = std::fs::remove_file(&part);
        bail!(
            "etcd_restore: {} has sha256 {digest}, but etcd_restore.sha256 is {}; nothing was changed",
            source
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| r.snapshot.clone()),
            r.sha256
        );
    }
    std::fs::rename(&part, &dest)
        .with_context(|| format!("renaming {} to {}", part.display(), dest.display()))?;
    Ok(dest)
}

fn copy_hashing(src: &Path, out: &mut std::fs::File, shown: &Path) -> Result<Sha256> {
    let mut f = open_snapshot(src)?.ok_or_else(|| {
        anyhow!(
            "etcd_restore: the snapshot {} does not exist",
            src.display()
        )
    })?;
    let mut w = HashingWriter::new(out);
    std::io::copy(&mut f, &mut w)
        .with_context(|| format!("copying the snapshot to {}", shown.display()))?;
    w.inner.sync_all()?;
    Ok(w.digest())
}

/// The snapshot file, never a link someone planted nor a FIFO that would hold the run (and the
/// run lock) forever.
fn open_snapshot(src: &Path) -> Result<Option<std::fs::File>> {
    fs::open_regular(src, false).context("etcd_restore")
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
pub fn preview(node: &Node, r: &RestoreSpec) -> Result<String> {
    let (cfg, root) = (node.cfg, node.root);
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
    let hashed = open_snapshot(&file).and_then(|f| {
        f.map(|mut f| crate::util::io::sha256_reader(&mut f).map_err(anyhow::Error::from))
            .transpose()
    });
    match hashed {
        Ok(Some((d, size))) if d.to_string() == r.sha256 => Ok(format!(
            "{} ({size} bytes) has the pinned sha256: apply will restore it into {}",
            file.display(),
            cfg.data_dir.display()
        )),
        Ok(Some((d, _))) => bail!(
            "{} has sha256 {d}, but etcd_restore.sha256 is {}",
            file.display(),
            r.sha256
        ),
        Ok(None) => bail!("the snapshot {} does not exist", file.display()),
        Err(e) => Err(e),
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
pub fn verify(node: &Node, r: &RestoreSpec) -> Result<Option<Verified>> {
    let (cfg, root) = (node.cfg, node.root);
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
    let file = private_copy(node, r)?;
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    Ok(Some(Verified { file, size }))
}

/// Phase two, after the binaries are installed and before etcd first starts: restores the verified
/// snapshot into a temp dir beside the data dir, hands it to the etcd user and renames it in.
pub fn restore(node: &Node, v: &Verified, keep: bool) -> Result<()> {
    let (cfg, root) = (node.cfg, node.root);
    let data = fs::under_for_write(root, &cfg.data_dir);
    let tools = Tools::verified(root, &cfg.bin_dir)?;
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
    // The copy holds every key of the cluster: it does not outlive the restore unless asked to.
    if !keep {
        std::fs::remove_file(&v.file)
            .with_context(|| format!("removing the restored copy {}", v.file.display()))?;
    }
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
    fn check(&mut self, node: &Node, report: &mut Report) {
        match preview(node, &self.spec) {
            Ok(m) => report.ok("restore", m),
            Err(m) => report.error("restore", format!("{m:#}")),
        }
    }

    fn verify(&mut self, node: &Node) -> Result<Settings> {
        if !node.mode.dry_run {
            self.verified = verify(node, &self.spec)?;
        }
        Ok(Settings::new())
    }

    fn preview(&self, node: &Node) -> Vec<String> {
        let cfg = node.cfg;
        if state::data_dir_has_member(node.root, &cfg.data_dir) {
            return vec![];
        }
        vec![format!(
            "restore   datadir {} from {} (sha256 {})",
            cfg.data_dir.display(),
            self.spec.snapshot,
            self.spec.sha256
        )]
    }

    fn before_start(&mut self, node: &Node) -> Result<()> {
        match &self.verified {
            Some(v) => restore(node, v, self.spec.keep),
            None => Ok(()),
        }
    }
}
