//! Remembered sha256 digests of large files (the cached tarball, the installed binaries), keyed by
//! what the kernel says about the file: size, mtime, ctime, inode. Any write, rename or chmod changes
//! ctime, so a file whose metadata is unchanged since it was hashed has the same content; it is not
//! read again. This keeps a warm re-run from re-reading ~80 MB each time.

use crate::util::fs::{self as fsutil, Ids};
use crate::util::io::{sha256_file, Sha256};
use anyhow::Result;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
}

fn stamp(md: &std::fs::Metadata) -> Stamp {
    Stamp {
        size: md.len(),
        mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
        ctime_ns: md.ctime() as i128 * 1_000_000_000 + md.ctime_nsec() as i128,
        ino: md.ino(),
        dev: md.dev(),
    }
}

/// A cache, shared by reference: every layer that hashes a large file asks it (`&Digests`), and
/// it remembers behind a lock, so no `&mut` is threaded through the layers.
#[derive(Debug, Default)]
pub struct Digests {
    root: PathBuf,
    file: PathBuf,
    known: Mutex<BTreeMap<PathBuf, (Stamp, Sha256)>>,
    dirty: AtomicBool,
}

impl Digests {
    /// Loads the record under `root`; a missing or unreadable record is an empty one.
    pub fn load(root: &Path) -> Digests {
        let file = super::path(root, super::DIGESTS);
        let mut known = BTreeMap::new();
        if let Some(text) = fsutil::read_nofollow(&file) {
            for line in text.lines() {
                let f: Vec<&str> = line.splitn(7, ' ').collect();
                if f.len() != 7 {
                    continue;
                }
                let (Ok(d), Ok(size), Ok(m), Ok(c), Ok(ino), Ok(dev)) = (
                    f[0].parse::<Sha256>(),
                    f[1].parse(),
                    f[2].parse(),
                    f[3].parse(),
                    f[4].parse(),
                    f[5].parse(),
                ) else {
                    continue;
                };
                known.insert(
                    PathBuf::from(f[6]),
                    (
                        Stamp {
                            size,
                            mtime_ns: m,
                            ctime_ns: c,
                            ino,
                            dev,
                        },
                        d,
                    ),
                );
            }
        }
        Digests {
            root: root.to_path_buf(),
            file,
            known: Mutex::new(known),
            dirty: AtomicBool::new(false),
        }
    }

    /// sha256 and size of `path` (None if it does not exist), read only when it changed.
    pub fn sha256(&self, path: &Path) -> Result<Option<(Sha256, u64)>> {
        let md = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let now = stamp(&md);
        if let Some((s, d)) = self.entries().get(path) {
            if *s == now {
                return Ok(Some((*d, now.size)));
            }
        }
        let Some((d, size)) = sha256_file(path)? else {
            return Ok(None);
        };
        self.remember(path, d);
        Ok(Some((d, size)))
    }

    /// The remembered digest of `path`, only when its metadata says it is unchanged since: a file
    /// this tool wrote or verified itself, not re-read.
    pub fn known(&self, path: &Path) -> Option<Sha256> {
        let md = std::fs::symlink_metadata(path).ok()?;
        let known = self.entries();
        let (s, d) = known.get(path)?;
        (*s == stamp(&md)).then_some(*d)
    }

    /// Records `digest` for `path` as it is now (after it was written with that content).
    pub fn remember(&self, path: &Path, digest: Sha256) {
        if let Ok(md) = std::fs::metadata(path) {
            let s = stamp(&md);
            let mut known = self.entries();
            if known.get(path) != Some(&(s.clone(), digest)) {
                known.insert(path.to_path_buf(), (s, digest));
                self.dirty.store(true, Ordering::Relaxed);
            }
        }
    }

    /// The entries; a panic elsewhere while they were held leaves them as they were.
    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, (Stamp, Sha256)>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the record if anything changed (atomically, like every other file).
    pub fn save(&self) -> Result<()> {
        if !self.dirty.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut known = self.entries();
        known.retain(|p, _| p.exists());
        let mut text = String::new();
        for (p, (s, d)) in known.iter() {
            text.push_str(&format!(
                "{d} {} {} {} {} {} {}\n",
                s.size,
                s.mtime_ns,
                s.ctime_ns,
                s.ino,
                s.dev,
                p.display()
            ));
        }
        if let Some(dir) = self.file.parent() {
            fsutil::private_dir(&self.root, dir, 0o755)?;
        }
        fsutil::write_atomic(&self.file, 0o644, Ids::ROOT, &mut text.as_bytes())?;
        self.dirty.store(false, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_hashed_again() {
        let root = tempfile::tempdir().unwrap();
        let f = root.path().join("blob");
        std::fs::write(&f, b"one").unwrap();
        let d = Digests::load(root.path());
        let first = d.sha256(&f).unwrap().unwrap().0;
        d.save().unwrap();
        let d = Digests::load(root.path());
        assert_eq!(d.sha256(&f).unwrap().unwrap().0, first, "remembered");
        assert!(!d.dirty.load(Ordering::Relaxed));
        std::thread::sleep(std::time::Duration::from_millis(5));
        std::fs::write(&f, b"two").unwrap();
        let second = d.sha256(&f).unwrap().unwrap().0;
        assert_ne!(first, second, "a rewrite is seen");
        assert_eq!(second, sha256_file(&f).unwrap().unwrap().0);
    }
}
