//! The etcd release: where it comes from, its trusted digest, the verified cached tarball, and the
//! binaries staged from it.
//!
//! Nothing from a tarball is used before its sha256 matched: downloads land in a temp file and are
//! renamed into the cache only after verification.

pub mod archive;
pub mod checksum;
pub mod elf;
pub mod staging;
#[cfg(test)]
mod testing;

use crate::seed::ReleaseSpec;
use crate::state::{self, digests::Digests};
use crate::util::error::Error;
use crate::util::fs;
use crate::util::http::{Fetcher, Tee};
use anyhow::{bail, Context, Result};
use checksum::{ChecksumSpec, Sha256};
use staging::Staged;
use std::path::{Path, PathBuf};

/// A SHA256SUMS file is a few KiB; more means a wrong URL.
const MAX_SUMS_BYTES: u64 = 1024 * 1024;
/// The largest release tarball downloaded: etcd's are about 20 MB; a body past this is no release.
const MAX_TARBALL: u64 = 1 << 30;

#[derive(Debug, Clone)]
pub struct Source {
    pub url: String,
    pub file_name: String,
    pub checksum: ChecksumSpec,
}

impl Source {
    pub fn from_spec(spec: &ReleaseSpec) -> Result<Source> {
        let url = spec.download_url.clone();
        let checksum = checksum::parse_spec(&spec.download_checksum)
            .map_err(|e| crate::util::error::invalid(format!("etcd_download_url_checksum: {e}")))?;
        if !["https://", "http://", "file://"]
            .iter()
            .any(|p| url.starts_with(p))
        {
            bail!(Error::input(format!(
                "etcd_download_url: {url:?} is not an https://, http:// or file:// URL"
            )));
        }
        if url.starts_with("http://") && !matches!(checksum, ChecksumSpec::Digest(_)) {
            bail!(Error::input(format!(
                "etcd_download_url: {url} is plain http, which anyone on the path can change; pin the digest \
                 (etcd_download_url_checksum: sha256:<64 hex>) or use https://"
            )));
        }
        if let ChecksumSpec::SumsUrl(s) = &checksum {
            if s.starts_with("http://") {
                bail!(Error::input(format!(
                    "etcd_download_url_checksum: the SHA256SUMS URL {s} is plain http; use https:// or a pinned digest"
                )));
            }
        }
        let path_part = url.split(['?', '#']).next().unwrap_or(&url);
        let file_name = path_part.rsplit('/').next().unwrap_or("").to_string();
        if file_name.is_empty() || file_name == "." || file_name == ".." {
            bail!(Error::input(format!(
                "etcd_download_url: {url:?} does not end in a file name"
            )));
        }
        Ok(Source {
            url,
            file_name,
            checksum,
        })
    }

    /// The digest the tarball must have. Reads the SHA256SUMS file when the seed names one, unless
    /// an earlier verified download recorded the digest from that same file (in the state dir,
    /// root's alone): then no network is needed (an image pre-staged with `fetch` boots air-gapped).
    pub fn expected_digest(&self, fetcher: &Fetcher, root: &Path) -> Result<Sha256> {
        match &self.checksum {
            ChecksumSpec::Digest(d) => Ok(*d),
            ChecksumSpec::SumsUrl(u) => {
                if let Some(d) = self.recorded(root, u) {
                    return Ok(d);
                }
                let bytes = fetcher.fetch_small(u, MAX_SUMS_BYTES)?;
                let text = String::from_utf8_lossy(&bytes);
                checksum::find_in_sums(&text, &self.file_name)
                    .with_context(|| format!("reading the checksum file {u}"))
            }
        }
    }

    /// The digest known without the network: pinned, or recorded from a SHA256SUMS file before.
    pub fn known_digest(&self, root: &Path) -> Option<Sha256> {
        match &self.checksum {
            ChecksumSpec::Digest(d) => Some(*d),
            ChecksumSpec::SumsUrl(u) => self.recorded(root, u),
        }
    }

    /// `<hex>  <file name>  <SHA256SUMS URL>` lines.
    fn records(root: &Path) -> Vec<(String, String, String)> {
        state::read(root, state::RELEASE_DIGESTS)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut it = l.splitn(3, "  ");
                Some((it.next()?.into(), it.next()?.into(), it.next()?.into()))
            })
            .collect()
    }

    fn recorded(&self, root: &Path, sums_url: &str) -> Option<Sha256> {
        Source::records(root)
            .into_iter()
            .find(|(_, name, url)| *name == self.file_name && url == sums_url)
            .and_then(|(hex, _, _)| hex.parse().ok())
    }

    /// Remembers where a verified digest came from (only for SHA256SUMS sources).
    fn record(&self, root: &Path, digest: &Sha256) -> Result<()> {
        let ChecksumSpec::SumsUrl(u) = &self.checksum else {
            return Ok(());
        };
        if self.recorded(root, u) == Some(*digest) {
            return Ok(());
        }
        let mut text = String::new();
        for (hex, name, url) in Source::records(root) {
            if !(name == self.file_name && url == *u) {
                text.push_str(&format!("{hex}  {name}  {url}\n"));
            }
        }
        text.push_str(&format!("{digest}  {}  {u}\n", self.file_name));
        state::write(root, state::RELEASE_DIGESTS, &text)
    }

    /// Where the checksum came from, for messages.
    fn checksum_origin(&self) -> String {
        match &self.checksum {
            ChecksumSpec::Digest(_) => "etcd_download_url_checksum".to_string(),
            ChecksumSpec::SumsUrl(u) => u.clone(),
        }
    }
}

