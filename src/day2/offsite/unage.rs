//! Opening what `age` sealed to an X25519 recipient: the identity file (`AGE-SECRET-KEY-1…`,
//! root's alone), the header (a stanza this identity unwraps, its MAC checked before anything is
//! trusted), then the payload as a `Read`, one 64 KiB chunk at a time, each authenticated before a
//! byte of it is given out, the last one marked so that a cut-off file is an error, never a
//! shorter snapshot. ring has no static X25519 key agreement; x25519-dalek does that one step.

use super::age::{derive, B64, CHUNK};
use crate::util::error::Error;
use anyhow::Result;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use ring::hmac;
use std::io::{self, BufRead, Read};
use std::path::Path;

/// An X25519 identity. `Debug` never shows the key.
pub struct Identity(x25519_dalek::StaticSecret);

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity(secret hidden)")
    }
}

impl Identity {
    /// The identity in the file at `path` (under the root already): a regular file, not a link,
    /// root's and readable by no one else, holding one `AGE-SECRET-KEY-1…` line (comments allowed).
    pub fn read(path: &Path, what: &str) -> Result<Identity> {
        let named = format!("the age identity {} ({what})", path.display());
        let text = crate::util::fs::read_secret(path, &named)?;
        Identity::parse(&text).map_err(|why| Error::input(format!("{named}: {why}")).into())
    }

    /// The first identity line of an identity file; Err says what is wrong, never the key.
    pub fn parse(text: &str) -> Result<Identity, &'static str> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or("it holds no identity")?;
        let (hrp, key) = crate::util::bech32::decode(&line.to_ascii_lowercase())
            .map_err(|_| "its identity is not an AGE-SECRET-KEY-1… line")?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| "its identity is not 32 bytes long")?;
        if hrp != "age-secret-key-" {
            return Err("its identity is not an AGE-SECRET-KEY-1… line");
        }
        Ok(Identity(x25519_dalek::StaticSecret::from(key)))
    }

    /// The recipient (public key) of this identity.
    pub fn recipient(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.0).to_bytes()
    }

    /// The file key of an `X25519` stanza, if it was made for this identity.
    fn unwrap(&self, share: &[u8; 32], body: &[u8]) -> Option<[u8; 16]> {
        let shared = self
            .0
            .diffie_hellman(&x25519_dalek::PublicKey::from(*share));
        if !shared.was_contributory() {
            return None;
        }
        let salt = [share.as_slice(), self.recipient().as_slice()].concat();
        let wrap = derive(&salt, shared.as_bytes(), b"age-encryption.org/v1/X25519");
        let mut data = body.to_vec();
        let plain = open(&wrap, [0; 12], &mut data).ok()?;
        plain.try_into().ok()
    }
}

fn open<'a>(key: &[u8; 32], nonce: [u8; 12], data: &'a mut [u8]) -> io::Result<&'a mut [u8]> {
    let k = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).map_err(bad)?);
    k.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::empty(), data)
        .map_err(bad)
}

fn bad(_: ring::error::Unspecified) -> io::Error {
    invalid("a chunk does not authenticate: the object was changed or cut off")
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("age: {why}"))
}

/// The plaintext of an age file, read chunk by chunk.
pub struct Decryptor<R: BufRead> {
    inner: R,
    key: [u8; 32],
    counter: u64,
    /// Ciphertext read ahead: a chunk is the last one only when nothing follows it.
    ahead: Vec<u8>,
    plain: Vec<u8>,
    at: usize,
    done: bool,
}

/// A header line is short; a header of many stanzas is still far under this.
const HEADER_MAX: u64 = 64 << 10;

impl<R: BufRead> Decryptor<R> {
    /// Reads the header and finds this identity's stanza; an error when there is none, or the
    /// header's MAC does not hold (a changed header is never trusted).
    pub fn new(mut inner: R, id: &Identity) -> io::Result<Self> {
        let mut header = Vec::new();
        let mut file_key: Option<[u8; 16]> = None;
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            (&mut inner).take(HEADER_MAX).read_until(b'\n', &mut line)?;
            if line.is_empty() || header.len() as u64 > HEADER_MAX {
                return Err(invalid("the header does not end"));
            }
            if line.starts_with(b"---") {
                let mac = B64
                    .decode(line[3..].trim_ascii())
                    .map_err(|_| invalid("the header's MAC is not base64"))?;
                header.extend_from_slice(b"---");
                let key = file_key.ok_or_else(|| invalid("no stanza is for this identity"))?;
                let mac_key = hmac::Key::new(hmac::HMAC_SHA256, &derive(&[], &key, b"header"));
                hmac::verify(&mac_key, &header, &mac)
                    .map_err(|_| invalid("the header's MAC does not hold"))?;
                let mut nonce = [0u8; 16];
                inner.read_exact(&mut nonce)?;
                return Ok(Decryptor {
                    inner,
                    key: derive(&nonce, &key, b"payload"),
                    counter: 0,
                    ahead: Vec::with_capacity(CHUNK + 17),
                    plain: Vec::new(),
                    at: 0,
                    done: false,
                });
            }
            header.extend_from_slice(&line);
            lines.push(String::from_utf8_lossy(&line).trim_end().to_string());
            if lines.len() == 1 && lines[0] != "age-encryption.org/v1" {
                return Err(invalid("not an age-encryption.org/v1 file"));
            }
            // A stanza's body follows its `->` line; X25519's is one line of 43 characters.
            if lines.len() >= 3 && file_key.is_none() {
                let (arg, body) = (&lines[lines.len() - 2], &lines[lines.len() - 1]);
                if let Some(share) = arg.strip_prefix("-> X25519 ") {
                    let share: Option<[u8; 32]> =
                        B64.decode(share).ok().and_then(|s| s.try_into().ok());
                    let body = B64.decode(body).ok();
                    if let (Some(share), Some(body)) = (share, body) {
                        file_key = id.unwrap(&share, &body);
                    }
                }
            }
        }
    }

    /// The next chunk into `plain`; false at the end.
    fn next_chunk(&mut self) -> io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        while self.ahead.len() < CHUNK + 17 {
            let got = self.inner.fill_buf()?;
            if got.is_empty() {
                break;
            }
            let n = got.len().min(CHUNK + 17 - self.ahead.len());
            self.ahead.extend_from_slice(&got[..n]);
            self.inner.consume(n);
        }
        let last = self.ahead.len() <= CHUNK + 16;
        let take = self.ahead.len().min(CHUNK + 16);
        if take < 16 || (last && take == 16 && self.counter > 0) {
            return Err(invalid("the payload is cut off"));
        }
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&self.counter.to_be_bytes());
        nonce[11] = u8::from(last);
        let mut chunk: Vec<u8> = self.ahead.drain(..take).collect();
        let n = open(&self.key, nonce, &mut chunk)?.len();
        chunk.truncate(n);
        self.plain = chunk;
        self.at = 0;
        self.counter += 1;
        self.done = last;
        Ok(true)
    }
}

