//! Room on the node's disks: free space where etcd's data dir is (or will be), and the size of
//! the db file in it. etcd's defragmentation writes a full copy of the db before it drops the
//! old one, so the data dir's filesystem needs the quota plus the db's current size.

use crate::util::fs;
use std::path::{Path, PathBuf};

/// Bytes free to an unprivileged writer on the filesystem that holds `path` under `root` (its
/// nearest existing ancestor, before the data dir is made), and which dir was asked.
pub fn free_at(root: &Path, path: &Path) -> Option<(PathBuf, u64)> {
    let mut p = fs::under(root, path);
    while !p.exists() {
        p = p.parent()?.to_path_buf();
    }
    let st = nix::sys::statvfs::statvfs(&p).ok()?;
    let free = (st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64);
    Some((p, free))
}

/// The size of the db file in etcd's data dir (0 when there is none yet).
pub fn db_file_size(root: &Path, data_dir: &Path) -> u64 {
    let db = fs::under(root, data_dir).join("member/snap/db");
    std::fs::symlink_metadata(db)
        .ok()
        .filter(|m| m.is_file())
        .map_or(0, |m| m.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_is_asked_where_the_dir_will_be() {
        let d = tempfile::tempdir().unwrap();
        let (at, free) = free_at(d.path(), Path::new("/var/lib/etcd")).unwrap();
        assert_eq!(at, d.path());
        assert!(free > 0);
        assert_eq!(db_file_size(d.path(), Path::new("/var/lib/etcd")), 0);
        std::fs::create_dir_all(d.path().join("var/lib/etcd/member/snap")).unwrap();
        std::fs::write(d.path().join("var/lib/etcd/member/snap/db"), [0u8; 4096]).unwrap();
        assert_eq!(db_file_size(d.path(), Path::new("/var/lib/etcd")), 4096);
    }
}
