//! Filesystem helpers every layer uses: paths under the target root, the one temp-file naming
//! convention and its sweeper, and atomic writes.

use crate::util::io::{HashingWriter, Sha256};
use anyhow::{Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A path on the target system, as seen from here (`/etc/etcd` under `--root /mnt` is
/// `/mnt/etc/etcd`), resolved the way a chroot into `root` would resolve it: `..` stops at the root
/// and symlinks are followed inside it (an absolute link against the root), the last component
/// too. For reading, and for dirs to work in; a file about to be written is `under_for_write`.
pub fn under(root: &Path, path: &Path) -> PathBuf {
    resolve_in_root(root, path, true)
}

/// `under` for a path about to be written (or renamed onto, or chmodded): its dirs resolved
/// inside the root, its own name kept as it is, so a link planted there is refused or replaced,
/// never followed.
pub fn under_for_write(root: &Path, path: &Path) -> PathBuf {
    resolve_in_root(root, path, false)
}

/// Links followed in one resolution before it stops (as the kernel's ELOOP).
const MAX_LINKS: usize = 40;

fn resolve_in_root(root: &Path, path: &Path, follow_last: bool) -> PathBuf {
    use std::collections::VecDeque;
    use std::path::Component;
    let parts = |p: &Path| -> VecDeque<std::ffi::OsString> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect()
    };
    let mut pending = parts(path);
    let mut out: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            out.pop();
            continue;
        }
        out.push(c);
        if pending.is_empty() && !follow_last {
            break;
        }
        let here: PathBuf = root.join(out.iter().collect::<PathBuf>());
        let Ok(target) = fs::read_link(&here) else {
            continue;
        };
        links += 1;
        if links > MAX_LINKS {
            break;
        }
        out.pop();
        if target.is_absolute() {
            out.clear();
        }
        let mut next = parts(&target);
        next.extend(pending.drain(..));
        pending = next;
    }
    let rel: PathBuf = out.iter().collect();
    if rel.as_os_str().is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    }
}

/// `dir/name` for a `name` that is one plain name (`text::is_plain_name`): whatever a name holds,
/// the path made from it stays in `dir`. `what` says in errors what the name is (never its value:
/// it may be anything someone pasted).
pub fn child(dir: &Path, name: &str, what: &str) -> Result<PathBuf> {
    if !crate::util::text::is_plain_name(name) {
        anyhow::bail!(crate::util::error::InvalidSeed(format!(
            "{what} is not {}",
            crate::util::text::PLAIN_NAME
        )));
    }
    Ok(dir.join(name))
}

/// Opens `path` for reading only if it is a regular file: without blocking (a FIFO someone put
/// there is refused, not waited on), and, unless `follow`, without following a link at its name.
/// `Ok(None)` when it does not exist.
pub fn open_regular(path: &Path, follow: bool) -> Result<Option<File>> {
    let mut flags = nix::fcntl::OFlag::O_NONBLOCK;
    if !follow {
        flags |= nix::fcntl::OFlag::O_NOFOLLOW;
    }
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => anyhow::bail!(
            "{} is a symbolic link; give the file itself",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let md = f
        .metadata()
        .with_context(|| format!("inspecting {}", path.display()))?;
    if !md.is_file() {
        anyhow::bail!(
            "{} is not a regular file (a {}); give a file",
            path.display(),
            kind_of(&md)
        );
    }
    Ok(Some(f))
}

fn kind_of(md: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = md.file_type();
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() || t.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

/// A file's text, opened without following a link at its name; `None` when it does not exist, is
/// a link, or is not text.
pub fn read_nofollow(path: &Path) -> Option<String> {
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
        .ok()?;
    let mut s = String::new();
    f.read_to_string(&mut s).ok()?;
    Some(s)
}

/// Why `md` (of `path`) is not a dir only this process's user (root) can write, if it is not:
/// owned by another user, or writable by group or others (a sticky dir like /tmp excepted when it
/// is not the dir itself).
fn not_private(path: &Path, md: &fs::Metadata, itself: bool) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let mode = md.mode() & 0o7777;
    // root's dirs are fine for anyone; a user running `pki` owns their own.
    if md.uid() != me && md.uid() != 0 {
        return Some(format!("{} is owned by uid {}", path.display(), md.uid()));
    }
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && (itself || !sticky) {
        return Some(format!(
            "{} is writable by {} (mode {mode:04o})",
            path.display(),
            if mode & 0o002 != 0 {
                "everyone"
            } else {
                "its group"
            }
        ));
    }
    None
}

/// Makes sure `dir` (under `root`) is a dir only root can write, and so is every dir above it up
/// to the root: the tool keeps what it runs and installs as root there. A missing dir is made with
/// `mode`; an existing one that others own or can write is refused, naming the fix.
pub fn private_dir(root: &Path, dir: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut at = Some(dir);
    let mut itself = true;
    while let Some(p) = at {
        let md = fs::metadata(p).with_context(|| format!("inspecting {}", p.display()))?;
        if let Some(why) = not_private(p, &md, itself) {
            anyhow::bail!(
                "{why}: etcd-bootstrap keeps what it runs and installs as root under {}, so only root may \
                 write there; fix it (chown root:root {p}; chmod go-w {p}) or choose another dir, then run again",
                dir.display(),
                p = p.display()
            );
        }
        if p == root || p == Path::new("/") {
            break;
        }
        itself = false;
        at = p.parent();
    }
    Ok(())
}

/// Ownership for a new file, as numeric ids on the target system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
}

impl Ids {
    pub const ROOT: Ids = Ids { uid: 0, gid: 0 };

    /// The ids this process runs as.
    pub fn current() -> Ids {
        Ids {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        }
    }
}

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
    if fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_atomic(path, 0o644, Ids::ROOT, &mut text.as_bytes())?;
    Ok(())
}

/// A file's bytes when it is no larger than `limit` (to compare in memory); `None` when it is larger
/// or does not exist.
pub fn read_small(path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    match fs::metadata(path) {
        Ok(m) if m.len() <= limit => Ok(Some(
            fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The names in a dir (empty when it does not exist).
pub fn entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
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
    fn paths_resolve_inside_the_root_as_a_chroot_would() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("elsewhere/etcd")).unwrap();
        fs::create_dir_all(r.join("etc")).unwrap();
        std::os::unix::fs::symlink("/elsewhere", r.join("opt")).unwrap();
        std::os::unix::fs::symlink("../../..", r.join("etc/up")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", r.join("etc/key.pem")).unwrap();
        assert_eq!(under(r, Path::new("/../ESCAPED")), r.join("ESCAPED"));
        assert_eq!(under(r, Path::new("/opt/etcd")), r.join("elsewhere/etcd"));
        assert_eq!(under(r, Path::new("/etc/up/x")), r.join("x"));
        assert_eq!(under(r, Path::new("/etc/key.pem")), r.join("etc/shadow"));
        // Written: the link itself is the target, its dirs resolved.
        assert_eq!(
            under_for_write(r, Path::new("/etc/key.pem")),
            r.join("etc/key.pem")
        );
        assert_eq!(
            under_for_write(r, Path::new("/opt/etcd/x")),
            r.join("elsewhere/etcd/x")
        );
        // A loop stops instead of spinning.
        std::os::unix::fs::symlink("/loop", r.join("loop")).unwrap();
        assert!(under(r, Path::new("/loop/a")).starts_with(r));
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
