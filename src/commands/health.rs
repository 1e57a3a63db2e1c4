//! `health`: every member's /health over TLS, one line each, like `etcdctl endpoint health`.

use super::load::load;
use crate::cli::{HealthArgs, Output};
use crate::etcd::health::{parse_endpoints, Checker};
use anyhow::{bail, Result};

pub fn run(o: &HealthArgs) -> Result<()> {
    let root = &o.common.root;
    // --wait covers the interface too: at boot the health of a member is asked before its wg0 is up.
    let started = std::time::Instant::now();
    let l = load(&o.common.seed_arg(), root, o.wait)?;
    let eps = match &o.endpoints {
        Some(e) => parse_endpoints(e)?,
        None => l.cfg.client_urls(),
    };
    let checker = Checker::new(&l.cfg, root)?;
    let statuses = checker.wait_all(&eps, o.wait.saturating_sub(started.elapsed()));
    match o.output {
        Output::Text => {
            for s in &statuses {
                println!("{}", s.line());
            }
        }
        Output::Json => println!("{}", serde_json::to_string(&statuses)?),
    }
    let bad = statuses.iter().filter(|s| !s.healthy).count();
    if bad > 0 {
        bail!("{bad} of {} endpoint(s) unhealthy", statuses.len());
    }
    Ok(())
}
