//! Unpacking the verified tarball: only `etcd`, `etcdctl` and `etcdutl`, only regular files, into a
//! staging dir in the download dir. Everything else about the archive is checked and refused if odd:
//! upstream tarballs hold nothing but plain files and directories.

use super::elf;
use crate::state::digests::Digests;
use crate::util::fs;
use crate::util::io::{Capped, HashingWriter, Sha256};
use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
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

#[derive(Debug, Clone)]
pub struct Staged {
    pub dir: PathBuf,
    pub binaries: Vec<StagedBinary>,
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

/// The staging dir for a release: the role's layout, `<download_dir>/etcd-v<version>-linux-<arch>`.
pub fn staging_dir(download_dir: &Path, tarball: &Path) -> PathBuf {
    let name = tarball
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let stem = name.trim_end_matches(".tar.gz").trim_end_matches(".tgz");
    download_dir.join(stem)
}

fn staging_dir_of(tarball: &Path) -> Result<PathBuf> {
    let download_dir = tarball.parent().context("tarball has no parent dir")?;
    Ok(staging_dir(download_dir, tarball))
}

/// The staged binaries of the verified tarball `tarball_digest`, as its record (in the state
/// dir, root's alone) lists them: only the binaries this tool unpacks, each file in the staging
/// dir still holding the recorded bytes. `None` when anything differs.
pub fn already_staged(
    tarball: &Path,
    tarball_digest: &Sha256,
    record: &Path,
    digests: &mut Digests,
) -> Option<Vec<StagedBinary>> {
    let dir = staging_dir_of(tarball).ok()?;
    let text = fs::read_nofollow(record)?;
    let mut lines = text.lines();
    if lines.next()? != format!("tarball {tarball_digest}") {
        return None;
    }
    let mut out = Vec::new();
    for line in lines {
        let mut it = line.split_whitespace();
        let (name, digest, size) = (it.next()?, it.next()?, it.next()?);
        if !BINARIES.contains(&name) || out.iter().any(|b: &StagedBinary| b.name == name) {
            return None;
        }
        let path = dir.join(name);
        let sha256: Sha256 = digest.parse().ok()?;
        if !std::fs::symlink_metadata(&path).ok()?.is_file() {
            return None;
        }
        match digests.sha256(&path) {
            Ok(Some((d, n))) if d == sha256 && n.to_string() == size => {}
            _ => return None,
        }
        out.push(StagedBinary {
            name: name.to_string(),
            path,
            sha256,
            size: size.parse().ok()?,
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
    opts: &Options,
    record: &Path,
    root: &Path,
    digests: &mut Digests,
) -> Result<Staged> {
    let dir = staging_dir_of(tarball)?;
    if let Some(binaries) = already_staged(tarball, tarball_digest, record, digests) {
        return Ok(Staged { dir, binaries });
    }
    let staging = Staging::begin(tarball)?;
    let f = File::open(tarball).with_context(|| format!("opening {}", tarball.display()))?;
    match extract(
        BufReader::with_capacity(256 * 1024, f),
        tarball,
        &staging.tmp,
        opts,
    ) {
        Ok(b) => staging.commit(record, root, tarball_digest, b, digests),
        Err(e) => {
            staging.abandon();
            Err(e)
        }
    }
}

/// A temp staging dir beside the final one; it becomes the staging dir only by `commit`.
pub struct Staging {
    pub tmp: PathBuf,
    dir: PathBuf,
}

impl Staging {
    /// A fresh temp staging dir (an interrupted run's leftovers removed), root's alone.
    pub fn begin(tarball: &Path) -> Result<Staging> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = staging_dir_of(tarball)?;
        let parent = dir.parent().context("staging dir has no parent")?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        fs::sweep_temps(parent, Some(&name));
        let tmp = fs::temp_path(&dir);
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        Ok(Staging { tmp, dir })
    }

    pub fn abandon(self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
    }

    /// Makes the temp dir the staging dir of the verified tarball, then records what it holds in
    /// the state dir (`record`): a staging dir without its record is never used.
    pub fn commit(
        self,
        record: &Path,
        root: &Path,
        tarball_digest: &Sha256,
        binaries: Vec<StagedBinary>,
        digests: &mut Digests,
    ) -> Result<Staged> {
        fs::fsync_dir(&self.tmp)?;
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir)
                .with_context(|| format!("removing the old staging dir {}", self.dir.display()))?;
        }
        crate::failpoint!("stage-rename");
        std::fs::rename(&self.tmp, &self.dir).with_context(|| {
            format!("renaming {} to {}", self.tmp.display(), self.dir.display())
        })?;
        if let Some(parent) = self.dir.parent() {
            fs::fsync_dir(parent)?;
        }
        let mut text = format!("tarball {tarball_digest}\n");
        for b in &binaries {
            text.push_str(&format!("{} {} {}\n", b.name, b.sha256, b.size));
        }
        if let Some(dir) = record.parent() {
            fs::private_dir(root, dir, 0o755)?;
        }
        fs::write_state(record, &text)?;
        let binaries = binaries
            .into_iter()
            .map(|b| {
                let path = self.dir.join(&b.name);
                digests.remember(&path, b.sha256);
                StagedBinary { path, ..b }
            })
            .collect();
        Ok(Staged {
            dir: self.dir,
            binaries,
        })
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
    use flate2::write::GzEncoder;
    use std::fs;

    /// A minimal ELF header for `machine` (enough for the architecture check).
    fn elf(machine: u16) -> Vec<u8> {
        let mut v = vec![0u8; 64];
        v[..4].copy_from_slice(b"\x7fELF");
        v[4] = 2; // 64-bit
        v[5] = 1; // little-endian
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
    fn a_good_tarball_stages_only_the_binaries() {
        let d = tempfile::tempdir().unwrap();
        let t = good(d.path());
        let digest = crate::util::io::sha256_file(&t).unwrap().unwrap().0;
        let record = d.path().join("record");
        let mut digests = Digests::load(d.path());
        let opts = Options::default();
        let stage_it =
            |digests: &mut Digests| stage(&t, &digest, &opts, &record, d.path(), digests).unwrap();
        let s = stage_it(&mut digests);
        let names: Vec<&str> = s.binaries.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, vec!["etcd", "etcdctl"]);
        assert!(!s.dir.join("README.md").exists());
        // A second stage of the same tarball reuses the staging dir.
        let again = stage_it(&mut digests);
        assert_eq!(again.binaries, s.binaries);
        assert!(already_staged(&t, &digest, &record, &mut digests).is_some());
        // A staged file that changed is not the verified one any more.
        std::fs::write(
            s.dir.join("etcd"),
            "#!/bin/sh
",
        )
        .unwrap();
        assert!(already_staged(&t, &digest, &record, &mut digests).is_none());
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
