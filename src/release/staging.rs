//! Staging: the binaries of a verified tarball, unpacked into `<download_dir>/etcd-v<ver>-linux-
//! <arch>/` (the role's layout) as one transaction — a temp dir renamed into place, then a record
//! in the state dir (root's alone) saying which tarball it came from and each binary's digest. A
//! staging dir without its record, or whose files differ from it, is never used.

use super::archive::{self, StagedBinary, BINARIES, REQUIRED};
use crate::state::{self, digests::Digests};
use crate::util::fs;
use crate::util::io::Sha256;
use anyhow::{Context, Result};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// The binaries staged from one verified tarball.
#[derive(Debug, Clone)]
pub struct Staged {
    pub dir: PathBuf,
    pub binaries: Vec<StagedBinary>,
}

impl Staged {
    /// The staged `etcd` (every staging has one: `archive` refuses a tarball without it).
    pub fn etcd(&self) -> Option<&StagedBinary> {
        self.binaries.iter().find(|b| b.name == "etcd")
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

/// Where the record of a release's staging lives: `state::STAGED/<staging dir name>`.
pub fn record_path(root: &Path, tarball_name: &str) -> PathBuf {
    let stem = staging_dir(Path::new("/"), Path::new(tarball_name));
    state::path(root, state::STAGED).join(stem.file_name().unwrap_or_default())
}

/// The record's format, the one place it is written and read:
/// `tarball <sha256>` then one `<name> <sha256> <size>` line per binary.
mod record {
    use super::*;

    pub fn text(tarball_digest: &Sha256, binaries: &[StagedBinary]) -> String {
        let mut text = format!("tarball {tarball_digest}\n");
        for b in binaries {
            text.push_str(&format!("{} {} {}\n", b.name, b.sha256, b.size));
        }
        text
    }

    /// (name, digest, size) of each binary, when the record is of `tarball_digest` and names
    /// only binaries this tool unpacks, each once.
    pub fn parse(text: &str, tarball_digest: &Sha256) -> Option<Vec<(String, Sha256, u64)>> {
        let mut lines = text.lines();
        if lines.next()? != format!("tarball {tarball_digest}") {
            return None;
        }
        let mut out: Vec<(String, Sha256, u64)> = Vec::new();
        for line in lines {
            let mut it = line.split_whitespace();
            let (name, digest, size) = (it.next()?, it.next()?, it.next()?);
            if !BINARIES.contains(&name) || out.iter().any(|(n, _, _)| n == name) {
                return None;
            }
            out.push((name.to_string(), digest.parse().ok()?, size.parse().ok()?));
        }
        Some(out)
    }
}

/// The staged binaries of the verified tarball `tarball_digest`, as its record (in the state
/// dir, root's alone) lists them: only the binaries this tool unpacks, each file in the staging
/// dir still holding the recorded bytes. `None` when anything differs.
pub fn already_staged(
    tarball: &Path,
    tarball_digest: &Sha256,
    record: &Path,
    digests: &Digests,
) -> Option<Staged> {
    let dir = staging_dir_of(tarball).ok()?;
    let listed = record::parse(&fs::read_nofollow(record)?, tarball_digest)?;
    let mut binaries = Vec::new();
    for (name, sha256, size) in listed {
        let path = dir.join(&name);
        if !std::fs::symlink_metadata(&path).ok()?.is_file() {
            return None;
        }
        match digests.sha256(&path) {
            Ok(Some((d, n))) if d == sha256 && n == size => {}
            _ => return None,
        }
        binaries.push(StagedBinary {
            name,
            path,
            sha256,
            size,
        });
    }
    REQUIRED
        .iter()
        .all(|r| binaries.iter().any(|b| b.name == *r))
        .then_some(Staged { dir, binaries })
}

/// Stages the binaries of a verified tarball, reusing an earlier staging of the same tarball.
pub fn stage(
    tarball: &Path,
    tarball_digest: &Sha256,
    opts: &archive::Options,
    record: &Path,
    root: &Path,
    digests: &Digests,
) -> Result<Staged> {
    if let Some(staged) = already_staged(tarball, tarball_digest, record, digests) {
        return Ok(staged);
    }
    let staging = Staging::begin(tarball)?;
    let f = File::open(tarball).with_context(|| format!("opening {}", tarball.display()))?;
    match archive::extract(
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
        digests: &Digests,
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
        if let Some(dir) = record.parent() {
            fs::private_dir(root, dir, 0o755)?;
        }
        fs::write_state(record, &record::text(tarball_digest, &binaries))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::testing::*;

    #[test]
    fn a_good_tarball_stages_only_the_binaries() {
        let d = tempfile::tempdir().unwrap();
        let t = good(d.path());
        let digest = crate::util::io::sha256_file(&t).unwrap().unwrap().0;
        let record = d.path().join("record");
        let digests = Digests::load(d.path());
        let opts = archive::Options::default();
        let stage_it = || stage(&t, &digest, &opts, &record, d.path(), &digests).unwrap();
        let s = stage_it();
        let names: Vec<&str> = s.binaries.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, vec!["etcd", "etcdctl"]);
        assert!(!s.dir.join("README.md").exists());
        assert_eq!(s.etcd().map(|b| b.path.clone()), Some(s.dir.join("etcd")));
        // A second stage of the same tarball reuses the staging dir.
        let again = stage_it();
        assert_eq!(again.binaries, s.binaries);
        assert!(already_staged(&t, &digest, &record, &digests).is_some());
        // A staged file that changed is not the verified one any more.
        std::fs::write(s.dir.join("etcd"), "#!/bin/sh\n").unwrap();
        assert!(already_staged(&t, &digest, &record, &digests).is_none());
    }

    #[test]
    fn a_record_of_another_tarball_or_of_foreign_names_is_no_record() {
        let d: Sha256 = "ab".repeat(32).parse().unwrap();
        let other: Sha256 = "cd".repeat(32).parse().unwrap();
        let b = StagedBinary {
            name: "etcd".into(),
            path: PathBuf::from("/x/etcd"),
            sha256: other,
            size: 7,
        };
        let text = record::text(&d, std::slice::from_ref(&b));
        assert_eq!(
            record::parse(&text, &d),
            Some(vec![("etcd".to_string(), other, 7)])
        );
        assert_eq!(record::parse(&text, &other), None);
        let planted = format!("{text}sh {other} 7\n");
        assert_eq!(record::parse(&planted, &d), None);
        let twice = format!("{text}etcd {other} 7\n");
        assert_eq!(record::parse(&twice, &d), None);
    }
}
