//! `render`: print the unit apply would write.

use super::load::load;
use crate::cli::RenderArgs;
use anyhow::Result;

pub fn run(o: &RenderArgs) -> Result<()> {
    let l = load(&o.common.seed_arg(), &o.common.root, o.wait_interface)?;
    print!("{}", crate::render::unit(&l.cfg));
    Ok(())
}
