//! `render`: print the unit apply would write.

use super::run::{Options, Run};
use crate::cli::RenderArgs;
use anyhow::Result;

pub fn run(o: &RenderArgs) -> Result<()> {
    let run = Run::new(&Options::reading(&o.common).waiting(o.wait_interface))?;
    print!("{}", crate::render::unit(&run.cfg));
    Ok(())
}
