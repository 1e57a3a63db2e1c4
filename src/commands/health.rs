//! `health`: every member's /health over TLS, one line each, like `etcdctl endpoint health`.

use super::run::{Options, Run};
use crate::cli::{HealthArgs, Output};
use crate::etcd::health::{parse_endpoints, Checker};
use anyhow::{bail, Result};

pub fn run(o: &HealthArgs) -> Result<()> {
    // --wait covers the interface too: at boot the health of a member is asked before its wg0 is up.
    let started = std::time::Instant::now();
    let run = Run::new(&Options::reading(&o.common).waiting(o.wait))?;
    let eps = match &o.endpoints {
        Some(e) => parse_endpoints(e)?,
        None => run.cfg.client_urls(),
    };
    let checker = Checker::new(&run.cfg, &run.root)?;
    let statuses = checker.wait_all(&eps, o.wait.saturating_sub(started.elapsed()));
    match o.output {
        Output::Text => {
            for s in &statuses {
                println!("{}", s.line());
            }
        }
        Output::Json => println!("{}", crate::util::text::json_line(&statuses)?),
    }
    let bad = statuses.iter().filter(|s| !s.healthy).count();
    if bad > 0 {
        bail!("{bad} of {} endpoint(s) unhealthy", statuses.len());
    }
    Ok(())
}
