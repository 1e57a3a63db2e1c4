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
    // Staging dirs an interrupted run left behind.
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
    let result = extract(tarball, &tmp, arch, check_arch);
    let binaries = match result {
        Ok(b) => b,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let mut marker = format!("tarball {tarball_digest}\n");
    for b in &binaries {
        marker.push_str(&format!("{} {} {}\n", b.name, b.sha256, b.size));
    }
    let ids = fsutil::Ids {
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
    };
    fsutil::write_atomic(&tmp.join(MARKER), 0o644, ids, &mut marker.as_bytes())?;
    fsutil::fsync_dir(&tmp)?;
    if dir.exists() {
        fs::remove_dir_all(&dir)
            .with_context(|| format!("removing the old staging dir {}", dir.display()))?;
    }
    fs::rename(&tmp, &dir)
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

fn extract(tarball: &Path, into: &Path, arch: &str, check_arch: bool) -> Result<Vec<StagedBinary>> {
    let f = File::open(tarball).with_context(|| format!("opening {}", tarball.display()))?;
    let gz = flate2::read::GzDecoder::new(BufReader::with_capacity(256 * 1024, f));
    let mut archive = tar::Archive::new(Capped {
        inner: gz,
        total: 0,
        cap: MAX_TOTAL_BYTES,
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
        if size > MAX_ENTRY_BYTES {
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
        let mut w = HashingWriter::new(io::BufWriter::with_capacity(256 * 1024, out));
        let copied = io::copy(&mut (&mut entry).take(MAX_ENTRY_BYTES + 1), &mut w).map_err(what)?;
        if copied > MAX_ENTRY_BYTES {
            bail!(
                "{} holds {shown:?}, larger than any etcd binary; refusing the tarball",
                tarball.display()
            );
        }
        w.flush()?;
        let digest = w.digest();
        let out = w.inner.into_inner().map_err(|e| e.into_error())?;
        out.sync_all()?;
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
