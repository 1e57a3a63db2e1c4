//! Preflight: every reason this node would not join, found before etcd starts, each a line with its
//! evidence. `check` prints them; `apply` runs them before changing anything and stops on an error.

pub mod certs;
pub mod datadir;
pub mod discovery;
pub mod flags;
pub mod members;
pub mod ports;
pub mod quota;
pub mod versions;

use crate::facts::Facts;
use crate::seed::Config;
use crate::util::io::Sha256;
pub use crate::util::report::{Level, Report};
use std::path::{Path, PathBuf};

pub struct Inputs<'a> {
    pub cfg: &'a Config,
    pub facts: &'a Facts,
    pub root: &'a Path,
    /// The etcd binary that will run (staged from the release, else the installed one) and its
    /// verified digest.
    pub etcd_binary: Option<(PathBuf, Sha256)>,
    /// Which checks: apply runs the ones that need no binary before downloading, then the flags.
    pub only: Only,
    /// Keep what the binary answers by its digest, for the next run (`apply`, not `check`).
    pub keep_answers: bool,
    pub seed_digest: &'a str,
    /// The record of the last successful apply (the run reads it once).
    pub last: Option<&'a crate::state::Stamp>,
    /// What the run heard from etcd binaries already.
    pub heard: &'a flags::Heard,
    pub now: std::time::SystemTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    All,
    AllButFlags,
    Flags,
}

pub fn run(i: &Inputs) -> Report {
    let mut r = Report::default();
    if i.only != Only::Flags {
        members::check(&mut r, i.cfg);
        versions::check(&mut r, i.cfg);
        certs::check(&mut r, i.cfg, i.root, i.now);
    }
    if i.only != Only::AllButFlags {
        let bin = i.etcd_binary.as_ref().map(|(p, d)| (p.as_path(), *d));
        flags::check(&mut r, i.cfg, bin, i.root, i.keep_answers, i.heard);
    }
    if i.only != Only::Flags {
        ports::check(&mut r, i.cfg);
        datadir::check(&mut r, i.cfg, i.root, i.seed_digest, i.last);
        quota::check(&mut r, i.cfg, i.root);
        discovery::check(&mut r, i.cfg, i.root);
    }
    r
}
