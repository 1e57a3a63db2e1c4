//! Getting bytes from a URL: `file://`, `https://` (and `http://` where the caller allows it),
//! streamed, with timeouts and a few bounded retries for transient failures.

use crate::fsutil::HashingWriter;
use crate::release::checksum::Sha256;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A stalled mirror fails after this long without a byte, instead of hanging first boot forever.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const ATTEMPTS: u32 = 4;

pub struct Fetcher {
    client: reqwest::blocking::Client,
}

/// A failure worth another try: the network or the server hiccuped, not a wrong URL or certificate.
#[derive(Debug)]
struct Transient(String);
impl std::fmt::Display for Transient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Transient {}

impl Fetcher {
    /// `ca_file`: an extra trusted CA bundle (a private mirror's), added to the built-in roots.
    pub fn new(ca_file: Option<&Path>) -> Result<Fetcher> {
        let mut b = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(READ_TIMEOUT)
            .user_agent(concat!("etcd-bootstrap/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = ca_file {
            let pem = std::fs::read(ca)
                .with_context(|| format!("reading etcd_download_ca_file {}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                format!(
                    "etcd_download_ca_file {} holds no usable PEM certificate",
                    ca.display()
                )
            })?;
            if certs.is_empty() {
                bail!(
                    "etcd_download_ca_file {} holds no PEM certificate",
                    ca.display()
                );
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        Ok(Fetcher {
            client: b.build().context("building the HTTPS client")?,
        })
    }

    fn open_once(&self, url: &str) -> Result<(Box<dyn Read>, Option<u64>)> {
        if let Some(path) = url.strip_prefix("file://") {
            let f = File::open(path).with_context(|| format!("opening {url}"))?;
            let len = f.metadata().ok().map(|m| m.len());
            return Ok((Box::new(f), len));
        }
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            bail!("unsupported URL {url:?}: use https:// or file://");
        }
        let resp = self.client.get(url).send().map_err(|e| {
            let detail = error_chain(&e);
            if e.is_timeout() || (e.is_connect() && !looks_like_tls(&detail)) {
                anyhow::Error::new(Transient(format!("fetching {url}: {detail}")))
            } else if looks_like_tls(&detail) {
                anyhow::anyhow!(
                    "fetching {url}: TLS failed: {detail}; if this is a private mirror, set etcd_download_ca_file to its CA"
                )
            } else {
                anyhow::anyhow!("fetching {url}: {detail}")
            }
        })?;
        let status = resp.status();
        if !status.is_success() {
            let msg = format!("fetching {url}: the server answered {status}");
            if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
                bail!(Transient(msg));
            }
            if status.as_u16() == 404 {
                bail!("{msg}; check etcd_version and etcd_download_url");
            }
            bail!(msg);
        }
        let len = resp.content_length();
        Ok((Box::new(resp), len))
    }

    /// Runs `f` on a fresh stream from `url`, again after a transient failure (bounded, with backoff).
    fn with_retries<T>(
        &self,
        url: &str,
        mut f: impl FnMut(Box<dyn Read>, Option<u64>) -> Result<T>,
    ) -> Result<T> {
        let mut delay = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            let r = self.open_once(url).and_then(|(r, len)| f(r, len));
            match r {
                Err(e) if attempt < ATTEMPTS && e.chain().any(|c| c.is::<Transient>()) => {
                    log::warn!(
                        "{e:#}; trying again in {delay:?} (attempt {}/{ATTEMPTS})",
                        attempt + 1
                    );
                    std::thread::sleep(delay);
                    delay *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// A small document (a seed, a SHA256SUMS file), refused when larger than `cap`.
    pub fn fetch_small(&self, url: &str, cap: u64) -> Result<Vec<u8>> {
        self.with_retries(url, |r, _| {
            let mut buf = Vec::new();
            r.take(cap + 1)
                .read_to_end(&mut buf)
                .map_err(|e| Transient(format!("reading {url}: {e}")))?;
            if buf.len() as u64 > cap {
                bail!("{url} is larger than {cap} bytes; is it the right file?");
            }
            Ok(buf)
        })
    }

    /// Streams `url` into `dest` (created or truncated), hashing on the way. Returns digest and size.
    /// The caller decides whether the bytes are trusted.
    pub fn download(&self, url: &str, dest: &Path) -> Result<(Sha256, u64)> {
        self.with_retries(url, |mut r, len| {
            let f = File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
            let mut w = HashingWriter::new(io::BufWriter::with_capacity(256 * 1024, f));
            let mut progress = Progress::new(len);
            let mut buf = vec![0u8; 128 * 1024];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => bail!(Transient(format!(
                        "reading {url} after {} bytes: {e}",
                        w.written
                    ))),
                };
                w.write_all(&buf[..n])
                    .with_context(|| format!("writing {}", dest.display()))?;
                progress.update(w.written);
            }
            progress.finish();
            if let Some(len) = len {
                if w.written != len {
                    bail!(Transient(format!(
                        "{url} ended after {} of {len} bytes",
                        w.written
                    )));
                }
            }
            let digest = w.digest();
            let written = w.written;
            let f = w.inner.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()
                .with_context(|| format!("syncing {}", dest.display()))?;
            Ok((digest, written))
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        let t = x.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = x.source();
    }
    s
}

fn looks_like_tls(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("certificate") || d.contains("tls") || d.contains("handshake")
}

/// A one-line progress display, only when a person watches stderr.
struct Progress {
    total: Option<u64>,
    tty: bool,
    last: Instant,
}

impl Progress {
    fn new(total: Option<u64>) -> Progress {
        Progress {
            total,
            tty: io::stderr().is_terminal(),
            last: Instant::now(),
        }
    }
    fn update(&mut self, done: u64) {
        if !self.tty || self.last.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last = Instant::now();
        let mib = done as f64 / 1048576.0;
        match self.total {
            Some(t) if t > 0 => eprint!(
                "\rdownloading: {mib:.1} / {:.1} MiB ({}%)   ",
                t as f64 / 1048576.0,
                done * 100 / t
            ),
            _ => eprint!("\rdownloading: {mib:.1} MiB   "),
        }
    }
    fn finish(&self) {
        if self.tty {
            eprint!("\r\x1b[K");
        }
    }
}
