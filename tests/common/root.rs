//! Target roots, and what an install is: a manifest of every path under one.

use super::*;
use std::os::unix::fs::MetadataExt;

/// A minimal target root: the accounts files a real root has.
pub fn new_root() -> tempfile::TempDir {
    let root = scratch("root");
    fs::create_dir_all(root.path().join("etc")).unwrap();
    fs::write(
        root.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n",
    )
    .unwrap();
    fs::write(root.path().join("etc/group"), "root:x:0:\n").unwrap();
    root
}

/// Copies a directory's files (not recursive) into `dest`.
pub fn copy_files(src: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            fs::copy(e.path(), dest.join(e.file_name())).unwrap();
        }
    }
}

/// mode, uid, gid of a path.
pub fn meta(p: &Path) -> (u32, u32, u32) {
    let m = fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

/// What an install is: every path under the root (but /run) with mode, owner, and the sha256 of a
/// file's content or a link's target. Equal manifests mean equal installs.
pub fn content_manifest(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            // Runtime state, and the digest cache (it records inode numbers and times).
            if rel == "run" || rel == "var/lib/etcd-bootstrap/digests" {
                continue;
            }
            let m = fs::symlink_metadata(&p).unwrap();
            let what = if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if m.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&p).unwrap().display())
            } else {
                etcd_bootstrap::util::io::sha256_file(&p)
                    .unwrap()
                    .unwrap()
                    .0
                    .to_string()
            };
            out.push(format!(
                "{rel} {:o} {}:{} {what}",
                m.mode() & 0o7777,
                m.uid(),
                m.gid()
            ));
        }
    }
    out.sort();
    out
}

/// The paths whose manifest lines differ between two manifests, both ways: what was added,
/// changed or removed.
pub fn changed_paths(before: &[String], after: &[String]) -> Vec<String> {
    let path = |l: &String| l.split(' ').next().unwrap().to_string();
    let mut out: Vec<String> = before
        .iter()
        .filter(|l| !after.contains(l))
        .chain(after.iter().filter(|l| !before.contains(l)))
        .map(path)
        .collect();
    out.sort();
    out.dedup();
    out
}
