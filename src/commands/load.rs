//! What most commands start with: the seed read and parsed, the node's facts gathered (waiting for
//! its interface), every value resolved.

use crate::facts::{self, Facts};
use crate::preflight;
use crate::release::{self, Release, Source};
use crate::seed::source::SeedArg;
use crate::seed::{Config, Seed};
use crate::state::digests::Digests;
use crate::util::error::InvalidSeed;
use crate::util::fs;
use crate::util::io::Sha256;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Loaded {
    pub seed: Seed,
    /// The seed text's sha256, recorded in the stamp.
    pub digest: String,
    pub facts: Facts,
    pub cfg: Config,
}

pub fn check_root(root: &Path) -> Result<()> {
    if !root.is_absolute() {
        bail!(InvalidSeed(format!(
            "--root {}: must be an absolute path",
            root.display()
        )));
    }
    if !root.is_dir() {
        bail!(InvalidSeed(format!(
            "--root {}: not a directory",
            root.display()
        )));
    }
    Ok(())
}

/// A seed that carries private keys must be readable by root alone.
fn warn_if_keys_readable(src: &str, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    if !text.contains("PRIVATE KEY") {
        return;
    }
    if let Ok(m) = std::fs::metadata(src) {
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            log::warn!(
                "seed {src} holds private keys but is readable by other users (mode {mode:04o}); chmod 0600 {src}"
            );
        }
    }
}

/// Reads and parses the seed, waits for the interface, resolves every value.
pub fn load(src: &SeedArg, root: &Path, wait: Duration) -> Result<Loaded> {
    check_root(root)?;
    let text = crate::seed::source::load(src)?;
    let digest = Sha256::of(text.text.as_bytes()).to_string();
    let seed = Seed::parse(&text.origin, &text.text)?;
    warn_if_keys_readable(&text.origin, &text.text);
    let facts0 = Facts::gather();
    let (iface, pinned) = seed.interface_and_override(&facts0)?;
    let (facts, address) = match pinned {
        Some(a) => (facts0, a),
        None => facts::wait_for_interface(&iface, wait, root)?,
    };
    let cfg = seed.resolve(&facts, address)?;
    Ok(Loaded {
        seed,
        digest,
        facts,
        cfg,
    })
}

/// The dirs the tool keeps what it runs and installs in (the download dir, the state dir, the
/// lock's dir), where they exist: only root may write them, or nothing is done.
pub fn own_dirs_are_private(cfg: &Config, root: &Path) -> Result<()> {
    let dirs = [
        fs::under(root, &cfg.release.download_dir),
        fs::under(root, Path::new(crate::state::DIR)),
        fs::under(root, Path::new("/run")),
        // What runs as root (etcd, and etcdctl from the backup timer) is installed here.
        fs::under(root, &cfg.bin_dir),
    ];
    for d in dirs.iter().filter(|d| d.is_dir()) {
        fs::private_dir(root, d, 0o755)?;
    }
    Ok(())
}

pub fn log_summary(l: &Loaded) {
    let c = &l.cfg;
    log::info!(
        "seed {}: this node is member {} at {} ({}), etcd {} ({}), {} member(s)",
        l.seed.origin,
        c.this_member.name,
        c.address,
        c.interface,
        c.release.version,
        c.release.architecture,
        c.members.len()
    );
}

/// The etcd binary a check may run to ask about flags: the one staged from the cached release
/// if that tarball and the binary are verified, else the one this tool installed (its digest
/// remembered, the file unchanged since). Nothing else is ever run: `None` then.
pub fn etcd_binary_for_check(
    cfg: &Config,
    root: &Path,
    digests: &mut Digests,
) -> Result<Option<PathBuf>> {
    let fetcher = release::fetcher_for(&cfg.release, root)?;
    let rel = Release {
        spec: &cfg.release,
        root,
        source: Source::from_spec(&cfg.release)?,
        fetcher: &fetcher,
    };
    if let Some(staged) = rel.verified_staged(digests)? {
        return Ok(staged
            .into_iter()
            .find(|b| b.name == "etcd")
            .map(|b| b.path));
    }
    let installed = fs::under(root, &cfg.bin_dir).join("etcd");
    Ok(digests.known(&installed).map(|_| installed))
}

pub fn preflight(
    l: &Loaded,
    root: &Path,
    etcd_binary: Option<PathBuf>,
    only: preflight::Only,
) -> preflight::Report {
    preflight::run(&preflight::Inputs {
        cfg: &l.cfg,
        facts: &l.facts,
        root,
        etcd_binary,
        only,
        seed_digest: &l.digest,
        now: std::time::SystemTime::now(),
    })
}
