//! Filesystem helpers every layer uses: paths under the target root (`under`: a root is a jail),
//! names that stay in their dir (`child`), the one temp-file convention and atomic writes
//! (`write`), and dirs and files others must not control (`private`).

mod private;
mod write;

pub use private::{open_regular, private_dir, read_secret};
pub use write::{
    commit_temp, create_temp, fsync_dir, sweep_temps, temp_path, write_atomic, write_private_state,
    write_state, write_temp,
};

use anyhow::{Context, Result};
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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
        anyhow::bail!(crate::util::error::Error::input(format!(
            "{what} is not {}",
            crate::util::text::PLAIN_NAME
        )));
    }
    Ok(dir.join(name))
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
}
