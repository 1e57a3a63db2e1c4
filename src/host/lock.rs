//! One run at a time per target root: `flock` on `<root>/run/etcd-bootstrap.lock` (`state::LOCK`).
//! A second run waits for the first (cloud-init and the bootstrap unit may both fire), then sees
//! its work done and changes nothing.

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Lock {
    _held: Flock<File>,
    pub path: PathBuf,
}

pub fn path(root: &Path) -> PathBuf {
    crate::state::path(root, crate::state::LOCK)
}

pub fn acquire(root: &Path, wait: Duration) -> Result<Lock> {
    acquire_at(root, path(root), wait)
}

/// One maintenance run at a time on this node (`state::MAINTAIN_LOCK`), apart from `apply`'s lock:
/// a run by hand and the timer's never work on the cluster at once.
pub fn maintenance(root: &Path, wait: Duration) -> Result<Lock> {
    acquire_at(
        root,
        crate::state::path(root, crate::state::MAINTAIN_LOCK),
        wait,
    )
}

fn acquire_at(root: &Path, path: PathBuf, wait: Duration) -> Result<Lock> {
    if let Some(dir) = path.parent() {
        crate::util::fs::private_dir(root, dir, 0o755)?;
    }
    let start = Instant::now();
    let mut told = false;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&path)
        .with_context(|| format!("opening the lock {}", path.display()))?;
    // Only root may open it, so only root can hold it: a lock file others could open would let
    // any user block every run (one made 0644 by an older version is tightened here).
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut held) => {
                held.set_len(0)?;
                held.rewind()?;
                writeln!(held, "{}", std::process::id())?;
                return Ok(Lock { _held: held, path });
            }
            Err((f, errno)) if errno == nix::errno::Errno::EWOULDBLOCK => {
                file = f;
                let mut pid = String::new();
                let _ = (&file).read_to_string(&mut pid);
                let _ = (&file).rewind();
                let holder = pid.trim();
                if start.elapsed() >= wait {
                    bail!(
                        "another etcd-bootstrap (pid {}) is running on {} and holds {} (waited {:.0?}); \
                         let it finish, or raise --lock-wait",
                        if holder.is_empty() { "?" } else { holder },
                        root.display(),
                        path.display(),
                        wait
                    );
                }
                if !told {
                    log::info!("waiting for another etcd-bootstrap (pid {holder}) to finish");
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err((_, errno)) => bail!("locking {}: {errno}", path.display()),
        }
    }
}
