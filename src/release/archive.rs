//! The archive rules: a verified tarball is read once, gzip inflated and tar entries walked in one
//! pass, and only `etcd`, `etcdctl` and `etcdutl` — regular files of sane size, for this machine's
//! architecture — come out of it. Everything else odd is refused: upstream tarballs hold nothing but
//! plain files and directories. Hashing and writing run on a second thread beside the inflate.

use super::elf;
use crate::util::io::{Capped, HashingWriter, Sha256};
use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

pub const BINARIES: &[&str] = &["etcd", "etcdctl", "etcdutl"];
pub const REQUIRED: &[&str] = &["etcd", "etcdctl"];
/// etcd binaries are tens of MiB; anything far larger is not one.
pub const MAX_ENTRY_BYTES: u64 = 512 * 1024 * 1024;
/// Caps the inflated size of the whole archive (a gzip bomb stops here).
pub const MAX_TOTAL_BYTES: u64 = 2 * 1024 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedBinary {
    pub name: String,
    pub path: PathBuf,
    pub sha256: Sha256,
    pub size: u64,
}

/// How to unpack: the architecture the binaries must be built for, and the size limits.
#[derive(Debug, Clone)]
pub struct Options {
    pub arch: String,
    /// Off with `etcd_allow_unsupported_archs`.
    pub check_arch: bool,
    pub max_entry: u64,
    pub max_total: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            arch: "amd64".into(),
            check_arch: true,
            max_entry: MAX_ENTRY_BYTES,
            max_total: MAX_TOTAL_BYTES,
        }
    }
}

/// Why an entry is refused, if it is: paths outside the archive, links, devices, setuid bits.
fn refuse_entry(header: &tar::Header, path: &Path, tarball: &Path) -> Result<bool> {
    let shown = path.display().to_string();
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        bail!(
            "{} holds the entry {shown:?}, which points outside the archive; refusing the tarball",
            tarball.display()
        );
    }
    match header.entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => {}
        // Directories and metadata records carry no file of their own.
        tar::EntryType::Directory
        | tar::EntryType::XGlobalHeader
        | tar::EntryType::XHeader
        | tar::EntryType::GNULongName => return Ok(true),
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
    if header.mode().unwrap_or(0) & 0o6000 != 0 {
        bail!(
            "{} holds {shown:?} with the setuid/setgid bit; refusing the tarball",
            tarball.display()
        );
    }
    Ok(false)
}

/// The binary an entry is, if it is one of ours (`<top dir>/<name>` or `<name>`).
fn binary_name(path: &Path) -> Option<String> {
    let depth = path
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count();
    let name = path.file_name()?.to_string_lossy().to_string();
    (depth <= 2 && BINARIES.contains(&name.as_str())).then_some(name)
}

/// Copies one entry into `dest`, hashing and writing on a second thread while this one inflates
/// (the inflate is the floor). Returns (bytes, digest); stops reading at `max + 1` bytes.
fn copy_entry(
    entry: &mut dyn Read,
    dest: &Path,
    max: u64,
    what: &dyn Fn(io::Error) -> anyhow::Error,
) -> Result<(u64, Sha256)> {
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(dest)
        .with_context(|| format!("creating {}", dest.display()))?;
    std::thread::scope(|sc| -> Result<(u64, Sha256)> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
        let writer = sc.spawn(move || -> io::Result<(Sha256, File)> {
            let mut w = HashingWriter::new(out);
            for chunk in rx {
                w.write_all(&chunk)?;
            }
            Ok((w.digest(), w.inner))
        });
        let mut copied = 0u64;
        let mut limited = entry.take(max + 1);
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
    })
}

/// Inflates and unpacks a gzipped tarball from `input` (`tarball` names it in messages) into `into`.
pub fn extract(
    input: impl Read,
    tarball: &Path,
    into: &Path,
    opts: &Options,
) -> Result<Vec<StagedBinary>> {
    let gz = flate2::read::GzDecoder::new(input);
    let mut archive = tar::Archive::new(Capped::new(gz, opts.max_total));
    let what = |e: io::Error| anyhow::anyhow!("reading {}: {e}", tarball.display());
    let mut found: Vec<StagedBinary> = Vec::new();
    let mut entries = 0usize;
    for entry in archive.entries().map_err(what)? {
        let mut entry = entry.map_err(what)?;
        entries += 1;
        let path = entry.path().map_err(what)?.into_owned();
        let shown = path.display().to_string();
        if refuse_entry(entry.header(), &path, tarball)? {
            continue;
        }
        let Some(name) = binary_name(&path) else {
            continue;
        };
        let size = entry.header().size().unwrap_or(u64::MAX);
        if size > opts.max_entry {
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
        let (copied, digest) = copy_entry(&mut entry, &dest, opts.max_entry, &what)?;
        if copied > opts.max_entry {
            bail!(
                "{} holds {shown:?}, larger than any etcd binary; refusing the tarball",
                tarball.display()
            );
        }
        crate::failpoint!("unpack-mid", &name);
        found.push(StagedBinary {
            name,
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
    if opts.check_arch {
        for b in &found {
            elf::check(&b.path, &b.name, &opts.arch, tarball)?;
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::testing::*;
    use std::fs;

    fn refused(entries: &[E]) -> String {
        let d = tempfile::tempdir().unwrap();
        let t = tarball(d.path(), entries);
        let out = d.path().join("out");
        fs::create_dir(&out).unwrap();
        let e = extract(File::open(&t).unwrap(), &t, &out, &Options::default()).unwrap_err();
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
                &Options {
                    max_entry: 1024 * 1024,
                    ..Options::default()
                }
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
                &Options {
                    max_total: 2 * 1024 * 1024,
                    ..Options::default()
                }
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
            extract(File::open(&t).unwrap(), &t, &out, &Options::default()).unwrap_err()
        );
        assert!(e.contains("etcd.tar.gz"), "{e}");
    }
}
