//! `fetch`: download, verify and stage the release only (image builds). Needs no interface.

use super::load::check_root;
use crate::cli::FetchArgs;
use crate::facts::Facts;
use crate::host::lock;
use crate::release::{self, Release, Source};
use crate::seed::Seed;
use crate::state::digests::Digests;
use anyhow::Result;
use std::time::Duration;

pub fn run(o: &FetchArgs) -> Result<()> {
    let root = &o.common.root;
    check_root(root)?;
    let _lock = lock::acquire(root, Duration::from_secs(600))?;
    let seed = Seed::load(&o.common.seed_arg())?;
    let spec = seed.release(&Facts::gather())?;
    let fetcher = release::fetcher_for(&spec, root)?;
    let rel = Release {
        spec: &spec,
        root,
        source: Source::from_spec(&spec)?,
        fetcher: &fetcher,
    };
    let mut digests = Digests::load(root);
    let (tarball, digest) = rel.ensure_tarball(&mut digests)?;
    let staged = rel.stage(&tarball, &digest, &mut digests)?;
    digests.save()?;
    println!("{}  {}", digest, tarball.display());
    for b in &staged.binaries {
        println!("{}  {}", b.sha256, b.path.display());
    }
    Ok(())
}
