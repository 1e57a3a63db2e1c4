//! `status`: this node's install and its cluster on one screen; exit 1 unless every line is ok.

use super::load::load;
use crate::cli::{Output, StatusArgs};
use crate::day2::status;
use anyhow::{bail, Result};
use std::time::Duration;

pub fn run(o: &StatusArgs) -> Result<()> {
    let root = &o.common.root;
    let l = load(&o.common.seed_arg(), root, Duration::ZERO)?;
    let s = status::gather(&l.cfg, root);
    match o.output {
        Output::Text => print!("{}", s.checks.text()),
        Output::Json => println!("{}", serde_json::to_string(&s)?),
    }
    if !s.well() {
        let (e, w) = (s.checks.errors().len(), s.checks.warnings().len());
        bail!(
            "{e} error(s), {w} warning(s): not all is well on {}",
            l.cfg.this_member.name
        );
    }
    Ok(())
}
