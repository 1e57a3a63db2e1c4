//! The etcd release: where it comes from, its trusted digest, the verified cached tarball, and the
//! binaries staged from it.
//!
//! Nothing from a tarball is used before its sha256 matched: downloads land in `<file>.partial`
//! and are renamed into the cache only after verification.

pub mod checksum;
pub mod download;
pub mod unpack;

use crate::fsutil;
use crate::seed::ReleaseSpec as Config;
use anyhow::{bail, Context, Result};
use checksum::{ChecksumSpec, Sha256};
use download::Fetcher;
use std::path::{Path, PathBuf};

/// A SHA256SUMS file is a few KiB; more means a wrong URL.
const MAX_SUMS_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Source {
    pub url: String,
    pub file_name: String,
    pub checksum: ChecksumSpec,
}

impl Source {
    pub fn from_config(cfg: &Config) -> Result<Source> {
        let url = cfg.download_url.clone();
        let checksum = checksum::parse_spec(&cfg.download_checksum)
            .map_err(|e| crate::error::invalid(format!("etcd_download_url_checksum: {e}")))?;
        if !(url.starts_with("https://")
            || url.starts_with("http://")
            || url.starts_with("file://"))
        {
            bail!(crate::error::InvalidSeed(format!(
                "etcd_download_url: {url:?} is not an https://, http:// or file:// URL"
            )));
        }
        if url.starts_with("http://") && !matches!(checksum, ChecksumSpec::Digest(_)) {
            bail!(crate::error::InvalidSeed(format!(
                "etcd_download_url: {url} is plain http, which anyone on the path can change; pin the digest \
                 (etcd_download_url_checksum: sha256:<64 hex>) or use https://"
            )));
        }
        if let ChecksumSpec::SumsUrl(s) = &checksum {
            if s.starts_with("http://") {
                bail!(crate::error::InvalidSeed(format!(
                    "etcd_download_url_checksum: the SHA256SUMS URL {s} is plain http; use https:// or a pinned digest"
                )));
            }
        }
        let path_part = url.split(['?', '#']).next().unwrap_or(&url);
        let file_name = path_part.rsplit('/').next().unwrap_or("").to_string();
        if file_name.is_empty() || file_name == "." || file_name == ".." {
            bail!(crate::error::InvalidSeed(format!(
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
    /// an earlier verified download recorded the digest from that same file: then no network is
    /// needed (an image pre-staged with `fetch` boots air-gapped).
    pub fn expected_digest(&self, fetcher: &Fetcher, download_dir: &Path) -> Result<Sha256> {
        match &self.checksum {
            ChecksumSpec::Digest(d) => Ok(*d),
            ChecksumSpec::SumsUrl(u) => {
                if let Some(d) = self.recorded(download_dir, u) {
                    return Ok(d);
                }
                let bytes = fetcher.fetch_small(u, MAX_SUMS_BYTES)?;
                let text = String::from_utf8_lossy(&bytes);
                checksum::find_in_sums(&text, &self.file_name)
                    .with_context(|| format!("reading the checksum file {u}"))
            }
        }
    }

    fn record_path(&self, download_dir: &Path) -> PathBuf {
        download_dir.join(format!("{}.sha256", self.file_name))
    }

    fn recorded(&self, download_dir: &Path, sums_url: &str) -> Option<Sha256> {
        let text = std::fs::read_to_string(self.record_path(download_dir)).ok()?;
        let (hex, url) = text.trim().split_once("  ")?;
        (url == sums_url).then(|| hex.parse().ok()).flatten()
    }

    /// Remembers where a verified digest came from (only for SHA256SUMS sources).
    fn record(&self, download_dir: &Path, digest: &Sha256) -> Result<()> {
        if let ChecksumSpec::SumsUrl(u) = &self.checksum {
            if self.recorded(download_dir, u) != Some(*digest) {
                let text = format!("{digest}  {u}\n");
                let ids = fsutil::Ids {
                    uid: nix::unistd::getuid().as_raw(),
                    gid: nix::unistd::getgid().as_raw(),
                };
                fsutil::write_atomic(
                    &self.record_path(download_dir),
                    0o644,
                    ids,
                    &mut text.as_bytes(),
                )?;
            }
        }
        Ok(())
    }
}

pub fn fetcher_for(cfg: &Config, root: &Path) -> Result<Fetcher> {
    let ca = cfg
        .download_ca_file
        .as_ref()
        .map(|p| fsutil::under(root, p));
    Fetcher::with_retry(ca.as_deref(), cfg.retry)
}

/// Where the verified tarball is cached on this machine.
pub fn cache_path(cfg: &Config, root: &Path, src: &Source) -> PathBuf {
    fsutil::under(root, &cfg.download_dir).join(&src.file_name)
}

/// Makes sure a verified tarball is in the download dir and returns its path and digest.
/// A cached tarball is re-hashed and reused if it matches; a corrupt one is replaced.
pub fn ensure_tarball(
    cfg: &Config,
    root: &Path,
    src: &Source,
    fetcher: &Fetcher,
    digests: &mut crate::digests::Digests,
) -> Result<(PathBuf, Sha256)> {
    let dir = fsutil::under(root, &cfg.download_dir);
    fsutil::sweep_stale_temps(&dir);
    let expected = src.expected_digest(fetcher, &dir)?;
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the download dir {}", dir.display()))?;
    let dest = dir.join(&src.file_name);
    if let Some((have, _)) = digests.sha256(&dest)? {
        if have == expected {
            log::info!(
                "using cached {} (sha256 {expected} verified)",
                dest.display()
            );
            src.record(&dir, &expected)?;
            return Ok((dest, expected));
        }
        log::warn!(
            "cached {} has sha256 {have}, expected {expected}; downloading it again",
            dest.display()
        );
    }
    let partial = dir.join(format!("{}.partial", src.file_name));
    log::info!("downloading {}", src.url);
    // Unpack while downloading: the bytes go to the cache file and, through a bounded channel, to
    // an inflating thread that stages the binaries in a temp dir. Nothing of it is used unless the
    // digest matches; otherwise the temp dir goes, and the verified file is unpacked afterwards.
    let tarball_final = dest.clone();
    let tmp = unpack::begin(&tarball_final)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(32);
    let (arch, check) = (cfg.architecture.clone(), !cfg.allow_unsupported_arch);
    let (tmp2, label) = (tmp.clone(), tarball_final.clone());
    let worker = std::thread::spawn(move || {
        unpack::extract(
            ChanReader {
                rx,
                buf: Vec::new(),
                pos: 0,
            },
            &label,
            &tmp2,
            &arch,
            check,
            unpack::MAX_ENTRY_BYTES,
            unpack::MAX_TOTAL_BYTES,
        )
    });
    let mut tx = Some(tx);
    let mut tee = |t: download::Tee| match t {
        download::Tee::Bytes(b) => {
            if let Some(s) = &tx {
                if s.send(b.to_vec()).is_err() {
                    tx = None; // the unpacker stopped (it failed); the file is unpacked later
                }
            }
        }
        download::Tee::Restart => tx = None,
    };
    let result = fetcher.download(&src.url, &partial, &mut tee);
    // Closing the channel is the unpacker's end of input.
    let teed_whole = tx.take().is_some();
    let staged = worker
        .join()
        .ok()
        .and_then(|r| r.ok())
        .filter(|_| teed_whole);
    let (got, size) = match result {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if got != expected {
        let _ = std::fs::remove_file(&partial);
        let _ = std::fs::remove_dir_all(&tmp);
        bail!(
            "checksum mismatch for {}: downloaded {size} bytes with sha256 {got}, but {} says {expected}; \
             nothing was installed (check etcd_version, etcd_download_url and etcd_download_url_checksum)",
            src.url,
            match &src.checksum {
                ChecksumSpec::Digest(_) => "etcd_download_url_checksum".to_string(),
                ChecksumSpec::SumsUrl(u) => u.clone(),
            }
        );
    }
    crate::failpoint!("download-done");
    std::fs::rename(&partial, &dest)
        .with_context(|| format!("renaming {} into place", partial.display()))?;
    fsutil::fsync_dir(&dir)?;
    src.record(&dir, &got)?;
    digests.remember(&dest, got);
    match staged {
        Some(binaries) => {
            unpack::commit(&dest, &tmp, &got, binaries)?;
        }
        None => {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    log::info!(
        "downloaded {} ({size} bytes, sha256 verified)",
        dest.display()
    );
    Ok((dest, got))
}

/// The cached tarball's digest if it is present and matches, without touching the network for
/// pinned digests. For `--dry-run`, which must change nothing.
pub fn cached_verified(
    cfg: &Config,
    root: &Path,
    src: &Source,
    fetcher: &Fetcher,
    digests: &mut crate::digests::Digests,
) -> Result<Option<(PathBuf, Sha256)>> {
    let dest = cache_path(cfg, root, src);
    if !dest.exists() {
        return Ok(None);
    }
    let expected = src.expected_digest(fetcher, dest.parent().unwrap_or(Path::new("/")))?;
    match digests.sha256(&dest)? {
        Some((have, _)) if have == expected => Ok(Some((dest, expected))),
        _ => Ok(None),
    }
}

/// The receiving end of the download tee, as a `Read`.
struct ChanReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl std::io::Read for ChanReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
