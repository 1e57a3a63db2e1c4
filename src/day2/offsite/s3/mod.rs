//! The S3 requests an offsite backup makes, path-style, signed (`sigv4`) and sent over the tool's
//! own reqwest/rustls client: no second HTTP or crypto stack in the static binary. Every request
//! has the upload's deadline: transient failures (5xx, throttling, resets, timeouts) are tried
//! again with backoff until it; anything else (credentials, a missing bucket, TLS) fails at once,
//! naming the store and its own error code.

mod ops;
mod xml;

pub use xml::tag;

use super::credentials::Credentials;
use super::sigv4::{self, uri_encode, Key, EMPTY_SHA256};
use crate::seed::OffsiteSpec;
use crate::util::error::{Error, Kind};
use crate::util::io::Sha256;
use crate::util::retry::Backoff;
use anyhow::{Context as _, Result};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// No single request waits longer than this for its answer, even with time left before the
/// deadline: a store that trickles is cut and tried again.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Answers the tool reads (errors, listings of 1000 keys) are far smaller.
const ANSWER_CAP: u64 = 4 << 20;

pub struct Store {
    endpoint: String,
    host: String,
    bucket: String,
    region: String,
    creds: Credentials,
    client: reqwest::blocking::Client,
    deadline: Instant,
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The store no longer knows the multipart upload (it lost or expired it): its parts cannot be
/// sent again, the whole upload can.
#[derive(Debug)]
pub struct LostUpload(String);
impl std::fmt::Display for LostUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for LostUpload {}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
}

impl Store {
    /// The store `spec` names, its credentials and CA read under `root`; requests end by
    /// `deadline`.
    pub fn open(spec: &OffsiteSpec, root: &Path, deadline: Instant) -> Result<Store> {
        let under = |p: &Path| crate::util::fs::under(root, p);
        let creds = super::credentials::read(&under(&spec.credentials), &spec.profile)?;
        let mut b = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("etcd-bootstrap/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &spec.ca_file {
            let ca = under(ca);
            let pem = std::fs::read(&ca).with_context(|| {
                format!(
                    "reading the store's CA {} (etcd_backup.offsite.ca_file)",
                    ca.display()
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    Error::input(format!(
                        "{} (etcd_backup.offsite.ca_file) holds no PEM certificate",
                        ca.display()
                    ))
                })?;
            // The store's CA alone: a private store's certificate is trusted because the seed
            // names its CA, and nothing else is.
            b = b.tls_built_in_root_certs(false);
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let host = spec
            .endpoint
            .trim_start_matches("https://")
            .trim_end_matches(":443")
            .to_string();
        Ok(Store {
            endpoint: spec.endpoint.clone(),
            host,
            bucket: spec.bucket.clone(),
            region: spec.region.clone(),
            creds,
            client: b.build().context("building the store's HTTPS client")?,
            deadline,
        })
    }

    /// Whether the time left allows another try of `wait` from now.
    pub fn time_for(&self, wait: Duration) -> bool {
        Instant::now() + wait < self.deadline
    }

    /// `https://host/bucket`, for messages.
    pub fn name(&self) -> String {
        format!("{}/{}", self.endpoint, self.bucket)
    }

    fn path(&self, key: &str) -> String {
        if key.is_empty() {
            format!("/{}", self.bucket)
        } else {
            format!("/{}/{}", self.bucket, uri_encode(key, true))
        }
    }

    /// One signed request, no retry.
    fn send_once(
        &self,
        method: &str,
        key: &str,
        query: &[(String, String)],
        extra: &[(String, String)],
        body: &bytes::Bytes,
    ) -> Result<Answer> {
        let resp = self.request(method, key, query, extra, body, REQUEST_TIMEOUT)?;
        self.answer(method, resp)
    }

    /// The answer read whole (capped: errors and listings are small).
    fn answer(&self, method: &str, resp: reqwest::blocking::Response) -> Result<Answer> {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        resp.take(ANSWER_CAP).read_to_end(&mut body).map_err(|e| {
            Error::transient(format!("{method} {}: reading the answer: {e}", self.name()))
        })?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// One signed request, answered but its body not read yet; no longer than `cap`, nor past
    /// the deadline.
    fn request(
        &self,
        method: &str,
        key: &str,
        query: &[(String, String)],
        extra: &[(String, String)],
        body: &bytes::Bytes,
        cap: Duration,
    ) -> Result<reqwest::blocking::Response> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::other(format!(
                "{method} {}: the deadline (etcd_backup.offsite.timeout) passed",
                self.name()
            ))
            .into());
        }
        let (url, headers) = self.signed(method, key, query, extra, body);
        let m = reqwest::Method::from_bytes(method.as_bytes()).context("an HTTP method")?;
        let mut req = self
            .client
            .request(m, &url)
            .timeout(left.min(cap))
            .body(body.clone());
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let what = format!("{method} {}", self.name());
        req.send().map_err(|e| self.net_error(&what, e))
    }

