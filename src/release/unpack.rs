//! Unpacking the verified tarball: only `etcd`, `etcdctl` and `etcdutl`, only regular files, into a
//! staging dir in the download dir. Everything else about the archive is checked and refused if odd:
//! upstream tarballs hold nothing but plain files and directories.

use crate::fsutil::{self, HashingWriter};
use crate::release::checksum::Sha256;
use anyhow::{bail, Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

pub const BINARIES: &[&str] = &["etcd", "etcdctl", "etcdutl"];
pub const REQUIRED: &[&str] = &["etcd", "etcdctl"];
/// etcd binaries are tens of MiB; anything far larger is not one.
pub const MAX_ENTRY_BYTES: u64 = 512 * 1024 * 1024;
/// Caps the inflated size of the whole archive (a gzip bomb stops here).
pub const MAX_TOTAL_BYTES: u64 = 2 * 1024 * 1024 * 1024;
const MARKER: &str = ".etcd-bootstrap-staged";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedBinary {
    pub name: String,
    pub path: PathBuf,
    pub sha256: Sha256,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct Staged {
    pub dir: PathBuf,
    pub binaries: Vec<StagedBinary>,
}

/// Counts inflated bytes and fails past the cap.
struct Capped<R> {
    inner: R,
    total: u64,
    cap: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        if self.total > self.cap {
            return Err(io::Error::other(format!(
                "the archive inflates to more than {} MiB; refusing it (a gzip bomb?)",
                self.cap / 1048576
            )));
        }
        Ok(n)
    }
}

/// ELF e_machine values for the release architectures.
fn elf_machine(arch: &str) -> Option<u16> {
    match arch {
        "amd64" => Some(62),
        "arm64" => Some(183),
        "ppc64le" => Some(21),
        "s390x" => Some(22),
        _ => None,
    }
}

fn elf_machine_name(m: u16) -> String {
    match m {
        62 => "amd64 (x86-64)".into(),
        183 => "arm64 (aarch64)".into(),
        21 => "ppc64".into(),
        22 => "s390x".into(),
        3 => "386".into(),
        40 => "arm".into(),
        other => format!("machine type {other}"),
    }
}

fn check_elf(path: &Path, name: &str, arch: &str, tarball: &Path) -> Result<()> {
    let mut head = [0u8; 20];
    let mut f = File::open(path)?;
    let n = f.read(&mut head)?;
    if n < 20 || &head[..4] != b"\x7fELF" {
        bail!(
            "{name} in {} is not a Linux executable (no ELF header)",
            tarball.display()
        );
    }
    let machine = u16::from_le_bytes([head[18], head[19]]);
    if let Some(want) = elf_machine(arch) {
        if machine != want {
            bail!(
                "{name} in {} is built for {}, but etcd_architecture is {arch}; download the {arch} release",
                tarball.display(),
                elf_machine_name(machine)
            );
        }
    }
    Ok(())
}

/// The staging dir for a release: the role's layout, `<download_dir>/etcd-v<version>-linux-<arch>`.
pub fn staging_dir(download_dir: &Path, tarball: &Path) -> PathBuf {
    let name = tarball
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let stem = name.trim_end_matches(".tar.gz").trim_end_matches(".tgz");
    download_dir.join(stem)
}

pub fn already_staged(tarball: &Path, tarball_digest: &Sha256) -> Option<Vec<StagedBinary>> {
    let dir = staging_dir(tarball.parent()?, tarball);
    read_marker(&dir, tarball_digest)
}

fn read_marker(dir: &Path, tarball_digest: &Sha256) -> Option<Vec<StagedBinary>> {
    let text = fs::read_to_string(dir.join(MARKER)).ok()?;
    let mut lines = text.lines();
    if lines.next()? != format!("tarball {tarball_digest}") {
        return None;
    }
    let mut out = Vec::new();
    for line in lines {
        let mut it = line.split_whitespace();
        let (name, digest, size) = (it.next()?, it.next()?, it.next()?);
        let path = dir.join(name);
        let size: u64 = size.parse().ok()?;
        if fs::metadata(&path).ok()?.len() != size {
            return None;
        }
        out.push(StagedBinary {
            name: name.to_string(),
            path,
            sha256: digest.parse().ok()?,
            size,
        });
    }
    REQUIRED
        .iter()
        .all(|r| out.iter().any(|b| b.name == *r))
        .then_some(out)
}

/// Stages the binaries of a verified tarball, reusing an earlier staging of the same tarball.
pub fn stage(
    tarball: &Path,
    tarball_digest: &Sha256,
    arch: &str,
    check_arch: bool,
) -> Result<Staged> {
    let download_dir = tarball.parent().context("tarball has no parent dir")?;
    let dir = staging_dir(download_dir, tarball);
    if let Some(binaries) = read_marker(&dir, tarball_digest) {
        return Ok(Staged { dir, binaries });
    }
    let tmp = begin(tarball)?;
    let f = File::open(tarball).with_context(|| format!("opening {}", tarball.display()))?;
    let result = extract(
        BufReader::with_capacity(256 * 1024, f),
        tarball,
        &tmp,
        arch,
        check_arch,
        MAX_ENTRY_BYTES,
        MAX_TOTAL_BYTES,
    );
    match result {
        Ok(b) => commit(tarball, &tmp, tarball_digest, b),
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// A fresh temp staging dir beside the final one (an interrupted run's leftovers removed).
pub fn begin(tarball: &Path) -> Result<PathBuf> {
    let download_dir = tarball.parent().context("tarball has no parent dir")?;
    let dir = staging_dir(download_dir, tarball);
    let prefix = format!(
        "{}.tmp-",
        dir.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    );
    if let Ok(entries) = fs::read_dir(download_dir) {
        for e in entries.filter_map(|e| e.ok()) {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    let tmp = PathBuf::from(format!("{}.tmp-{}", dir.display(), std::process::id()));
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    Ok(tmp)
}

/// Makes a temp staging dir the staging dir of the verified tarball: marker, then rename.
pub fn commit(
    tarball: &Path,
    tmp: &Path,
    tarball_digest: &Sha256,
    binaries: Vec<StagedBinary>,
) -> Result<Staged> {
    let download_dir = tarball.parent().context("tarball has no parent dir")?;
    let dir = staging_dir(download_dir, tarball);
    let mut marker = format!("tarball {tarball_digest}\n");
    for b in &binaries {
        marker.push_str(&format!("{} {} {}\n", b.name, b.sha256, b.size));
    }
    let ids = fsutil::Ids {
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
    };
    fsutil::write_atomic(&tmp.join(MARKER), 0o644, ids, &mut marker.as_bytes())?;
    fsutil::fsync_dir(tmp)?;
    if dir.exists() {
        fs::remove_dir_all(&dir)
            .with_context(|| format!("removing the old staging dir {}", dir.display()))?;
    }
    crate::failpoint!("stage-rename");
    fs::rename(tmp, &dir)
        .with_context(|| format!("renaming {} to {}", tmp.display(), dir.display()))?;
    fsutil::fsync_dir(download_dir)?;
    let binaries = binaries
        .into_iter()
        .map(|b| StagedBinary {
            path: dir.join(&b.name),
            ..b
        })
        .collect();
    Ok(Staged { dir, binaries })
}

/// Inflates and unpacks a gzipped tarball from `input` (`tarball` names it in messages).
pub fn extract(
    input: impl Read,
    tarball: &Path,
    into: &Path,
    arch: &str,
    check_arch: bool,
    max_entry: u64,
    max_total: u64,
) -> Result<Vec<StagedBinary>> {
    let gz = flate2::read::GzDecoder::new(input);
    let mut archive = tar::Archive::new(Capped {
        inner: gz,
        total: 0,
        cap: max_total,
    });
    let what = |e: io::Error| anyhow::anyhow!("reading {}: {e}", tarball.display());
    let mut found: Vec<StagedBinary> = Vec::new();
    let mut entries = 0usize;
    for entry in archive.entries().map_err(what)? {
        let mut entry = entry.map_err(what)?;
        entries += 1;
        let path = entry.path().map_err(what)?.into_owned();
        let shown = path.display().to_string();
        for c in path.components() {
            match c {
                Component::Normal(_) | Component::CurDir => {}
                _ => bail!(
                    "{} holds the entry {shown:?}, which points outside the archive; refusing the tarball",
                    tarball.display()
                ),
            }
        }
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0);
        match kind {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            // Metadata records carry no file of their own.
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName => continue,
            other => bail!(
                "{} holds {shown:?}, a {}; an etcd release holds only plain files, refusing the tarball",
                tarball.display(),
                match other {
                    tar::EntryType::Symlink => "symbolic link".to_string(),
                    tar::EntryType::Link => "hard link".to_string(),
                    tar::EntryType::Char | tar::EntryType::Block => "device node".to_string(),
                    tar::EntryType::Fifo => "FIFO".to_string(),
                    o => format!("{o:?} entry"),
                }
            ),
        }
        if mode & 0o6000 != 0 {
            bail!(
                "{} holds {shown:?} with the setuid/setgid bit; refusing the tarball",
                tarball.display()
            );
        }
        let depth = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if depth > 2 || !BINARIES.contains(&name.as_str()) {
            continue;
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        if size > max_entry {
            bail!(
                "{} holds {shown:?} of {size} bytes, far larger than any etcd binary; refusing the tarball",
                tarball.display()
            );
        }
        if found.iter().any(|b| b.name == name) {
            bail!(
                "{} holds {name} twice; refusing the tarball",
                tarball.display()
            );
        }
        let dest = into.join(&name);
        let out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(&dest)
            .with_context(|| format!("creating {}", dest.display()))?;
        // Hash and write on a second thread while this one inflates: the inflate is the floor.
        let (copied, digest) = std::thread::scope(|sc| -> Result<(u64, Sha256)> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
            let writer = sc.spawn(move || -> io::Result<(Sha256, File)> {
                let mut w = HashingWriter::new(out);
                for chunk in rx {
                    w.write_all(&chunk)?;
                }
                Ok((w.digest(), w.inner))
            });
            let mut copied = 0u64;
            let mut limited = (&mut entry).take(max_entry + 1);
            loop {
                let mut chunk = vec![0u8; 256 * 1024];
                let n = limited.read(&mut chunk).map_err(what)?;
                if n == 0 {
                    break;
                }
                chunk.truncate(n);
                copied += n as u64;
                if tx.send(chunk).is_err() {
                    break; // the writer failed; its error is reported below
                }
            }
            drop(tx);
            let (digest, out) = writer
                .join()
                .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?
                .with_context(|| format!("writing {}", dest.display()))?;
            out.sync_all()?;
            Ok((copied, digest))
        })?;
        if copied > max_entry {
            bail!(
                "{} holds {shown:?}, larger than any etcd binary; refusing the tarball",
                tarball.display()
            );
        }
        crate::failpoint!("unpack-mid");
        found.push(StagedBinary {
            name: name.clone(),
            path: dest,
            sha256: digest,
            size: copied,
        });
    }
    for r in REQUIRED {
        if !found.iter().any(|b| b.name == *r) {
            bail!(
                "{} has no {r} binary ({entries} entries read); is etcd_download_url an etcd release tarball?",
                tarball.display()
            );
        }
    }
    for b in &found {
        check_elf(&b.path, &b.name, arch, tarball).or_else(|e| {
            if check_arch {
                Err(e)
            } else {
                Ok(())
            }
        })?;
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;

    /// A minimal ELF header for `machine` (enough for the architecture check).
    fn elf(machine: u16) -> Vec<u8> {
        let mut v = vec![0u8; 64];
        v[..4].copy_from_slice(b"\x7fELF");
        v[18..20].copy_from_slice(&machine.to_le_bytes());
        v
    }

    enum E<'a> {
        File(&'a str, Vec<u8>, u32),
        Link(&'a str, &'a str, tar::EntryType),
        Dev(&'a str),
    }

    /// Writes a gzipped tarball with raw headers, so hostile names (absolute, `..`) survive.
    fn tarball(dir: &Path, entries: &[E]) -> PathBuf {
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

    fn good(dir: &Path) -> PathBuf {
        tarball(
            dir,
            &[
                E::File("etcd-v9.9.9-linux-amd64/etcd", elf(62), 0o755),
                E::File("etcd-v9.9.9-linux-amd64/etcdctl", elf(62), 0o755),
                E::File("etcd-v9.9.9-linux-amd64/README.md", b"hi".to_vec(), 0o644),
            ],
        )
    }

    fn refused(entries: &[E]) -> String {
        let d = tempfile::tempdir().unwrap();
        let t = tarball(d.path(), entries);
        let out = d.path().join("out");
        fs::create_dir(&out).unwrap();
        let e = extract(
            File::open(&t).unwrap(),
            &t,
            &out,
            "amd64",
            true,
            MAX_ENTRY_BYTES,
            MAX_TOTAL_BYTES,
        )
        .unwrap_err();
        // Nothing lands outside the staging dir, whatever the archive says.
        let names: Vec<String> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(
            names.len(),
            2,
            "only the tarball and the staging dir: {names:?}"
        );
        format!("{e:#}")
    }

    fn etcd_ok() -> E<'static> {
        E::File("etcd-v9.9.9-linux-amd64/etcd", elf(62), 0o755)
    }

    #[test]
    fn a_good_tarball_stages_only_the_binaries() {
        let d = tempfile::tempdir().unwrap();
        let t = good(d.path());
        let digest = crate::fsutil::sha256_file(&t).unwrap().unwrap().0;
        let s = stage(&t, &digest, "amd64", true).unwrap();
        let names: Vec<&str> = s.binaries.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, vec!["etcd", "etcdctl"]);
        assert!(!s.dir.join("README.md").exists());
        // A second stage of the same tarball reuses the staging dir.
        let again = stage(&t, &digest, "amd64", true).unwrap();
        assert_eq!(again.binaries, s.binaries);
        assert!(already_staged(&t, &digest).is_some());
    }

    #[test]
    fn hostile_entries_are_refused() {
        let e = refused(&[etcd_ok(), E::File("/etc/passwd", b"x".to_vec(), 0o644)]);
        assert!(e.contains("points outside the archive"), "{e}");
        let e = refused(&[
            etcd_ok(),
            E::File("etcd-v9/../../evil", b"x".to_vec(), 0o644),
        ]);
        assert!(e.contains("points outside the archive"), "{e}");
        let e = refused(&[E::Link(
            "etcd-v9.9.9-linux-amd64/etcd",
            "/bin/sh",
            tar::EntryType::Symlink,
        )]);
        assert!(e.contains("a symbolic link"), "{e}");
        let e = refused(&[
            etcd_ok(),
            E::Link(
                "etcd-v9.9.9-linux-amd64/etcdctl",
                "etcd-v9.9.9-linux-amd64/etcd",
                tar::EntryType::Link,
            ),
        ]);
        assert!(e.contains("a hard link"), "{e}");
        let e = refused(&[etcd_ok(), E::Dev("etcd-v9.9.9-linux-amd64/null")]);
        assert!(e.contains("a device node"), "{e}");
        let e = refused(&[E::File("etcd-v9.9.9-linux-amd64/etcd", elf(62), 0o4755)]);
        assert!(e.contains("setuid"), "{e}");
    }

    #[test]
    fn missing_binaries_and_wrong_architectures_are_refused() {
        let e = refused(&[E::File(
            "etcd-v9.9.9-linux-amd64/README.md",
            b"x".to_vec(),
            0o644,
        )]);
        assert!(e.contains("has no etcd binary"), "{e}");
        let e = refused(&[
            E::File("etcd-v9.9.9-linux-amd64/etcd", elf(183), 0o755),
            E::File("etcd-v9.9.9-linux-amd64/etcdctl", elf(183), 0o755),
        ]);
        assert!(
            e.contains("is built for arm64 (aarch64), but etcd_architecture is amd64"),
            "{e}"
        );
        let e = refused(&[
            E::File(
                "etcd-v9.9.9-linux-amd64/etcd",
                b"#!/bin/sh\necho pwned\n".to_vec(),
                0o755,
            ),
            E::File("etcd-v9.9.9-linux-amd64/etcdctl", elf(62), 0o755),
        ]);
        assert!(e.contains("not a Linux executable"), "{e}");
        let e = refused(&[
            etcd_ok(),
            etcd_ok(),
            E::File("etcd-v9.9.9-linux-amd64/etcdctl", elf(62), 0o755),
        ]);
        assert!(e.contains("holds etcd twice"), "{e}");
    }

    #[test]
    fn oversized_entries_and_gzip_bombs_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut big = elf(62);
        big.resize(4 * 1024 * 1024, 0);
        let t = tarball(
            d.path(),
            &[E::File("etcd-v9.9.9-linux-amd64/etcd", big, 0o755)],
        );
        let out = d.path().join("o1");
        fs::create_dir(&out).unwrap();
        let e = format!(
            "{:#}",
            extract(
                File::open(&t).unwrap(),
                &t,
                &out,
                "amd64",
                true,
                1024 * 1024,
                MAX_TOTAL_BYTES
            )
            .unwrap_err()
        );
        assert!(e.contains("far larger than any etcd binary"), "{e}");
        // Zeros inflate without bound: the total cap stops them.
        let zeros = vec![0u8; 8 * 1024 * 1024];
        let t = tarball(
            d.path(),
            &[
                E::File("etcd-v9.9.9-linux-amd64/zeros", zeros, 0o644),
                etcd_ok(),
            ],
        );
        assert!(
            fs::metadata(&t).unwrap().len() < 100 * 1024,
            "compresses well"
        );
        let out = d.path().join("o2");
        fs::create_dir(&out).unwrap();
        let e = format!(
            "{:#}",
            extract(
                File::open(&t).unwrap(),
                &t,
                &out,
                "amd64",
                true,
                MAX_ENTRY_BYTES,
                2 * 1024 * 1024
            )
            .unwrap_err()
        );
        assert!(e.contains("gzip bomb"), "{e}");
    }

    #[test]
    fn not_a_gzip_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("etcd.tar.gz");
        fs::write(&t, b"<html>404</html>").unwrap();
        let out = d.path().join("o");
        fs::create_dir(&out).unwrap();
        let e = format!(
            "{:#}",
            extract(
                File::open(&t).unwrap(),
                &t,
                &out,
                "amd64",
                true,
                MAX_ENTRY_BYTES,
                MAX_TOTAL_BYTES
            )
            .unwrap_err()
        );
        assert!(e.contains("etcd.tar.gz"), "{e}");
    }
}