pub fn fetcher_for(spec: &ReleaseSpec, root: &Path) -> Result<Fetcher> {
    let ca = spec.download_ca_file.as_ref().map(|p| fs::under(root, p));
    let hints = crate::util::http::Hints {
        ca_file: "etcd_download_ca_file",
        not_found: "check etcd_version and etcd_download_url",
    };
    Fetcher::with_retry(ca.as_deref(), spec.retry, hints)
}

/// Where the verified tarball is cached on this machine.
pub fn cache_path(spec: &ReleaseSpec, root: &Path, src: &Source) -> PathBuf {
    fs::under(root, &spec.download_dir).join(&src.file_name)
}

/// The release a seed names, on one target root: where it comes from, the digest it must have,
/// the verified tarball in the download dir, and the binaries staged from it. Built once per run.
pub struct Release {
    pub spec: ReleaseSpec,
    pub root: PathBuf,
    pub source: Source,
    pub fetcher: Fetcher,
}

impl Release {
    pub fn new(spec: &ReleaseSpec, root: &Path) -> Result<Release> {
        Ok(Release {
            source: Source::from_spec(spec)?,
            fetcher: fetcher_for(spec, root)?,
            spec: spec.clone(),
            root: root.to_path_buf(),
        })
    }

    fn unpack_options(&self) -> archive::Options {
        archive::Options {
            arch: self.spec.architecture.clone(),
            check_arch: !self.spec.allow_unsupported_arch,
            ..archive::Options::default()
        }
    }

    /// The staging record of this release, in the state dir.
    fn record(&self) -> PathBuf {
        staging::record_path(&self.root, &self.source.file_name)
    }

    /// The download dir, made root's alone if it is new; one that others can write is refused.
    pub fn download_dir(&self, create: bool) -> Result<Option<PathBuf>> {
        let dir = fs::under(&self.root, &self.spec.download_dir);
        if !create && !dir.exists() {
            return Ok(None);
        }
        fs::private_dir(&self.root, &dir, 0o755)?;
        Ok(Some(dir))
    }

    /// The release phase: a verified tarball in the download dir, and its binaries staged.
    pub fn fetch_and_stage(&self, digests: &Digests) -> Result<(PathBuf, Sha256, Staged)> {
        let (tarball, digest) = self.ensure_tarball(digests)?;
        let staged = self.stage(&tarball, &digest, digests)?;
        Ok((tarball, digest, staged))
    }

    /// Makes sure a verified tarball is in the download dir and returns its path and digest.
    /// A cached tarball is re-hashed and reused if it matches; a corrupt one is replaced.
    pub fn ensure_tarball(&self, digests: &Digests) -> Result<(PathBuf, Sha256)> {
        let dir = self.download_dir(true)?.context("no download dir")?;
        fs::sweep_temps(&dir, None);
        let expected = self.source.expected_digest(&self.fetcher, &self.root)?;
        let dest = dir.join(&self.source.file_name);
        if std::fs::symlink_metadata(&dest).is_ok_and(|m| !m.is_file()) {
            log::warn!(
                "{} is not a regular file; replacing it with the download",
                dest.display()
            );
            std::fs::remove_file(&dest).with_context(|| format!("removing {}", dest.display()))?;
        }
        if let Some((have, _)) = digests.sha256(&dest)? {
            if have == expected {
                log::info!(
                    "using cached {} (sha256 {expected} verified)",
                    dest.display()
                );
                self.source.record(&self.root, &expected)?;
                return Ok((dest, expected));
            }
            log::warn!(
                "cached {} has sha256 {have}, expected {expected}; downloading it again",
                dest.display()
            );
        }
        self.download(&dest, expected, digests)?;
        Ok((dest, expected))
    }

