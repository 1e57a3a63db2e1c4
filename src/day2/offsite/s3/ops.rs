//! The requests themselves: objects (HEAD, conditional PUT, GET, DELETE), listings and the
//! multipart upload's steps.

use super::xml::{blocks, escape, tag};
use super::{Listed, Store};
use crate::util::error::Error;
use crate::util::io::Sha256;
use anyhow::{Context as _, Result};
use base64::Engine as _;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

impl Store {
    /// HEAD of `key`: its size and the checksum the store keeps; `None` when it does not exist.
    pub fn head(&self, key: &str) -> Result<Option<(u64, Option<String>, String)>> {
        let mode = [("x-amz-checksum-mode".to_string(), "ENABLED".to_string())];
        let a = self.call_allowing("HEAD", key, &[], &mode, &bytes::Bytes::new(), &[404])?;
        if a.status == 404 {
            return Ok(None);
        }
        let size = a
            .header("content-length")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let sum = a.header("x-amz-checksum-sha256").map(str::to_string);
        let etag = a.header("etag").unwrap_or("").trim_matches('"').to_string();
        Ok(Some((size, sum, etag)))
    }

    /// A small object, written only when no object has that name yet.
    pub fn put_new(&self, key: &str, body: Vec<u8>) -> Result<()> {
        let sum = base64::engine::general_purpose::STANDARD.encode(Sha256::of(&body).0);
        let h = [
            ("if-none-match".to_string(), "*".to_string()),
            ("x-amz-checksum-sha256".to_string(), sum),
        ];
        self.call("PUT", key, &[], &h, &body.into()).map(|_| ())
    }

    pub fn get(&self, key: &str) -> Result<Vec<u8>> {
        Ok(self.call("GET", key, &[], &[], &bytes::Bytes::new())?.body)
    }

    /// `key` downloaded into `to` (made new, root's alone; started over on a transient failure):
    /// the bytes written. Bounded by the deadline alone: a large object may take long.
    pub fn download(&self, key: &str, to: &std::path::Path) -> Result<u64> {
        self.retrying(|| {
            let resp = self.request("GET", key, &[], &[], &bytes::Bytes::new(), Duration::MAX)?;
            if !resp.status().is_success() {
                let a = self.answer("GET", resp)?;
                return self.judge("GET", key, a).map(|_| 0);
            }
            let _ = std::fs::remove_file(to);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
                .open(to)
                .with_context(|| format!("creating {}", to.display()))?;
            let mut resp = resp;
            let n = std::io::copy(&mut resp, &mut f).map_err(|e| {
                Error::transient(format!(
                    "GET {}/{key}: reading the object: {e}",
                    self.name()
                ))
            })?;
            f.sync_all()
                .with_context(|| format!("syncing {}", to.display()))?;
            Ok(n)
        })
    }

    pub fn delete(&self, key: &str) -> Result<()> {
        self.call("DELETE", key, &[], &[], &bytes::Bytes::new())
            .map(|_| ())
    }

    /// Every object under `prefix`, in key order (ListObjectsV2, page by page).
    pub fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![
                ("list-type".to_string(), "2".to_string()),
                ("prefix".to_string(), prefix.to_string()),
            ];
            if let Some(t) = &token {
                q.push(("continuation-token".to_string(), t.clone()));
            }
            let a = self.call("GET", "", &q, &[], &bytes::Bytes::new())?;
            let text = String::from_utf8_lossy(&a.body).into_owned();
            for c in blocks(&text, "Contents") {
                let key = tag(c, "Key").unwrap_or_default();
                let size = tag(c, "Size").and_then(|s| s.parse().ok()).unwrap_or(0);
                out.push(Listed { key, size });
            }
            match (
                tag(&text, "IsTruncated").as_deref(),
                tag(&text, "NextContinuationToken"),
            ) {
                (Some("true"), Some(t)) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Starts a multipart upload whose parts each carry a SHA-256 checksum; its upload id.
    pub fn create_multipart(&self, key: &str) -> Result<String> {
        let q = [("uploads".to_string(), String::new())];
        let h = [("x-amz-checksum-algorithm".to_string(), "SHA256".to_string())];
        let a = self.call("POST", key, &q, &h, &bytes::Bytes::new())?;
        tag(&String::from_utf8_lossy(&a.body), "UploadId")
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                Error::other(format!(
                    "POST {}/{key}?uploads: the store's answer has no UploadId",
                    self.name()
                ))
                .into()
            })
    }

    /// Uploads part `n`; its ETag. The part's SHA-256 is signed with it and checked by the store.
    pub fn upload_part(
        &self,
        key: &str,
        id: &str,
        n: u32,
        part: &bytes::Bytes,
        sum: &str,
    ) -> Result<String> {
        let q = [
            ("partNumber".to_string(), n.to_string()),
            ("uploadId".to_string(), id.to_string()),
        ];
        let h = [("x-amz-checksum-sha256".to_string(), sum.to_string())];
        let a = self.call("PUT", key, &q, &h, part)?;
        Ok(a.header("etag").unwrap_or("").to_string())
    }

    /// Completes the upload, only if no object has `key` yet (`If-None-Match: *`): two uploaders
    /// never overwrite each other.
    pub fn complete(&self, key: &str, id: &str, parts: &[(u32, String, String)]) -> Result<()> {
        let q = [("uploadId".to_string(), id.to_string())];
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (n, etag, sum) in parts {
            xml.push_str(&format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag><ChecksumSHA256>{sum}</ChecksumSHA256></Part>",
                escape(etag)
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let h = [("if-none-match".to_string(), "*".to_string())];
        let a = self.call("POST", key, &q, &h, &xml.into_bytes().into())?;
        // S3 may answer 200 with an error in the body when completing takes long.
        let text = String::from_utf8_lossy(&a.body);
        if text.contains("<Error>") {
            return Err(Error::transient(format!(
                "completing {}/{key}: the store answered {}",
                self.name(),
                crate::util::text::excerpt(&tag(&text, "Code").unwrap_or_default(), 64)
            ))
            .into());
        }
        Ok(())
    }

    /// Abandons the upload: its parts are freed, no object is made. Best effort.
    pub fn abort(&self, key: &str, id: &str) {
        let q = [("uploadId".to_string(), id.to_string())];
        if let Err(e) = self.call("DELETE", key, &q, &[], &bytes::Bytes::new()) {
            log::warn!("abandoning the unfinished upload of {key}: {e:#}");
        }
    }
}