impl<R: BufRead> Read for Decryptor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.plain.len() {
            if !self.next_chunk()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.plain.len() - self.at);
        buf[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::age::Encryptor;
    use super::*;
    use std::io::Write;

    fn id(seed: u8) -> Identity {
        Identity(x25519_dalek::StaticSecret::from([seed; 32]))
    }

    fn sealed(plain: &[u8], to: &[[u8; 32]]) -> Vec<u8> {
        let mut e = Encryptor::new(Vec::new(), to).unwrap();
        e.write_all(plain).unwrap();
        e.finish().unwrap()
    }

    fn opened(data: &[u8], id: &Identity) -> io::Result<Vec<u8>> {
        let mut d = Decryptor::new(io::BufReader::new(data), id)?;
        let mut out = Vec::new();
        d.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn opens_what_was_sealed_for_it_and_nothing_changed_or_cut() {
        let (me, other) = (id(1), id(2));
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let data = sealed(&plain, &[other.recipient(), me.recipient()]);
            assert_eq!(opened(&data, &me).unwrap(), plain, "{len}");
            assert_eq!(opened(&data, &other).unwrap(), plain, "{len}");
        }
        let plain = vec![5u8; 2 * CHUNK + 3];
        let data = sealed(&plain, &[me.recipient()]);
        assert!(opened(&data, &id(3)).is_err(), "another identity");
        // Cut at a chunk boundary: the chunk before is not marked last.
        let header_and_nonce = data.len() - (plain.len() + 3 * 16);
        let cut = &data[..header_and_nonce + CHUNK + 16];
        assert!(opened(cut, &me).is_err());
        let mut flipped = data.clone();
        let n = flipped.len();
        flipped[n - 20] ^= 1;
        assert!(opened(&flipped, &me).is_err());
        let mut header = data.clone();
        header[30] ^= 1;
        assert!(opened(&header, &me).is_err());
    }

    /// What the age CLI sealed (Debian's `age`, installed by `make deps`), opened here with the
    /// identity file age-keygen wrote.
    #[test]
    fn opens_what_the_age_cli_sealed() {
        use std::process::Command;
        let d = tempfile::tempdir().unwrap();
        let (key, plain, sealed) = (d.path().join("k"), d.path().join("p"), d.path().join("s"));
        let run = |c: &mut Command| {
            let out = c
                .output()
                .expect("age and age-keygen (make deps installs them)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        run(Command::new("age-keygen").arg("-o").arg(&key));
        let recipient = run(Command::new("age-keygen").arg("-y").arg(&key));
        let data: Vec<u8> = (0..3 * CHUNK + 100).map(|i| (i % 253) as u8).collect();
        std::fs::write(&plain, &data).unwrap();
        run(Command::new("age")
            .args(["-r", recipient.trim(), "-o"])
            .arg(&sealed)
            .arg(&plain));
        let id = Identity::read(&key, "test").unwrap();
        assert_eq!(opened(&std::fs::read(&sealed).unwrap(), &id).unwrap(), data);
    }

    #[test]
    fn reads_identity_files_as_age_keygen_writes_them() {
        // age-keygen's own output (a key made for this test only).
        let file = "# created: 2026-12-04T14:25:50Z\n\
                    # public key: age15awgjyetx6k6qpw2gs2u0wwwuxc4cejsykc4mglw4883vkj0ya0qs3a4kp\n\
                    AGE-SECRET-KEY-1XX650C8XEG9XGZLZF4VS4EASDXGD9MEYSJ4X4ZZ6R80DH0DVZHXQZUQ0AN\n";
        let parsed = Identity::parse(file).unwrap();
        let (_, public) = crate::util::bech32::decode(
            "age15awgjyetx6k6qpw2gs2u0wwwuxc4cejsykc4mglw4883vkj0ya0qs3a4kp",
        )
        .unwrap();
        assert_eq!(parsed.recipient().to_vec(), public);
        assert!(Identity::parse("# nothing\n").is_err());
        assert!(
            Identity::parse("age15awgjyetx6k6qpw2gs2u0wwwuxc4cejsykc4mglw4883vkj0ya0qs3a4kp")
                .is_err(),
            "a recipient is no identity"
        );
        assert_eq!(format!("{parsed:?}"), "Identity(secret hidden)");
    }
}
