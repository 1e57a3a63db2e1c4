//! Tarballs for the release module's tests: raw headers, so hostile names survive.
#![cfg(test)]

use flate2::write::GzEncoder;
use std::fs::File;
use std::path::{Path, PathBuf};

/// A minimal ELF header for `machine` (enough for the architecture check).
pub fn elf(machine: u16) -> Vec<u8> {
    let mut v = vec![0u8; 64];
    v[..4].copy_from_slice(b"\x7fELF");
    v[4] = 2; // 64-bit
    v[5] = 1; // little-endian
    v[18..20].copy_from_slice(&machine.to_le_bytes());
    v
}

pub enum E<'a> {
    File(&'a str, Vec<u8>, u32),
    Link(&'a str, &'a str, tar::EntryType),
    Dev(&'a str),
}

/// Writes a gzipped tarball with raw headers, so hostile names (absolute, `..`) survive.
pub fn tarball(dir: &Path, entries: &[E]) -> PathBuf {
    let path = dir.join("etcd-v9.9.9-linux-amd64.tar.gz");
    let gz = GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let (name, data): (&str, Vec<u8>) = match e {
            E::File(n, d, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                (n, d.clone())
            }
            E::Link(n, target, kind) => {
                h.set_entry_type(*kind);
                h.set_mode(0o777);
                h.set_link_name(target).unwrap();
                (n, vec![])
            }
            E::Dev(n) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                (n, vec![])
            }
        };
        h.set_size(data.len() as u64);
        // Raw bytes: set_path would refuse `..` and absolute names, which is what we test.
        let raw = &mut h.as_old_mut().name;
        raw.fill(0);
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
    path
}

pub fn good(dir: &Path) -> PathBuf {
    tarball(
        dir,
        &[
            E::File("etcd-v9.9.9-linux-amd64/etcd", elf(62), 0o755),
            E::File("etcd-v9.9.9-linux-amd64/etcdctl", elf(62), 0o755),
            E::File("etcd-v9.9.9-linux-amd64/README.md", b"hi".to_vec(), 0o644),
        ],
    )
}
