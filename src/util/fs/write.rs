//! Writing so that a reader (or a crash) sees the old file or the whole new one: the one temp
//! name every write uses (`.<name>.etcd-bootstrap-<pid>.tmp`, beside its target), its sweeper, and
//! temp file → sync → rename → sync the dir.

use super::Ids;
use crate::util::io::{HashingWriter, Sha256};
use anyhow::{Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TEMP_MARK: &str = ".etcd-bootstrap-";
const TEMP_END: &str = ".tmp";
/// A temp file whose owner is gone is swept; so is one older than any run could last.
const TEMP_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The one name for a temp file or dir that becomes `path`: hidden, beside it (so the final rename
/// stays on one filesystem), carrying this process's id: `.<name>.etcd-bootstrap-<pid>.tmp`.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let dir = path.parent().unwrap_or(Path::new("/"));
    dir.join(format!(
        ".{name}{TEMP_MARK}{}{TEMP_END}",
        std::process::id()
    ))
}

/// (final name, pid) of a name made by `temp_path`.
fn parse_temp(name: &str) -> Option<(&str, u32)> {
    let inner = name.strip_prefix('.')?.strip_suffix(TEMP_END)?;
    let (final_name, pid) = inner.rsplit_once(TEMP_MARK)?;
    Some((final_name, pid.parse().ok()?))
}

fn running(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e == nix::errno::Errno::EPERM,
    }
}

/// Removes the temp files and dirs an interrupted run left in `dir`: only those for `only` (a final
/// name) when given, and only when their process is gone or they are older than any run could be.
/// Links are removed, never followed.
pub fn sweep_temps(dir: &Path, only: Option<&str>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().to_string();
        let Some((final_name, pid)) = parse_temp(&name) else {
            continue;
        };
        if only.is_some_and(|o| o != final_name) || pid == std::process::id() {
            continue;
        }
        let Ok(md) = fs::symlink_metadata(e.path()) else {
            continue;
        };
        let age = md
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .unwrap_or_default();
        if running(pid) && age < TEMP_MAX_AGE {
            continue;
        }
        let _ = if md.is_dir() {
            fs::remove_dir_all(e.path())
        } else {
            fs::remove_file(e.path())
        };
    }
}

/// Creates `temp_path(path)` for writing, readable by its owner alone: stale temps of the same file
/// are swept and a leftover of this very name (a crash of a process with this id) is removed
/// first, without following it; the file is created new (`O_EXCL`, `O_NOFOLLOW`), so nothing
/// planted there is written through.
pub fn create_temp(path: &Path) -> Result<(File, PathBuf)> {
    // An interrupted write of the same file left its temp here: it goes now.
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
        sweep_temps(dir, Some(&name.to_string_lossy()));
    }
    let tmp = temp_path(path);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", tmp.display())),
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc_o_nofollow())
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    Ok((f, tmp))
}

fn libc_o_nofollow() -> i32 {
    nix::fcntl::OFlag::O_NOFOLLOW.bits()
}

pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

/// Writes `src` to `path` so that a reader (or a crash) sees either the old file or the whole new one:
/// temp file in the same directory, created with its final mode and owner before any byte is written
/// (a key is never briefly world-readable), fsync, rename, fsync of the directory.
/// Returns the sha256 of what was written.
pub fn write_atomic(path: &Path, mode: u32, ids: Ids, src: &mut dyn Read) -> Result<Sha256> {
    let (tmp, digest) = write_temp(path, mode, ids, src)?;
    commit_temp(&tmp, path)?;
    Ok(digest)
}

