//! gzip that spends no CPU on what does not shrink. A snapshot of Secrets, certificates or
//! already-compressed values barely shrinks at gzip's fast level, which still costs more CPU than
//! the whole upload (BENCHMARKS.md: 3/4 of it). So the snapshot goes through deflate 1 MiB at a
//! time: a block that shrank by less than `KEEP_BELOW` switches the stream to stored blocks
//! (a copy and a CRC), and every `PROBE_EVERY` blocks one is compressed again to see whether the
//! data changed. One gzip member, readable by every gzip reader (`gunzip`, Go's, Python's).

use flate2::{Compress, Compression, Crc, FlushCompress};
use std::io::{self, Read, Write};

/// Input compressed (or stored) at a time.
const BLOCK: usize = 1 << 20;
/// A block whose deflate output is over this share of its input (per mille) is not worth it.
const KEEP_BELOW: u64 = 970;
/// While storing, one block in this many is compressed to look again.
const PROBE_EVERY: u32 = 16;

/// The 10-byte gzip header: deflate, no name, no time (the meta says when), unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Writes `src` as one gzip member to `out`; the bytes read.
///
/// Every compressed block ends with a sync flush, so the deflate stream is at a byte boundary
/// with no final block yet: stored blocks written by hand continue it, and a new compressor's
/// blocks continue them (deflate is a sequence of blocks; only the last says it is the last).
/// A block that did not shrink enough is written stored instead of as deflate made it: the
/// reader's window holds the same bytes either way, so what follows stays right.
pub fn compress(mut src: impl Read, out: &mut impl Write) -> io::Result<u64> {
    out.write_all(&HEADER)?;
    let mut z = Compress::new(Compression::fast(), false);
    let mut crc = Crc::new();
    let mut block = vec![0u8; BLOCK];
    // Deflate's worst case is far under a quarter more than its input.
    let mut buf = Vec::with_capacity(BLOCK + BLOCK / 4);
    // Blocks stored since the last one compressed; `None` while compressing.
    let mut storing: Option<u32> = None;
    let mut total = 0u64;
    loop {
        let n = read_full(&mut src, &mut block)?;
        let data = &block[..n];
        crc.update(data);
        total += n as u64;
        match storing {
            Some(k) => {
                store(data, out)?;
                storing = (k + 1 < PROBE_EVERY).then_some(k + 1);
                if storing.is_none() {
                    // The next block is a probe. The compressor did not see the stored ones:
                    // a fresh one, with no history to refer back to.
                    z = Compress::new(Compression::fast(), false);
                }
            }
            None => {
                deflate(&mut z, data, &mut buf)?;
                if buf.len() as u64 * 1000 > KEEP_BELOW * n as u64 {
                    store(data, out)?;
                    storing = Some(0);
                } else {
                    out.write_all(&buf)?;
                }
            }
        }
        if n < BLOCK {
            break;
        }
    }
    // The final block: empty, stored, flagged last.
    out.write_all(&[1, 0, 0, 0xff, 0xff])?;
    out.write_all(&crc.sum().to_le_bytes())?;
    out.write_all(&crc.amount().to_le_bytes())?;
    Ok(total)
}

/// `data` as stored deflate blocks (not last), each at most 65 535 bytes: a byte of block
/// header (the stream is at a byte boundary), its length and the length's complement, the bytes.
fn store(data: &[u8], out: &mut impl Write) -> io::Result<()> {
    for chunk in data.chunks(0xffff) {
        let len = chunk.len() as u16;
        let mut head = [0u8; 5];
        head[1..3].copy_from_slice(&len.to_le_bytes());
        head[3..5].copy_from_slice(&(!len).to_le_bytes());
        out.write_all(&head)?;
        out.write_all(chunk)?;
    }
    Ok(())
}

/// All of `input` through deflate, sync-flushed, its output in `buf` (replaced).
fn deflate(z: &mut Compress, mut input: &[u8], buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(BLOCK / 4);
        }
        let before = z.total_in();
        z.compress_vec(input, buf, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        input = &input[(z.total_in() - before) as usize..];
        // The flush is complete when the output had room to spare after all input went in.
        if input.is_empty() && buf.len() < buf.capacity() {
            return Ok(());
        }
    }
}

/// Reads until `buf` is full or the source ends; the bytes read.
fn read_full(src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    }

    fn text(n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        let mut i = 0u64;
        while v.len() < n {
            v.extend_from_slice(
                format!("{{\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"cm-{i}\"}}}}\n")
                    .as_bytes(),
            );
            i += 1;
        }
        v.truncate(n);
        v
    }

    fn roundtrip(data: &[u8]) -> usize {
        let mut gz = Vec::new();
        assert_eq!(compress(data, &mut gz).unwrap(), data.len() as u64);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back.len(), data.len());
        assert!(back == data, "the data came back changed");
        // One member: a single-member reader reads all of it too.
        let mut one = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut one)
            .unwrap();
        assert_eq!(one.len(), data.len());
        gz.len()
    }

    #[test]
    fn what_shrinks_is_compressed_what_does_not_is_stored_and_all_comes_back() {
        let t = text(5 * BLOCK + 12345);
        assert!(roundtrip(&t) < t.len() / 5);
        let r = noise(40 * BLOCK + 7, 42);
        let stored = roundtrip(&r);
        // Stored blocks cost 5 bytes per 64 KiB; the probes cost about as little.
        assert!(
            stored < r.len() + r.len() / 1000,
            "{stored} for {}",
            r.len()
        );
        // Noise, then text: a probe finds the text within PROBE_EVERY blocks, the rest of it is
        // compressed (text alone shrinks to under a fifth).
        let mut mixed = noise(20 * BLOCK, 7);
        mixed.extend(text(60 * BLOCK));
        mixed.extend(noise(3 * BLOCK, 9));
        let m = roundtrip(&mixed);
        let most = (20 + 3 + PROBE_EVERY as usize) * (BLOCK + BLOCK / 1000) + 60 * BLOCK / 5;
        assert!(m < most, "{m} >= {most}");
        for n in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1] {
            roundtrip(&noise(n, 3));
            roundtrip(&text(n));
        }
    }
}
