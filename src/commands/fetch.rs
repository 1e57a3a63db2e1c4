//! `fetch`: download, verify and stage the release only (image builds). Needs no interface.

use super::run::{phase, Base, Options};
use crate::cli::FetchArgs;
use anyhow::Result;
use std::time::Duration;

pub fn run(o: &FetchArgs) -> Result<()> {
    let base = Base::new(&Options::reading(&o.common).locked(Duration::from_secs(600)))?;
    let (tarball, digest, staged) =
        phase("release", || base.release.fetch_and_stage(&base.digests))?;
    base.digests.save()?;
    println!("{}  {}", digest, tarball.display());
    for b in &staged.binaries {
        println!("{}  {}", b.sha256, b.path.display());
    }
    Ok(())
}
