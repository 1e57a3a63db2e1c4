//! The run context: what a command starts from, built once from its command line, in order —
//! the root checked, the run lock taken (for commands that change the root), the seed read, the
//! node's facts gathered (waiting for its interface), every value resolved, the tool's own dirs
//! checked, the release and its fetcher, the remembered digests, the service manager. Commands
//! take what they need from it; `apply`'s phases take it by reference and return what the next
//! phase uses.

use crate::cluster::node::{Certs, Known, Mode, Node};
use crate::facts::{self, Facts};
use crate::host::lock::{self, Lock};
use crate::host::systemd::Systemd;
use crate::release::Release;
use crate::seed::source::SeedArg;
use crate::seed::{Config, Seed};
use crate::state::digests::Digests;
use crate::util::error::{Error, Phase};
use crate::util::fs;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a command asks of its run. Built with `reading` or `scheduled`, then what it adds.
pub struct Options<'a> {
    pub seed: SeedArg,
    pub root: &'a Path,
    /// How long to wait for the seed's interface to come up.
    pub wait_interface: Duration,
    /// Take the run lock (commands that change the root), waiting this long for it.
    pub lock: Option<Duration>,
    /// Which certificates the run's cluster client presents first.
    pub certs: Certs,
}

impl<'a> Options<'a> {
    /// A command that reads the seed it is given (or the default sources), waits for no
    /// interface, takes no lock, and talks to the cluster with the seed's certificates.
    pub fn reading(common: &'a crate::cli::Common) -> Options<'a> {
        Options {
            seed: common.seed_arg(),
            root: &common.root,
            wait_interface: Duration::ZERO,
            lock: None,
            certs: Certs::Seed,
        }
    }

    /// A scheduled job (and the same command by hand): the applied seed unless `--seed` names
    /// one, the certificates apply installed.
    pub fn scheduled(common: &'a crate::cli::Common) -> Options<'a> {
        Options {
            seed: applied_or(common),
            certs: Certs::Installed,
            ..Options::reading(common)
        }
    }

    pub fn waiting(self, for_interface: Duration) -> Options<'a> {
        Options {
            wait_interface: for_interface,
            ..self
        }
    }

    /// Takes the run lock, waiting up to `wait` (a command that changes the root).
    pub fn locked(self, wait: Duration) -> Options<'a> {
        Options {
            lock: Some(wait),
            ..self
        }
    }
}

/// What every command that reads a seed has: the root, the lock, the seed and its release.
pub struct Base {
    pub root: PathBuf,
    lock: Option<Lock>,
    pub seed: Seed,
    pub release: Release,
    pub digests: Digests,
}

/// A run on a node: the base, this node's facts and the resolved config, its service manager,
/// and what the run learns once (the previous stamp, the cluster client).
pub struct Run {
    pub root: PathBuf,
    _lock: Option<Lock>,
    pub seed: Seed,
    pub release: Release,
    pub digests: Digests,
    pub facts: Facts,
    pub cfg: Config,
    pub services: Systemd,
    known: Known,
    /// What etcd binaries answered this run.
    pub heard: crate::preflight::flags::Heard,
}

/// The seed a scheduled job acts on: `--seed` when given, else the one the last apply applied
/// (`state::APPLIED_SEED`, under the root) when there is one, else the default sources.
fn applied_or(common: &crate::cli::Common) -> crate::seed::source::SeedArg {
    let arg = common.seed_arg();
    let applied = crate::state::path(&common.root, crate::state::APPLIED_SEED);
    if arg.src.is_none() && applied.is_file() {
        return crate::seed::source::SeedArg::path(&applied.display().to_string());
    }
    arg
}

/// `--root` is an absolute dir.
pub fn check_root(root: &Path) -> Result<()> {
    if !root.is_absolute() {
        return Err(Error::input(format!(
            "--root {}: must be an absolute path",
            root.display()
        ))
        .into());
    }
    if !root.is_dir() {
        return Err(Error::input(format!("--root {}: not a directory", root.display())).into());
    }
    Ok(())
}

