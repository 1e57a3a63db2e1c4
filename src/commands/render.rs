//! `render`: print the unit apply would write.

use super::run::{Options, Run};
use crate::cli::RenderArgs;
use anyhow::Result;

pub fn run(o: &RenderArgs) -> Result<()> {
    let run = Run::new(&Options {
        seed: o.common.seed_arg(),
        root: &o.common.root,
        wait_interface: o.wait_interface,
        lock: None,
    })?;
    print!("{}", crate::render::unit(&run.cfg));
    Ok(())
}
