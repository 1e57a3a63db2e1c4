//! `check`: every preflight line (and what the day-2 steps would do); exit 1 when any is an error.

use super::load::{etcd_binary_for_check, load, preflight};
use crate::cli::{CheckArgs, Output};
use crate::day2::{self, upgrade, Context};
use crate::host::systemd::Systemd;
use crate::preflight::Only;
use crate::release;
use anyhow::{bail, Result};

pub fn run(o: &CheckArgs) -> Result<()> {
    let root = &o.common.root;
    let l = load(&o.common.seed_arg(), root, o.wait_interface)?;
    super::load::own_dirs_are_private(&l.cfg, root)?;
    let mut digests = crate::state::digests::Digests::load(root);
    let bin = etcd_binary_for_check(&l.cfg, root, &mut digests)?;
    let mut report = preflight(&l, root, bin, Only::All);
    match upgrade::path(&l.cfg, root)? {
        Some(Ok(line)) => report.ok("upgrade", line),
        Some(Err(refused)) => report.error("upgrade", refused),
        None => {}
    }
    let fetcher = release::fetcher_for(&l.cfg.release, root)?;
    let services = Systemd::new(root);
    let cx = Context {
        root,
        dry_run: true,
        live_start: false,
        fetcher: &fetcher,
        services: &services,
    };
    // Asks a running member what apply would do; changes nothing.
    for step in day2::steps(&l.cfg).iter_mut() {
        step.check(&cx, &l.cfg, &mut report);
    }
    match o.output {
        Output::Text => {
            println!(
                "ok       seed     {} (sha256 {}): member {} at {} ({}), etcd {}",
                l.seed.origin,
                l.digest,
                l.cfg.this_member.name,
                l.cfg.address,
                l.cfg.interface,
                l.cfg.release.version
            );
            print!("{}", report.text());
        }
        Output::Json => println!("{}", serde_json::to_string(&report)?),
    }
    let errors = report.errors().len();
    if errors > 0 {
        bail!("{errors} check(s) failed; this node would not join as configured");
    }
    Ok(())
}