impl Base {
    /// The root checked, the lock taken, the seed read; the release as the seed names it with the
    /// facts that exist before any interface is up (all a release needs).
    pub fn new(o: &Options) -> Result<Base> {
        check_root(o.root)?;
        let lock = o.lock.map(|wait| lock::acquire(o.root, wait)).transpose()?;
        let seed = Seed::load(&o.seed)?;
        let spec = seed.release(&Facts::gather())?;
        Ok(Base {
            root: o.root.to_path_buf(),
            lock,
            release: Release::new(&spec, o.root)?,
            digests: Digests::load(o.root),
            seed,
        })
    }
}

/// Runs one phase: its errors name it.
pub fn phase<T>(name: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    f().context(Phase(name))
}

impl Run {
    /// The base, then this node: its interface waited for (up to `wait_interface`), every value
    /// of the seed resolved with its facts, and the dirs the tool keeps what it runs in checked.
    pub fn new(o: &Options) -> Result<Run> {
        let mut base = Base::new(o)?;
        let facts0 = Facts::gather();
        let (iface, pinned) = base.seed.interface_and_override(&facts0)?;
        let (facts, address) = match pinned {
            Some(a) => (facts0, a),
            None => facts::wait_for_interface(&iface, o.wait_interface, o.root)?,
        };
        let cfg = base.seed.resolve(&facts, address)?;
        // The release as resolved with every fact (a template may use the interface's).
        if cfg.release != base.release.spec {
            base.release = Release::new(&cfg.release, o.root)?;
        }
        own_dirs_are_private(&cfg, o.root)?;
        Ok(Run {
            services: Systemd::new(o.root),
            root: base.root,
            _lock: base.lock,
            seed: base.seed,
            release: base.release,
            digests: base.digests,
            facts,
            cfg,
            known: Known::new(o.certs),
            heard: Default::default(),
        })
    }

    /// This node as the run's phases, steps and the cluster's mechanisms see it.
    pub fn node(&self, mode: Mode) -> Node<'_> {
        Node::new(
            &self.cfg,
            &self.root,
            mode,
            &self.services,
            &self.release.fetcher,
            &self.known,
        )
    }

    /// A run that changes nothing but may talk to the cluster (status, check, the scheduled jobs).
    pub fn looking(&self) -> Node<'_> {
        self.node(Mode {
            dry_run: false,
            live_start: crate::host::systemd::ServiceManager::live(&self.services),
        })
    }

    pub fn log_summary(&self) {
        let c = &self.cfg;
        log::info!(
            "seed {}: this node is member {} at {} ({}), etcd {} ({}), {} member(s)",
            self.seed.origin,
            c.this_member.name,
            c.address,
            c.interface,
            c.release.version,
            c.release.architecture,
            c.members.len()
        );
    }

    /// The preflight checks `only` asks for, with the etcd binary that will run (if one may be
    /// asked); `keep_answers`: what that binary answers is kept by its digest (a run that may
    /// write).
    pub fn preflight(
        &self,
        cfg: &Config,
        etcd_binary: Option<(PathBuf, crate::util::io::Sha256)>,
        only: crate::preflight::Only,
        keep_answers: bool,
    ) -> crate::preflight::Report {
        crate::preflight::run(&crate::preflight::Inputs {
            cfg,
            facts: &self.facts,
            root: &self.root,
            etcd_binary,
            only,
            keep_answers,
            seed_digest: &self.seed.digest(),
            last: self.looking().stamp(),
            heard: &self.heard,
            now: std::time::SystemTime::now(),
        })
    }
}

/// The dirs the tool keeps what it runs and installs in (the download dir, the state dir, the
/// lock's dir, the bin dir), where they exist: only root may write them, or nothing is done.
fn own_dirs_are_private(cfg: &Config, root: &Path) -> Result<()> {
    let dirs = [
        fs::under(root, &cfg.release.download_dir),
        fs::under(root, Path::new(crate::state::DIR)),
        fs::under(root, Path::new("/run")),
        // What runs as root (etcd, and etcdctl from the backup timer) is installed here.
        fs::under(root, &cfg.bin_dir),
    ];
    for d in dirs.iter().filter(|d| d.is_dir()) {
        fs::private_dir(root, d, 0o755)?;
    }
    Ok(())
}
