//! `check`: every preflight line (and what the day-2 steps would do); exit 1 when any is an error.

use super::run::{Options, Run};
use crate::cli::{CheckArgs, Output};
use crate::cluster::node::Mode;
use crate::cluster::upgrade::{self, Verdict};
use crate::day2;
use crate::preflight::Only;
use crate::util::error::Error;
use anyhow::Result;

pub fn run(o: &CheckArgs) -> Result<()> {
    let run = Run::new(&Options::reading(&o.common).waiting(o.wait_interface))?;
    let node = run.node(Mode {
        dry_run: true,
        live_start: false,
    });
    let bin = run.release.etcd_to_ask(&run.cfg.bin_dir, &run.digests)?;
    let mut report = run.preflight(&run.cfg, bin, Only::All, false);
    match upgrade::path(&node)? {
        Some(Verdict::Allowed(line) | Verdict::Downgrade { line, .. }) => {
            report.ok("upgrade", line)
        }
        Some(Verdict::Refused(why)) => report.error("upgrade", why),
        None => {}
    }
    // Asks a running member what apply would do; changes nothing.
    for step in day2::steps(&run.cfg).iter_mut() {
        step.check(&node, &mut report);
    }
    if let Some(spec) = run.cfg.backup.as_ref().and_then(|b| b.offsite.as_ref()) {
        let now = crate::util::time::unix_now();
        match crate::day2::offsite::probe::probe(&node, spec, now) {
            Ok(line) => report.ok("offsite", line),
            Err(e) => report.error("offsite", format!("{e:#}")),
        }
    }
    let c = &run.cfg;
    match o.output {
        Output::Text => {
            println!(
                "ok       seed     {} (sha256 {}): member {} at {} ({}), etcd {}",
                run.seed.origin,
                run.seed.digest(),
                c.this_member.name,
                c.address,
                c.interface,
                c.release.version
            );
            print!("{}", report.text());
        }
        Output::Json => println!("{}", crate::util::text::json_line(&report)?),
    }
    let errors = report.errors();
    if !errors.is_empty() {
        let kind = if errors.iter().all(|e| e.input) {
            crate::util::error::Kind::Input
        } else {
            crate::util::error::Kind::Other
        };
        return Err(Error::new(
            kind,
            format!(
                "{} check(s) failed; this node would not join as configured",
                errors.len()
            ),
        )
        .into());
    }
    Ok(())
}