/// The first half of `write_atomic`: `src` written to the temp file beside `path`, with its final
/// owner and mode, synced; `path` itself untouched. Returns the temp's path and the digest of what
/// was written. The caller commits it with `commit_temp` or removes it.
pub fn write_temp(
    path: &Path,
    mode: u32,
    ids: Ids,
    src: &mut dyn Read,
) -> Result<(PathBuf, Sha256)> {
    let (f, tmp) = create_temp(path)?;
    let result = (|| -> Result<Sha256> {
        nix::unistd::fchown(&f, Some(ids.uid.into()), Some(ids.gid.into()))
            .with_context(|| format!("setting the owner of {}", tmp.display()))?;
        f.set_permissions(fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", tmp.display()))?;
        let mut w = HashingWriter::new(io::BufWriter::with_capacity(256 * 1024, f));
        io::copy(src, &mut w).with_context(|| format!("writing {}", path.display()))?;
        crate::failpoint!("write-tmp", &path.display().to_string());
        let digest = w.digest();
        let f = w
            .inner
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", path.display()))?;
        f.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
        Ok(digest)
    })();
    match result {
        Ok(d) => Ok((tmp, d)),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The second half of `write_atomic`: the temp renamed over `path`, and the dir synced.
pub fn commit_temp(tmp: &Path, path: &Path) -> Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    if let Err(e) = fs::rename(tmp, path) {
        let _ = fs::remove_file(tmp);
        return Err(e).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()));
    }
    crate::failpoint!("write-renamed", &path.display().to_string());
    fsync_dir(dir)
}

/// Writes a small root-owned state file atomically, creating its directory; unchanged text is
/// not rewritten.
pub fn write_state(path: &Path, text: &str) -> Result<()> {
    write_state_mode(path, text, 0o644)
}

/// `write_state`, readable by root alone.
pub fn write_private_state(path: &Path, text: &str) -> Result<()> {
    write_state_mode(path, text, 0o600)
}

fn write_state_mode(path: &Path, text: &str, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // Unchanged only if the mode is too: a private record left readable is written anew.
    let same_mode = fs::symlink_metadata(path)
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o777 == mode);
    if same_mode && fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_atomic(path, mode, Ids::ROOT, &mut text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    /// A private record found readable by others is written anew with its mode, even when its
    /// content is the same (the applied seed may hold keys).
    #[test]
    fn a_private_record_left_readable_is_made_private() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("applied-seed.yaml");
        fs::write(&p, "seed").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        write_private_state(&p, "seed").unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read_to_string(&p).unwrap(), "seed");
    }

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("key.pem");
        let ids = Ids::current();
        let h1 = write_atomic(&p, 0o640, ids, &mut &b"one"[..]).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
        let h2 = write_atomic(&p, 0o600, ids, &mut &b"two"[..]).unwrap();
        assert_ne!(h1, h2);
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
        assert_eq!(crate::util::io::sha256_file(&p).unwrap().unwrap().0, h2);
        // no temp files left behind
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn temp_names_parse_back_and_only_dead_owners_are_swept() {
        let d = tempfile::tempdir().unwrap();
        let t = temp_path(&d.path().join("etcd.tar.gz"));
        let name = t.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(parse_temp(&name), Some(("etcd.tar.gz", std::process::id())));
        // A dead process (pid 0x3ffffff is above any pid_max) and a live one (this test's parent).
        let dead = d.path().join(".a.etcd-bootstrap-67108863.tmp");
        let live = d.path().join(format!(
            ".a.etcd-bootstrap-{}.tmp",
            std::os::unix::process::parent_id()
        ));
        let other_kind = d.path().join(".b.etcd-bootstrap-67108863.tmp");
        for p in [&dead, &live, &other_kind] {
            fs::write(p, "x").unwrap();
        }
        fs::create_dir(d.path().join(".c.etcd-bootstrap-67108863.tmp")).unwrap();
        sweep_temps(d.path(), Some("a"));
        assert!(!dead.exists() && live.exists() && other_kind.exists());
        sweep_temps(d.path(), None);
        assert!(!other_kind.exists() && live.exists());
        assert!(!d.path().join(".c.etcd-bootstrap-67108863.tmp").exists());
    }

    #[test]
    fn create_temp_does_not_write_through_a_planted_link() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let target = d.path().join("f");
        std::os::unix::fs::symlink(&victim, temp_path(&target)).unwrap();
        let (mut f, tmp) = create_temp(&target).unwrap();
        f.write_all(b"new").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!fs::symlink_metadata(&tmp).unwrap().file_type().is_symlink());
        assert_eq!(fs::metadata(&tmp).unwrap().mode() & 0o777, 0o600);
    }
}
