use clap::Parser;
use etcd_bootstrap::cli::{Cli, Command};
use etcd_bootstrap::commands;
use etcd_bootstrap::util::{error, logging};

fn main() {
    // What the tool creates is never group- or world-writable, whatever umask it inherits.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let args = match Cli::try_parse() {
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
    let result = match &args.command {
        Command::Apply(o) => commands::apply::run(o),
        Command::Fetch(o) => commands::fetch::run(o),
        Command::Render(o) => commands::render::run(o),
        Command::Health(o) => commands::health::run(o),
        Command::Check(o) => commands::check::run(o),
        Command::Status(o) => commands::status::run(o),
        Command::Backup(o) => commands::backup::run(o),
        Command::Maintain(o) => commands::maintain::run(o),
        Command::GenerateAssets(o) => commands::assets::run(o),
        Command::Pki(o) => commands::pki::run(o),
        Command::NodeConfig(o) => commands::node_config::run(o),
    };
    // What the run did at its costly seams: each at most once (tests read this line).
    log::debug!("this run: {}", etcd_bootstrap::util::seam::summary());
    if let Err(e) = result {
        log::error!("{e:#}");
        std::process::exit(error::exit_code(&e));
    }
}