    /// Downloads into a temp file, unpacking while the bytes arrive; renames it into the cache only
    /// when its digest matches. The staged binaries are kept only then, too.
    fn download(&self, dest: &Path, expected: Sha256, digests: &Digests) -> Result<()> {
        let dir = dest.parent().context("the cache file has no dir")?;
        log::info!("downloading {}", self.source.url);
        let (file, partial) = fs::create_temp(dest)?;
        let staging = staging::Staging::begin(dest)?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(32);
        let (opts, tmp, label) = (
            self.unpack_options(),
            staging.tmp.clone(),
            dest.to_path_buf(),
        );
        let worker = std::thread::spawn(move || {
            archive::extract(crate::util::io::ChanReader::new(rx), &label, &tmp, &opts)
        });
        let mut tx = Some(tx);
        let mut tee = |t: Tee| match t {
            // The unpacker stopped: it refused the archive (a link, a path out of the dir, too
            // large inflated, another architecture...), so the rest is not worth fetching.
            Tee::Bytes(b) => tx.as_ref().is_none_or(|s| s.send(b.to_vec()).is_ok()),
            // A restarted download would need a restarted unpacker: the cached file is unpacked
            // after the download instead.
            Tee::Restart => {
                tx = None;
                true
            }
        };
        let result = self
            .fetcher
            .download(&self.source.url, file, &partial, MAX_TARBALL, &mut tee);
        // Closing the channel is the unpacker's end of input.
        let teed_whole = tx.take().is_some();
        let unpacked = worker
            .join()
            .map_err(|_| anyhow::anyhow!("the unpacker panicked"))
            .and_then(|r| r);
        let result = self.why_stopped(result, &unpacked);
        let staged = unpacked.ok().filter(|_| teed_whole);
        let verified = match result {
            Ok((got, size)) if got == expected => Ok(size),
            Ok((got, size)) => Err(anyhow::anyhow!(
                "checksum mismatch for {}: downloaded {size} bytes with sha256 {got}, but {} says {expected}; \
                 nothing was installed (check etcd_version, etcd_download_url and etcd_download_url_checksum)",
                self.source.url,
                self.source.checksum_origin()
            )),
            Err(e) => Err(e),
        };
        let size = match verified {
            Ok(size) => size,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                staging.abandon();
                return Err(e);
            }
        };
        crate::failpoint!("download-done");
        std::fs::rename(&partial, dest)
            .with_context(|| format!("renaming {} into place", partial.display()))?;
        fs::fsync_dir(dir)?;
        self.source.record(&self.root, &expected)?;
        digests.remember(dest, expected);
        match staged {
            Some(binaries) => {
                staging.commit(&self.record(), &self.root, &expected, binaries, digests)?;
            }
            None => staging.abandon(),
        }
        log::info!(
            "downloaded {} ({size} bytes, sha256 verified)",
            dest.display()
        );
        Ok(())
    }

    /// A download the unpacker stopped fails with the unpacker's reason, which says what was wrong.
    fn why_stopped<T, U>(&self, result: Result<T>, unpacked: &Result<U>) -> Result<T> {
        match (result, unpacked) {
            (Err(e), Err(refused)) if e.chain().any(|c| c.is::<crate::util::http::Stopped>()) => {
                Err(anyhow::anyhow!(
                    "{}: {refused:#}; the download was stopped and nothing was installed",
                    self.source.url
                ))
            }
            (r, _) => r,
        }
    }

    /// Stages the binaries of the verified tarball (reusing an earlier staging of it).
    pub fn stage(&self, tarball: &Path, digest: &Sha256, digests: &Digests) -> Result<Staged> {
        staging::stage(
            tarball,
            digest,
            &self.unpack_options(),
            &self.record(),
            &self.root,
            digests,
        )
    }

    /// The cached tarball's digest if it is present and matches the digest known without the
    /// network (pinned, or recorded from a SHA256SUMS before). For `--dry-run` and `check`, which
    /// change nothing and ask no mirror.
    pub fn cached_verified(&self, digests: &Digests) -> Result<Option<(PathBuf, Sha256)>> {
        let Some(expected) = self.source.known_digest(&self.root) else {
            return Ok(None);
        };
        let Some(dir) = self.download_dir(false)? else {
            return Ok(None);
        };
        let dest = dir.join(&self.source.file_name);
        if !std::fs::symlink_metadata(&dest).is_ok_and(|m| m.is_file()) {
            return Ok(None);
        }
        match digests.sha256(&dest)? {
            Some((have, _)) if have == expected => Ok(Some((dest, expected))),
            _ => Ok(None),
        }
    }

    /// The staged binaries of the cached, verified tarball, each matching its record: what a dry
    /// run plans to install and `check` asks about flags. Nothing unverified.
    pub fn verified_staged(&self, digests: &Digests) -> Result<Option<Staged>> {
        Ok(match self.cached_verified(digests)? {
            Some((tarball, digest)) => {
                staging::already_staged(&tarball, &digest, &self.record(), digests)
            }
            None => None,
        })
    }

    /// The etcd binary a check may run to ask about flags: the one staged from the cached release
    /// if that tarball and the binary are verified, else the one installed by this tool (its
    /// digest remembered, the file unchanged since), under `bin_dir`. Nothing else is ever run.
    pub fn etcd_to_ask(
        &self,
        bin_dir: &Path,
        digests: &Digests,
    ) -> Result<Option<(PathBuf, Sha256)>> {
        if let Some(staged) = self.verified_staged(digests)? {
            return Ok(staged.etcd().map(|b| (b.path.clone(), b.sha256)));
        }
        let installed = fs::under(&self.root, bin_dir).join("etcd");
        Ok(digests.known(&installed).map(|d| (installed, d)))
    }
}
