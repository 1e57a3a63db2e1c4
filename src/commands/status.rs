//! `status`: this node's install and its cluster on one screen; exit 1 unless every line is ok.

use super::run::{Options, Run};
use crate::cli::{Output, StatusArgs};
use crate::status;
use anyhow::{bail, Result};

pub fn run(o: &StatusArgs) -> Result<()> {
    let run = Run::new(&Options::reading(&o.common))?;
    let s = status::gather(&run.looking());
    match o.output {
        Output::Text => print!("{}", s.checks.text()),
        Output::Json => println!("{}", crate::util::text::json_line(&s)?),
    }
    if !s.well() {
        let (e, w) = (s.checks.errors().len(), s.checks.warnings().len());
        bail!(
            "{e} error(s), {w} warning(s): not all is well on {}",
            run.cfg.this_member.name
        );
    }
    Ok(())
}
