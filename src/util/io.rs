//! Small `Read`/`Write` adapters the download, unpack and install pipelines are made of, and the
//! sha256 digest type they produce.

use anyhow::{Context, Result};
use sha2::Digest;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::str::FromStr;

/// A sha256 digest; shown and parsed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    pub fn of(bytes: &[u8]) -> Sha256 {
        Sha256(sha2::Sha256::digest(bytes).into())
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

impl FromStr for Sha256 {
    type Err = crate::util::error::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let not = || {
            crate::util::error::Error::input(format!(
                "{} is not a sha256 digest (64 hex digits)",
                crate::util::text::excerpt(s, 80)
            ))
        };
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not());
        }
        let mut out = [0u8; 32];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).map_err(|_| not())?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| not())?;
        }
        Ok(Sha256(out))
    }
}

/// A `Write` that hashes what passes through it: download and install hash while they write,
/// so no byte is read twice.
pub struct HashingWriter<W> {
    pub inner: W,
    pub hasher: sha2::Sha256,
    pub written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: sha2::Sha256::new(),
            written: 0,
        }
    }
    pub fn digest(&self) -> Sha256 {
        Sha256(self.hasher.clone().finalize().into())
    }
    /// Forgets what was hashed so far (a download that starts over).
    pub fn reset(&mut self) {
        self.hasher = sha2::Sha256::new();
        self.written = 0;
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts the bytes read through it and fails past `cap`: a gzip bomb stops here.
pub struct Capped<R> {
    inner: R,
    total: u64,
    cap: u64,
}

impl<R> Capped<R> {
    pub fn new(inner: R, cap: u64) -> Self {
        Capped {
            inner,
            total: 0,
            cap,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        if self.total > self.cap {
            return Err(io::Error::other(format!(
                "the archive inflates to more than {} MiB; refusing it (a gzip bomb?)",
                self.cap / 1048576
            )));
        }
        Ok(n)
    }
}

/// The receiving end of a bounded channel of byte chunks, as a `Read`: how a download hands its
/// bytes to the unpacker while they arrive. The sender hanging up is the end of input.
pub struct ChanReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl ChanReader {
    pub fn new(rx: std::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        ChanReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChanReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
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

/// sha256 and size of what `r` yields.
pub fn sha256_reader(r: &mut dyn Read) -> io::Result<(Sha256, u64)> {
    let mut w = HashingWriter::new(io::sink());
    io::copy(r, &mut w)?;
    Ok((w.digest(), w.written))
}

/// sha256 and size of a file, or `None` when it does not exist.
pub fn sha256_file(path: &Path) -> Result<Option<(Sha256, u64)>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let d = sha256_reader(&mut f).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "3c3b3b2f1d7e0e1a0e4c95ab2d8b0a6f2c0b2fd1f1b4c0d5e6f708192a3b4c5d";

    #[test]
    fn digest_roundtrips() {
        let d: Sha256 = HEX.parse().unwrap();
        assert_eq!(d.to_string(), HEX);
        assert!(HEX[1..].parse::<Sha256>().is_err());
        assert_eq!(
            Sha256::of(b"").to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn capped_stops_past_the_cap() {
        let mut r = Capped::new(&[0u8; 100][..], 50);
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert!(e.to_string().contains("gzip bomb"), "{e}");
    }

    #[test]
    fn chan_reader_reads_chunks_until_the_sender_hangs_up() {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        tx.send(b"ab".to_vec()).unwrap();
        tx.send(b"cde".to_vec()).unwrap();
        drop(tx);
        let mut s = String::new();
        ChanReader::new(rx).read_to_string(&mut s).unwrap();
        assert_eq!(s, "abcde");
    }
}
