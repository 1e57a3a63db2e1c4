//! Where a seed comes from: a path, `-` (stdin), or a `file://` / `https://` URL.

use crate::release::download::Fetcher;
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;

pub const DEFAULT_SEED: &str = "/etc/etcd-bootstrap/seed.yaml";

/// A seed is a small text: anything larger is a mistake (or an attack) and is refused before parsing.
pub const MAX_SEED_BYTES: u64 = 1024 * 1024;

/// The seed text and a name for it to use in messages.
pub struct SeedText {
    pub origin: String,
    pub text: String,
}

pub fn read(src: &str) -> Result<SeedText> {
    let (origin, bytes) = if src == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .take(MAX_SEED_BYTES + 1)
            .read_to_end(&mut buf)
            .context("reading the seed from stdin")?;
        ("<stdin>".to_string(), buf)
    } else if src.starts_with("https://")
        || src.starts_with("http://")
        || src.starts_with("file://")
    {
        if src.starts_with("http://") {
            bail!(crate::error::InvalidSeed(format!(
                "refusing to read the seed over plain http ({src}): anyone on the path could change it; use https:// or a file"
            )));
        }
        let fetcher = Fetcher::new(None).context("setting up the HTTPS client")?;
        (src.to_string(), fetcher.fetch_small(src, MAX_SEED_BYTES)?)
    } else {
        let path = Path::new(src);
        let f = std::fs::File::open(path).with_context(|| {
            format!("opening the seed {src} (give another with --seed PATH|URL|-)")
        })?;
        let mut buf = Vec::new();
        f.take(MAX_SEED_BYTES + 1)
            .read_to_end(&mut buf)
            .with_context(|| format!("reading the seed {src}"))?;
        (src.to_string(), buf)
    };
    if bytes.len() as u64 > MAX_SEED_BYTES {
        bail!(crate::error::InvalidSeed(format!(
            "seed {origin} is larger than {MAX_SEED_BYTES} bytes; a seed is a small YAML file"
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| crate::error::InvalidSeed(format!("seed {origin} is not UTF-8 text: {e}")))?;
    Ok(SeedText { origin, text })
}
