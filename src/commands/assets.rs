//! `generate-assets` (hidden): man pages (one per command) and bash/zsh/fish completions, from the
//! same clap definitions, for packaging.

use crate::cli::{AssetsArgs, Cli};
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::io::Write;

pub fn run(o: &AssetsArgs) -> Result<()> {
    let man = o.dir.join("man");
    let comp = o.dir.join("completions");
    std::fs::create_dir_all(&man).with_context(|| format!("creating {}", man.display()))?;
    std::fs::create_dir_all(&comp).with_context(|| format!("creating {}", comp.display()))?;
    let cmd = Cli::command();
    let mut pages = vec![("etcd-bootstrap".to_string(), cmd.clone())];
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("etcd-bootstrap-{}", sub.get_name());
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        pages.push((name, sub.clone().name(leaked)));
    }
    for (name, page) in pages {
        let mut roff = Vec::new();
        clap_mangen::Man::new(page).render(&mut roff)?;
        let path = man.join(format!("{name}.1.gz"));
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path)?,
            flate2::Compression::best(),
        );
        gz.write_all(&roff)?;
        gz.finish()?;
    }
    let mut cmd = Cli::command();
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut cmd, "etcd-bootstrap", &comp)?;
    }
    Ok(())
}
