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
    };
    if let Err(e) = result {
        log::error!("{e:#}");
        std::process::exit(error::exit_code(&e));
    }
}
