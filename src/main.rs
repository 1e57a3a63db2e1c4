use clap::Parser;
use etcd_bootstrap::{apply, cli, error, logging};

fn main() {
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) => {
            // --help and --version are not errors; everything else clap rejects is usage (exit 2).
            let code = if e.use_stderr() {
                error::EXIT_INVALID
            } else {
                error::EXIT_OK
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    logging::init(args.verbose);
    let result = match args.command {
        cli::Command::Apply {
            common,
            no_start,
            dry_run,
            wait_interface,
            lock_wait,
        } => apply::apply(&apply::Options {
            seed: common.seed_arg(),
            root: common.root,
            no_start,
            dry_run,
            wait_interface,
            lock_wait,
        }),
        cli::Command::GenerateAssets { dir } => generate_assets(&dir),
        cli::Command::Fetch { common } => apply::fetch(&common.seed_arg(), &common.root),
        cli::Command::Render {
            common,
            wait_interface,
        } => apply::render(&common.seed_arg(), &common.root, wait_interface),
        cli::Command::Health {
            common,
            endpoints,
            wait,
            output,
        } => apply::health(
            &common.seed_arg(),
            &common.root,
            endpoints.as_deref(),
            wait,
            output,
        ),
        cli::Command::Check {
            common,
            wait_interface,
            output,
        } => apply::check(&common.seed_arg(), &common.root, wait_interface, output),
        cli::Command::Backup {
            dir,
            keep,
            conf_dir,
            bin_dir,
            root,
        } => etcd_bootstrap::snapshot::backup(&etcd_bootstrap::snapshot::BackupOptions {
            root,
            dir,
            keep,
            conf_dir,
            bin_dir,
        })
        .map(|t| {
            log::info!(
                "snapshot at revision {} ({} keys) verified: {}",
                t.status.revision,
                t.status.total_keys,
                t.path.display()
            );
            for p in &t.pruned {
                log::info!("removed the old snapshot {}", p.display());
            }
            println!("{}  {}", t.sha256, t.path.display());
        }),
    };
    if let Err(e) = result {
        log::error!("{e:#}");
        std::process::exit(error::exit_code(&e));
    }
}

/// Man pages (one per command) and bash/zsh/fish completions, from the same clap definitions.
fn generate_assets(dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    use clap::CommandFactory;
    use std::io::Write;
    let man = dir.join("man");
    let comp = dir.join("completions");
    std::fs::create_dir_all(&man).with_context(|| format!("creating {}", man.display()))?;
    std::fs::create_dir_all(&comp).with_context(|| format!("creating {}", comp.display()))?;
    let cmd = cli::Cli::command();
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
    let mut cmd = cli::Cli::command();
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut cmd, "etcd-bootstrap", &comp)?;
    }
    Ok(())
}
