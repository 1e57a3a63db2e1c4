//! age (age-encryption.org/v1) to X25519 recipients, as a `Write` in the upload's stream: what
//! the store receives is ciphertext that `age -d -i IDENTITY` opens, and the plain snapshot is
//! never buffered beyond one 64 KiB chunk. Built on ring (already in the binary for TLS and
//! SigV4): X25519, HKDF-SHA256, ChaCha20-Poly1305 and HMAC-SHA256 are all age needs.

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{agreement, hkdf, hmac};
use std::io::{self, Write};

/// age's payload chunk: 64 KiB of plaintext, each sealed on its own.
pub(super) const CHUNK: usize = 64 << 10;
pub(super) const B64: base64::engine::GeneralPurpose =
    base64::engine::general_purpose::STANDARD_NO_PAD;

pub(super) fn derive(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; 32] {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let mut out = [0u8; 32];
    prk.expand(&[info], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut out))
        .expect("32 bytes is within HKDF-SHA256's output");
    out
}

fn seal(key: &[u8; 32], nonce: [u8; 12], data: &mut Vec<u8>) -> io::Result<()> {
    let k = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).map_err(crypto)?);
    k.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), data)
        .map_err(crypto)
}

fn crypto(_: ring::error::Unspecified) -> io::Error {
    io::Error::other("the age encryption failed (ring refused a key)")
}

/// The header that wraps a fresh file key for each recipient, MAC'd with it; and the file key.
fn header(recipients: &[[u8; 32]], rng: &SystemRandom) -> io::Result<(Vec<u8>, [u8; 16])> {
    let mut file_key = [0u8; 16];
    rng.fill(&mut file_key).map_err(crypto)?;
    let mut h = b"age-encryption.org/v1\n".to_vec();
    for r in recipients {
        let eph =
            agreement::EphemeralPrivateKey::generate(&agreement::X25519, rng).map_err(crypto)?;
        let share = eph.compute_public_key().map_err(crypto)?;
        let share = share.as_ref().to_vec();
        let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, r);
        let salt = [share.as_slice(), r.as_slice()].concat();
        // ring refuses an all-zero shared secret (a low-order recipient), as age requires.
        let wrap = agreement::agree_ephemeral(eph, &peer, |shared| {
            derive(&salt, shared, b"age-encryption.org/v1/X25519")
        })
        .map_err(crypto)?;
        let mut body = file_key.to_vec();
        seal(&wrap, [0; 12], &mut body)?;
        h.extend(format!("-> X25519 {}\n{}\n", B64.encode(&share), B64.encode(&body)).bytes());
    }
    h.extend(b"---");
    let mac_key = hmac::Key::new(hmac::HMAC_SHA256, &derive(&[], &file_key, b"header"));
    let mac = hmac::sign(&mac_key, &h);
    h.extend(format!(" {}\n", B64.encode(mac.as_ref())).bytes());
    Ok((h, file_key))
}

/// Encrypts what is written to it into `inner`; `finish` seals the last chunk.
pub struct Encryptor<W: Write> {
    inner: W,
    key: [u8; 32],
    buf: Vec<u8>,
    counter: u64,
}

impl<W: Write> Encryptor<W> {
    pub fn new(mut inner: W, recipients: &[[u8; 32]]) -> io::Result<Self> {
        let rng = SystemRandom::new();
        let (h, file_key) = header(recipients, &rng)?;
        let mut nonce = [0u8; 16];
        rng.fill(&mut nonce).map_err(crypto)?;
        inner.write_all(&h)?;
        inner.write_all(&nonce)?;
        Ok(Encryptor {
            inner,
            key: derive(&nonce, &file_key, b"payload"),
            buf: Vec::with_capacity(CHUNK + 16),
            counter: 0,
        })
    }

    fn seal_chunk(&mut self, last: bool) -> io::Result<()> {
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&self.counter.to_be_bytes());
        nonce[11] = u8::from(last);
        seal(&self.key, nonce, &mut self.buf)?;
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        self.counter += 1;
        Ok(())
    }

    /// Seals what is left as the last chunk (empty only when nothing at all was written).
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_chunk(true)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // A full chunk is sealed only once more data comes: the last chunk must carry the
        // last flag, and it may be full.
        if self.buf.len() == CHUNK && !data.is_empty() {
            self.seal_chunk(false)?;
        }
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_chunks_have_age_s_shape() {
        let r = [9u8; 32];
        let mut e = Encryptor::new(Vec::new(), &[r, r]).unwrap();
        let plain = vec![7u8; CHUNK * 2 + 5];
        e.write_all(&plain).unwrap();
        let out = e.finish().unwrap();
        let text = String::from_utf8_lossy(&out);
        let lines: Vec<&str> = text.lines().take(6).collect();
        assert_eq!(lines[0], "age-encryption.org/v1");
        assert!(lines[1].starts_with("-> X25519 ") && lines[1].len() == 10 + 43);
        assert_eq!(
            lines[2].len(),
            43,
            "a 16-byte key and its tag, unpadded base64"
        );
        assert!(lines[5].starts_with("--- ") && lines[5].len() == 4 + 43);
        let header_len = lines.iter().map(|l| l.len() + 1).sum::<usize>();
        // The nonce, then three chunks each 16 bytes longer than their plaintext.
        assert_eq!(out.len(), header_len + 16 + plain.len() + 3 * 16);
        assert!(!out.windows(64).any(|w| w.iter().all(|&b| b == 7)));
        // Exactly one full chunk: one sealed chunk, the last, not an empty one after it.
        let mut e = Encryptor::new(Vec::new(), &[r]).unwrap();
        e.write_all(&vec![1u8; CHUNK]).unwrap();
        let one = e.finish().unwrap();
        assert_eq!(one.len() - (header_len - 98) - 16, CHUNK + 16);
    }
}
