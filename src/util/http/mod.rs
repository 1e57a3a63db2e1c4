//! Getting bytes from a URL: `file://`, `https://` (and `http://` where the caller allows it),
//! streamed, with timeouts and a few bounded retries for transient failures.

use crate::util::error::{Error, Kind};
use crate::util::io::{HashingWriter, Sha256};
use crate::util::retry::{Backoff, Next, Policy};
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::Path;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How hard to try: attempts in all, and the time after which no new attempt starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub max_time: Duration,
    /// A stalled mirror fails after this long without a byte, instead of hanging first boot forever.
    pub read_timeout: Duration,
    /// The first wait between attempts (doubling, with jitter, up to 30 s).
    pub first_wait: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            attempts: 5,
            max_time: Duration::from_secs(600),
            read_timeout: Duration::from_secs(60),
            first_wait: Duration::from_millis(500),
        }
    }
}

impl Retry {
    fn policy(&self) -> Policy {
        Policy {
            backoff: Backoff {
                first: self.first_wait,
                max: Duration::from_secs(30),
                jitter: true,
            },
            attempts: Some(self.attempts),
            within: self.max_time,
            last_try_at_deadline: false,
        }
    }
}

/// What a download passes on as it goes, so the bytes can be unpacked while they arrive. The
/// receiver answers whether to go on: `false` stops the download at once (what it got so far
/// was refused, so the rest is not worth fetching).
pub enum Tee<'a> {
    Bytes(&'a [u8]),
    /// The bytes passed on so far are void: the download starts over.
    Restart,
}

/// The download was stopped because the receiver of its bytes refused them.
#[derive(Debug)]
pub struct Stopped;
impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the download was stopped: what arrived so far was refused")
    }
}
impl std::error::Error for Stopped {}

pub struct Fetcher {
    /// Built on first use: most warm runs never touch the network, and building the client starts
    /// a runtime thread.
    client: std::sync::OnceLock<reqwest::blocking::Client>,
    roots: Vec<reqwest::Certificate>,
    retry: Retry,
    hints: Hints,
}

/// What to tell the operator, in the caller's words: which setting names the extra CA bundle,
/// and what to check when a URL is not found. This module knows no settings of its own.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// How the caller's input names the CA bundle (e.g. the seed key that gives it).
    pub ca_file: &'static str,
    /// What to check on a 404.
    pub not_found: &'static str,
}

/// A failure worth another try: the network or the server hiccuped, not a wrong URL or certificate.
fn is_transient(e: &anyhow::Error) -> bool {
    crate::util::error::kind(e) == Kind::Transient
}

/// A body stream and what the server said about it.
struct Opened {
    body: Box<dyn Read>,
    /// Bytes this response will carry, when known.
    len: Option<u64>,
    /// True when the server honoured a Range request (206), so the body continues at the offset.
    resumed: bool,
}

impl Fetcher {
    /// `ca_file`: an extra trusted CA bundle (a private mirror's), added to the built-in roots.
    /// Proxies come from the standard environment variables (`https_proxy`, `no_proxy`, ...).
    pub fn new(ca_file: Option<&Path>) -> Result<Fetcher> {
        Fetcher::with_retry(ca_file, Retry::default(), Hints::default())
    }

    pub fn with_retry(ca_file: Option<&Path>, retry: Retry, hints: Hints) -> Result<Fetcher> {
        let mut roots = Vec::new();
        let named = if hints.ca_file.is_empty() {
            "the CA bundle"
        } else {
            hints.ca_file
        };
        if let Some(ca) = ca_file {
            let pem =
                std::fs::read(ca).with_context(|| format!("reading {named} {}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                format!("{named} {} holds no usable PEM certificate", ca.display())
            })?;
            if certs.is_empty() {
                bail!("{named} {} holds no PEM certificate", ca.display());
            }
            roots = certs;
        }
        Ok(Fetcher {
            client: std::sync::OnceLock::new(),
            roots,
            retry,
            hints,
        })
    }

