//! The upload of one snapshot: a multipart upload streamed from the file, tried again from its
//! first part when the store lost it, and checked by HEAD before it counts.

use super::s3::{self, Store};
use crate::util::error::Error;
use crate::util::io::Sha256;
use anyhow::{Context as _, Result};
use base64::Engine as _;
use std::io;
use std::path::Path;
use std::sync::mpsc::SyncSender;
use std::time::Duration;

/// Parts of this size stream through memory one or two at a time (S3 wants at least 5 MiB but
/// for the last, and at most 10 000 of them: 78 GiB, far above etcd's largest database).
const PART: usize = 8 << 20;

pub struct Stored {
    pub size: u64,
    pub parts: u32,
}

/// `upload_once`, started over from the first part when the store lost the upload or a part
/// failed in a way worth another try, while the deadline allows.
pub fn upload(store: &Store, key: &str, file: &Path, recipients: &[[u8; 32]]) -> Result<Stored> {
    let backoff = crate::util::retry::Backoff {
        first: Duration::from_secs(1),
        max: Duration::from_secs(30),
        jitter: true,
    };
    let mut tries = 0;
    loop {
        let e = match upload_once(store, key, file, recipients) {
            Ok(s) => return Ok(s),
            Err(e) => e,
        };
        let again = e.downcast_ref::<s3::LostUpload>().is_some()
            || crate::util::error::kind(&e) == crate::util::error::Kind::Transient;
        let wait = backoff.delay(tries);
        if !again || !store.time_for(wait) {
            return Err(e);
        }
        log::warn!(
            "{e:#}; uploading {key} again from its first part in {}",
            crate::util::time::format_duration(wait)
        );
        std::thread::sleep(wait);
        tries += 1;
    }
}

/// Parts uploaded at once: a store answers each part only once it has written it, so one at a
/// time leaves the link idle between parts (BENCHMARKS.md: two at once beat `aws s3 cp`).
const SENDERS: usize = 2;

/// Streams `file` gzipped (and encrypted when there are `recipients`) into `key`: a reader
/// thread compresses into the next part while `SENDERS` threads upload the ones before, handed
/// over one to one (a rendezvous channel): at most `SENDERS` + 1 parts are in memory. The object
/// counts only once HEAD gives back its size and checksum; on any failure the upload is
/// abandoned (no object).
fn upload_once(store: &Store, key: &str, file: &Path, recipients: &[[u8; 32]]) -> Result<Stored> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let id = store.create_multipart(key)?;
    let result = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(0);
        s.spawn(move || {
            if let Err(e) = produce(f, recipients, &tx) {
                let _ = tx.send(Err(e));
            }
        });
        // Shared by count: once the senders are done and this returns, the receiver is gone,
        // and a reader still waiting to hand over a part stops.
        let shared = std::sync::Arc::new(Shared {
            rx: std::sync::Mutex::new(rx),
            parts: std::sync::Mutex::new((Vec::new(), 0)),
            failed: std::sync::atomic::AtomicBool::new(false),
        });
        let id = &id;
        let senders: Vec<_> = (0..SENDERS)
            .map(|_| {
                let shared = shared.clone();
                s.spawn(move || send_parts(store, key, id, &shared))
            })
            .collect();
        // Every sender's outcome is awaited; the first error is the one.
        let outcomes: Vec<Result<()>> = senders
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a part sender panicked")))
            })
            .collect();
        outcomes.into_iter().collect::<Result<()>>()?;
        let shared = std::sync::Arc::into_inner(shared).context("the part senders are done")?;
        // In part order already: each was numbered and pushed as it was taken.
        let (parts, size) = shared.parts.into_inner().unwrap_or_else(|e| e.into_inner());
        if parts.is_empty() {
            return Err(Error::other("the snapshot compressed to nothing").into());
        }
        Ok((parts, size))
    });
    let checked = result.and_then(|(parts, size)| {
        store.complete(key, &id, &parts)?;
        verify(store, key, &parts, size)?;
        Ok(Stored {
            size,
            parts: parts.len() as u32,
        })
    });
    if checked.is_err() {
        store.abort(key, &id);
    }
    checked
}

/// file → gzip → (age) → parts on `tx`.
fn produce(
    f: std::fs::File,
    recipients: &[[u8; 32]],
    tx: &SyncSender<io::Result<Vec<u8>>>,
) -> io::Result<()> {
    let mut sink = PartSink {
        tx,
        buf: Vec::with_capacity(PART),
    };
    if recipients.is_empty() {
        super::gzip::compress(f, &mut sink)?;
    } else {
        let mut enc = super::age::Encryptor::new(&mut sink, recipients)?;
        super::gzip::compress(f, &mut enc)?;
        enc.finish()?;
    }
    sink.send()
}

