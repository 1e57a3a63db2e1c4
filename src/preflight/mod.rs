//! Preflight: every reason this node would not join, found before etcd starts, each a line with its
//! evidence. `check` prints them; `apply` runs them before changing anything and stops on an error.

pub mod certs;
pub mod datadir;
pub mod discovery;
pub mod flags;
pub mod members;
pub mod ports;

use crate::facts::Facts;
use crate::seed::Config;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub level: Level,
    pub check: &'static str,
    pub message: String,
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(transparent)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn ok(&mut self, check: &'static str, message: impl Into<String>) {
        self.push(Level::Ok, check, message)
    }
    pub fn warn(&mut self, check: &'static str, message: impl Into<String>) {
        self.push(Level::Warning, check, message)
    }
    pub fn error(&mut self, check: &'static str, message: impl Into<String>) {
        self.push(Level::Error, check, message)
    }
    /// One line per check, whatever its message quotes (a member's name or answer): control
    /// characters are escaped here, once for every report.
    fn push(&mut self, level: Level, check: &'static str, message: impl Into<String>) {
        let message = message.into();
        let message = match crate::util::text::printable(&message) {
            std::borrow::Cow::Borrowed(_) => message,
            std::borrow::Cow::Owned(escaped) => escaped,
        };
        self.checks.push(Check {
            level,
            check,
            message,
        })
    }
    pub fn errors(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.level == Level::Error)
            .collect()
    }
    pub fn warnings(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.level == Level::Warning)
            .collect()
    }
    pub fn text(&self) -> String {
        let mut s = String::new();
        for c in &self.checks {
            let l = match c.level {
                Level::Ok => "ok",
                Level::Warning => "warning",
                Level::Error => "error",
            };
            let _ = writeln!(s, "{l:<8} {:<8} {}", c.check, c.message);
        }
        s
    }
}

pub struct Inputs<'a> {
    pub cfg: &'a Config,
    pub facts: &'a Facts,
    pub root: &'a Path,
    /// The etcd binary that will run: staged from the release, else the installed one.
    pub etcd_binary: Option<PathBuf>,
    /// Which checks: apply runs the ones that need no binary before downloading, then the flags.
    pub only: Only,
    pub seed_digest: &'a str,
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
        certs::check(&mut r, i.cfg, i.root, i.now);
    }
    if i.only != Only::AllButFlags {
        flags::check(&mut r, i.cfg, i.etcd_binary.as_deref());
    }
    if i.only != Only::Flags {
        ports::check(&mut r, i.cfg);
        datadir::check(&mut r, i.cfg, i.root, i.seed_digest);
        discovery::check(&mut r, i.cfg, i.root);
    }
    r
}
