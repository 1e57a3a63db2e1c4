//! What others must not control: the dirs the tool keeps what it runs and installs in (root's,
//! or the caller's, and writable by no one else, up to the root), and files opened only when they
//! are regular files (never a FIFO that would block, never a link unless asked to follow one).

use anyhow::{Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

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

/// A secret's file read whole: a regular file, not a link, this user's (root's) and readable by
/// no one else, text of at most 64 KiB. `named` says which in errors; no error shows a byte of it.
pub fn read_secret(path: &Path, named: &str) -> Result<String> {
    use crate::util::error::Error;
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let f = open_regular(path, false)
        .with_context(|| format!("opening {named}"))?
        .ok_or_else(|| Error::input(format!("{named} does not exist")))?;
    let md = f
        .metadata()
        .with_context(|| format!("inspecting {named}"))?;
    if md.uid() != nix::unistd::geteuid().as_raw() || md.mode() & 0o077 != 0 {
        return Err(Error::input(format!(
            "{named} must be root's alone (owner uid {}, mode {:04o}): chown root and chmod 600 it",
            md.uid(),
            md.mode() & 0o7777
        ))
        .into());
    }
    let mut text = String::new();
    f.take(64 * 1024)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {named} (text, at most 64 KiB)"))?;
    Ok(text)
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