/// Cuts what is written to it into parts of `PART` bytes, each sent whole.
struct PartSink<'a> {
    tx: &'a SyncSender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl PartSink<'_> {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let part = std::mem::replace(&mut self.buf, Vec::with_capacity(PART));
        // The receiver is gone when the upload failed: stop reading the snapshot.
        self.tx
            .send(Ok(part))
            .map_err(|_| io::Error::other("the upload stopped"))
    }
}

impl io::Write for PartSink<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() == PART {
            self.send()?;
        }
        let n = data.len().min(PART - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

type Parts = Vec<(u32, String, String)>;

/// What the part senders share: the parts to send (numbered in the order they are taken), the
/// parts sent and the bytes in them, and whether one of them failed (the others then stop).
struct Shared {
    rx: std::sync::Mutex<std::sync::mpsc::Receiver<io::Result<Vec<u8>>>>,
    parts: std::sync::Mutex<(Parts, u64)>,
    failed: std::sync::atomic::AtomicBool,
}

/// One sender: takes the next part (its number with it, so the numbers follow the stream's
/// order), uploads it, until the stream ends or a sender failed.
fn send_parts(store: &Store, key: &str, id: &str, shared: &Shared) -> Result<()> {
    use std::sync::atomic::Ordering;
    loop {
        if shared.failed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let (n, chunk) = {
            let rx = shared.rx.lock().unwrap_or_else(|e| e.into_inner());
            let Ok(chunk) = rx.recv() else {
                return Ok(());
            };
            if shared.failed.load(Ordering::SeqCst) {
                return Ok(());
            }
            let mut parts = shared.parts.lock().unwrap_or_else(|e| e.into_inner());
            parts.1 += chunk.as_ref().map(|c| c.len() as u64).unwrap_or(0);
            // Numbered while the stream is held: taken in order, numbered in order.
            let n = parts.0.len() as u32 + 1;
            parts.0.push((n, String::new(), String::new()));
            (n, chunk)
        };
        let sent = chunk
            .context("reading and compressing the snapshot")
            .and_then(|chunk| {
                let sum = base64::engine::general_purpose::STANDARD.encode(Sha256::of(&chunk).0);
                let etag = store.upload_part(key, id, n, &bytes::Bytes::from(chunk), &sum)?;
                Ok((etag, sum))
            });
        match sent {
            Ok((etag, sum)) => {
                let mut parts = shared.parts.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(p) = parts.0.iter_mut().find(|p| p.0 == n) {
                    p.1 = etag;
                    p.2 = sum;
                }
            }
            Err(e) => {
                shared.failed.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
    }
}

/// HEAD: the size must be what was sent, and a checksum the store gives must be the parts'.
fn verify(store: &Store, key: &str, parts: &Parts, size: u64) -> Result<()> {
    let at = format!("{}/{key}", store.name());
    let (got, sum, etag) = store
        .head(key)?
        .ok_or_else(|| Error::other(format!("{at}: not there after its upload completed")))?;
    if got != size {
        return Err(Error::other(format!(
            "{at}: the store holds {got} bytes, {size} were sent"
        ))
        .into());
    }
    if let Some(sum) = sum {
        let want = composite(parts);
        let bare = |s: &str| s.split('-').next().unwrap_or("").to_string();
        if bare(&sum) != bare(&want) && bare(&sum) != parts[0].2 {
            return Err(Error::other(format!(
                "{at}: the store's checksum {sum} is not the parts' {want}"
            ))
            .into());
        }
    }
    if let Some((_, n)) = etag.rsplit_once('-') {
        if n.parse::<usize>().ok() != Some(parts.len()) {
            return Err(Error::other(format!(
                "{at}: the store holds {n} parts, {} were sent",
                parts.len()
            ))
            .into());
        }
    }
    Ok(())
}

/// S3's checksum of a multipart object: the SHA-256 of its parts' SHA-256s, and their count.
fn composite(parts: &Parts) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut all = Vec::with_capacity(parts.len() * 32);
    for (_, _, s) in parts {
        all.extend(b64.decode(s).unwrap_or_default());
    }
    format!("{}-{}", b64.encode(Sha256::of(&all).0), parts.len())
}