    /// The URL and headers (signature included) of one request.
    fn signed(
        &self,
        method: &str,
        key: &str,
        query: &[(String, String)],
        extra: &[(String, String)],
        body: &bytes::Bytes,
    ) -> (String, Vec<(String, String)>) {
        let amz_date = crate::util::time::utc_stamp(crate::util::time::unix_now());
        let checksummed = extra.iter().any(|(k, _)| k == "x-amz-checksum-sha256");
        let payload = if body.is_empty() {
            EMPTY_SHA256.to_string()
        } else if checksummed {
            // The body's SHA-256 is in a signed header the store checks: hashing it a second
            // time for the signature would cost a pass over every part for nothing.
            "UNSIGNED-PAYLOAD".to_string()
        } else {
            Sha256::of(body).to_string()
        };
        let mut headers = vec![
            ("host".to_string(), self.host.clone()),
            ("x-amz-date".to_string(), amz_date.clone()),
            ("x-amz-content-sha256".to_string(), payload.clone()),
        ];
        if let Some(t) = &self.creds.session_token {
            headers.push(("x-amz-security-token".into(), t.clone()));
        }
        headers.extend(extra.iter().cloned());
        let path = self.path(key);
        let auth = sigv4::authorization(
            &Key {
                access_key: &self.creds.access_key,
                secret: &self.creds.secret,
                region: &self.region,
            },
            &sigv4::Request {
                method,
                path: &path,
                query,
                headers: &headers,
                payload_sha256: &payload,
                amz_date: &amz_date,
            },
        );
        let mut q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", uri_encode(k, false), uri_encode(v, false)))
            .collect();
        q.sort();
        let url = if q.is_empty() {
            format!("{}{path}", self.endpoint)
        } else {
            format!("{}{path}?{}", self.endpoint, q.join("&"))
        };
        headers.push(("authorization".to_string(), auth));
        (url, headers)
    }

    fn net_error(&self, what: &str, e: reqwest::Error) -> anyhow::Error {
        let detail = crate::util::error::chain_text(&e);
        if crate::util::http::looks_like_tls(&detail) {
            return Error::other(format!(
                "{what}: TLS failed: {detail} (is etcd_backup.offsite.ca_file the store's CA?)"
            ))
            .into();
        }
        Error::transient(format!("{what}: {detail}")).into()
    }

    /// `send_once` until it is answered with success or with an error worth no retry, or the
    /// deadline passes; a non-2xx answer is an error naming the store's code and message.
    pub fn call(
        &self,
        method: &str,
        key: &str,
        query: &[(String, String)],
        extra: &[(String, String)],
        body: &bytes::Bytes,
    ) -> Result<Answer> {
        self.call_allowing(method, key, query, extra, body, &[])
    }

    /// `call`, with `allowed` statuses answered as they are (a HEAD's 404).
    fn call_allowing(
        &self,
        method: &str,
        key: &str,
        query: &[(String, String)],
        extra: &[(String, String)],
        body: &bytes::Bytes,
        allowed: &[u16],
    ) -> Result<Answer> {
        self.retrying(|| {
            let a = self.send_once(method, key, query, extra, body)?;
            if allowed.contains(&a.status) {
                Ok(a)
            } else {
                self.judge(method, key, a)
            }
        })
    }

    /// `once` until it succeeds or fails in a way worth no retry, or the deadline passes.
    fn retrying<T>(&self, mut once: impl FnMut() -> Result<T>) -> Result<T> {
        let backoff = Backoff {
            first: Duration::from_millis(500),
            max: Duration::from_secs(20),
            jitter: true,
        };
        let mut tries = 0;
        loop {
            let e = match once() {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let wait = backoff.delay(tries);
            if crate::util::error::kind(&e) != Kind::Transient
                || Instant::now() + wait >= self.deadline
            {
                return Err(e);
            }
            log::warn!(
                "{e:#}; trying again in {}",
                crate::util::time::format_duration(wait)
            );
            std::thread::sleep(wait);
            tries += 1;
        }
    }

    /// A 2xx answer as it is; anything else as an error with the store's words.
    fn judge(&self, method: &str, key: &str, a: Answer) -> Result<Answer> {
        if (200..300).contains(&a.status) {
            return Ok(a);
        }
        let text = String::from_utf8_lossy(&a.body);
        // The store's words reach a terminal and the journal: printable, and short.
        let code = crate::util::text::excerpt(&tag(&text, "Code").unwrap_or_default(), 64);
        let message = tag(&text, "Message").unwrap_or_default();
        let code = if code.is_empty() {
            match a.status {
                404 => "NotFound".to_string(),
                412 => "PreconditionFailed".to_string(),
                403 => "Forbidden".to_string(),
                s => format!("HTTP {s}"),
            }
        } else {
            code
        };
        let on = if key.is_empty() {
            self.name()
        } else {
            format!("{}/{key}", self.name())
        };
        let msg = format!(
            "{method} {on}: the store answered {} {code}{}",
            a.status,
            if message.is_empty() {
                String::new()
            } else {
                format!(": {}", crate::util::text::excerpt(&message, 200))
            }
        );
        if code == "NoSuchUpload" {
            return Err(anyhow::Error::new(LostUpload(msg)));
        }
        let transient = a.status >= 500
            || a.status == 429
            || a.status == 408
            || matches!(
                code.as_str(),
                "SlowDown" | "RequestTimeout" | "InternalError"
            );
        Err(if transient {
            Error::transient(msg)
        } else {
            Error::other(msg)
        }
        .into())
    }
}
