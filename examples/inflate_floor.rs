//! The floor for a cold install: inflate a release tarball once, in memory, with the same gzip
//! backend (flate2 + zlib-rs) etcd-bootstrap uses. `make bench` times it against `fetch`.
use std::io::Read;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: inflate_floor TARBALL");
    let f = std::fs::File::open(&path).expect("open tarball");
    let mut gz = flate2::read::GzDecoder::new(std::io::BufReader::with_capacity(256 * 1024, f));
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = gz.read(&mut buf).expect("inflate");
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    println!("{total}");
}
