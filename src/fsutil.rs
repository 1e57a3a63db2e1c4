//! Filesystem helpers shared by every phase: target-root paths, hashing, and atomic writes.

use crate::release::checksum::Sha256;
use anyhow::{Context, Result};
use sha2::Digest;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A path on the target system, as seen from here (`/etc/etcd` under `--root /mnt` is `/mnt/etc/etcd`).
pub fn under(root: &Path, path: &Path) -> PathBuf {
    let rel = path.strip_prefix("/").unwrap_or(path);
    if rel.as_os_str().is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    }
}

/// A `Write` that hashes what passes through it: download and install hash while they write,
/// so no byte is read twice.
pub struct HashingWriter<W> {
    pub inner: W,
    pub hasher: sha2::Sha256,
    pub written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: sha2::Sha256::new(),
            written: 0,
        }
    }
    pub fn digest(&self) -> Sha256 {
        Sha256(self.hasher.clone().finalize().into())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// sha256 and size of a file, or `None` when it does not exist.
pub fn sha256_file(path: &Path) -> Result<Option<(Sha256, u64)>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut w = HashingWriter::new(io::sink());
    io::copy(&mut f, &mut w).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some((w.digest(), w.written)))
}

pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

/// Ownership for a new file, as numeric ids on the target system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
}

/// Writes `src` to `path` so that a reader (or a crash) sees either the old file or the whole new one:
/// temp file in the same directory, created with its final mode and owner before any byte is written
/// (a key is never briefly world-readable), fsync, rename, fsync of the directory.
/// Returns the sha256 of what was written.
pub fn write_atomic(path: &Path, mode: u32, ids: Ids, src: &mut dyn Read) -> Result<Sha256> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.etcd-bootstrap-{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let result = (|| -> Result<Sha256> {
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o777)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        nix::unistd::fchown(&f, Some(ids.uid.into()), Some(ids.gid.into()))
            .with_context(|| format!("setting the owner of {}", tmp.display()))?;
        // The umask may have narrowed the mode given to open(); set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", tmp.display()))?;
        let mut w = HashingWriter::new(io::BufWriter::with_capacity(256 * 1024, f));
        io::copy(src, &mut w).with_context(|| format!("writing {}", path.display()))?;
        crate::failpoint!("write-tmp");
        let digest = w.digest();
        let f = w
            .inner
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", path.display()))?;
        f.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
        drop(f);
        fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        crate::failpoint!("write-renamed");
        fsync_dir(dir)?;
        Ok(digest)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes a small root-owned state file atomically, creating its directory; unchanged text is
/// not rewritten.
pub fn write_state(path: &Path, text: &str) -> Result<()> {
    if fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_atomic(path, 0o644, Ids { uid: 0, gid: 0 }, &mut text.as_bytes())?;
    Ok(())
}

/// Removes temp files an interrupted run left in `dir` (their names carry another pid).
pub fn sweep_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') && name.contains(".etcd-bootstrap-") && name.ends_with(".tmp") {
            let _ = fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn under_root_joins_absolute_paths() {
        assert_eq!(
            under(Path::new("/mnt"), Path::new("/etc/etcd")),
            PathBuf::from("/mnt/etc/etcd")
        );
        assert_eq!(
            under(Path::new("/"), Path::new("/etc/etcd")),
            PathBuf::from("/etc/etcd")
        );
        assert_eq!(
            under(Path::new("/mnt"), Path::new("/")),
            PathBuf::from("/mnt")
        );
    }

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("key.pem");
        let ids = Ids {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        };
        let h1 = write_atomic(&p, 0o640, ids, &mut &b"one"[..]).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
        let h2 = write_atomic(&p, 0o600, ids, &mut &b"two"[..]).unwrap();
        assert_ne!(h1, h2);
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
        assert_eq!(sha256_file(&p).unwrap().unwrap().0, h2);
        // no temp files left behind
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