    fn client(&self) -> Result<&reqwest::blocking::Client> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let mut b = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .redirect(no_downgrade())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(self.retry.read_timeout)
            .user_agent(concat!("etcd-bootstrap/", env!("CARGO_PKG_VERSION")));
        for c in &self.roots {
            b = b.add_root_certificate(c.clone());
        }
        let c = b.build().context("building the HTTPS client")?;
        Ok(self.client.get_or_init(|| c))
    }

    fn open_file(url: &str, path: &str, offset: u64) -> Result<Opened> {
        let mut f = File::open(path).with_context(|| format!("opening {url}"))?;
        let len = f.metadata().ok().map(|m| m.len());
        if offset > 0 {
            f.seek(io::SeekFrom::Start(offset))?;
        }
        Ok(Opened {
            body: Box::new(f),
            len: len.map(|l| l.saturating_sub(offset)),
            resumed: offset > 0,
        })
    }

    fn send_error(&self, url: &str, e: reqwest::Error) -> anyhow::Error {
        let detail = crate::util::error::chain_text(&e);
        if e.is_redirect() {
            return anyhow::anyhow!("fetching {url}: {detail}");
        }
        if e.is_connect() && e.is_timeout() {
            // Said in the tool's own words: which layer of the HTTP stack cut the connect (its
            // own timer or reqwest's) varies with load, and so does its wording.
            return anyhow::Error::new(Error::transient(format!(
                "fetching {url}: no connection within {} ({detail})",
                crate::util::time::format_duration(CONNECT_TIMEOUT)
            )));
        }
        if looks_like_tls(&detail) {
            let hint = match self.hints.ca_file {
                "" => String::new(),
                name => format!("; if this is a private mirror, set {name} to its CA"),
            };
            anyhow::anyhow!("fetching {url}: TLS failed: {detail}{hint}")
        } else if e.is_timeout() || e.is_connect() || e.is_request() || e.is_body() {
            anyhow::Error::new(Error::transient(format!("fetching {url}: {detail}")))
        } else {
            anyhow::anyhow!("fetching {url}: {detail}")
        }
    }

    fn open_once(&self, url: &str, offset: u64) -> Result<Opened> {
        if let Some(path) = url.strip_prefix("file://") {
            return Fetcher::open_file(url, path, offset);
        }
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            bail!("unsupported URL {url:?}: use https:// or file://");
        }
        let mut req = self.client()?.get(url);
        if offset > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={offset}-"));
        }
        let resp = req.send().map_err(|e| self.send_error(url, e))?;
        let status = resp.status();
        if status.as_u16() == 416 && offset > 0 {
            // The partial file is no prefix the server knows: start over.
            return self.open_once(url, 0);
        }
        if !status.is_success() {
            let msg = format!("fetching {url}: the server answered {status}");
            if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
                bail!(Error::transient(msg));
            }
            if status.as_u16() == 404 {
                match self.hints.not_found {
                    "" => bail!(msg),
                    hint => bail!("{msg}; {hint}"),
                }
            }
            bail!(msg);
        }
        let resumed = offset > 0
            && status.as_u16() == 206
            && resp
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with(&format!("bytes {offset}-")));
        let len = resp.content_length();
        Ok(Opened {
            body: Box::new(resp),
            len,
            resumed,
        })
    }

    /// Runs `f` until it succeeds, again after a transient failure, within the retry limits.
    fn with_retries<T>(&self, url: &str, mut f: impl FnMut() -> Result<T>) -> Result<T> {
        let outcome = self.retry.policy().run(
            |_| match f() {
                Ok(t) => Ok(Next::Done(t)),
                Err(e) if is_transient(&e) => Ok(Next::Again(e)),
                Err(e) => Err(e),
            },
            |e, wait, attempt| {
                log::warn!(
                    "{e:#}; trying again in {wait:.1?} (attempt {}/{})",
                    attempt + 1,
                    self.retry.attempts
                )
            },
        )?;
        outcome.map_err(|g| {
            g.last.context(format!(
                "giving up on {url} after {} attempt(s) in {:.0?}",
                g.attempts, g.elapsed
            ))
        })
    }

    /// A small document (a seed, a SHA256SUMS file), refused when larger than `cap`.
    pub fn fetch_small(&self, url: &str, cap: u64) -> Result<Vec<u8>> {
        self.with_retries(url, || {
            let o = self.open_once(url, 0)?;
            let mut buf = Vec::new();
            o.body
                .take(cap + 1)
                .read_to_end(&mut buf)
                .map_err(|e| Error::transient(format!("reading {url}: {e}")))?;
            if buf.len() as u64 > cap {
                bail!("{url} is larger than {cap} bytes; is it the right file?");
            }
            if let Some(len) = o.len {
                if (buf.len() as u64) < len {
                    bail!(Error::transient(format!(
                        "{url} ended after {} of {len} bytes",
                        buf.len()
                    )));
                }
            }
            Ok(buf)
        })
    }

    /// Streams `url` into the open file `dest` (named `shown` in messages), hashing on the way;
    /// after a broken transfer it resumes with `Range` where the server allows it, else starts
    /// over. Refused as soon as it is known to be larger than `cap` bytes. Returns digest and
    /// size. The caller decides whether the bytes are trusted.
    pub fn download(
        &self,
        url: &str,
        dest: File,
        shown: &Path,
        cap: u64,
        tee: &mut dyn FnMut(Tee) -> bool,
    ) -> Result<(Sha256, u64)> {
        let mut w = HashingWriter::new(io::BufWriter::with_capacity(256 * 1024, dest));
        let mut total: Option<u64> = None;
        let progress = Progress::new();
        self.with_retries(url, || {
            let o = self.open_once(url, w.written)?;
            if w.written > 0 && !o.resumed {
                // The server ignored Range: throw the partial bytes away and take the whole body.
                log::info!("{url}: the server cannot resume; downloading from the start");
                if !tee(Tee::Restart) {
                    bail!(Stopped);
                }
                w.flush()?;
                let f = w.inner.get_mut();
                f.set_len(0)?;
                f.seek(io::SeekFrom::Start(0))?;
                w.reset();
            } else if w.written > 0 {
                log::info!("{url}: resuming at byte {}", w.written);
            }
            if let Some(l) = o.len {
                total = Some(w.written + l);
                progress.set_total(w.written + l);
                if w.written + l > cap {
                    bail!(too_large(url, cap));
                }
            }
            copy_body(url, o.body, &mut w, shown, cap, tee, &progress)?;
            if let Some(t) = total {
                if w.written < t {
                    bail!(Error::transient(format!(
                        "{url} ended after {} of {t} bytes",
                        w.written
                    )));
                }
            }
            Ok(())
        })?;
        progress.finish();
        let digest = w.digest();
        let written = w.written;
        let f = w.inner.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()
            .with_context(|| format!("syncing {}", shown.display()))?;
        Ok((digest, written))
    }
}

/// Follows up to 10 redirects, but never from https to http: a digest or seed that came over TLS
/// must not come over plain HTTP because a server said so.
fn no_downgrade() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let to = attempt.url().clone();
        let from = attempt.previous().last().cloned();
        match from {
            Some(f) if f.scheme() == "https" && to.scheme() != "https" => attempt.error(format!(
                "refusing the redirect from {f} to {to}: it leaves https"
            )),
            _ if attempt.previous().len() >= 10 => attempt.error("more than 10 redirects"),
            _ => attempt.follow(),
        }
    })
}

pub fn looks_like_tls(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("certificate") || d.contains("tls") || d.contains("handshake")
}

mod body;
use body::{copy_body, too_large, Progress};

#[cfg(test)]
mod mock_tests;
