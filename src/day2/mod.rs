//! Day 2: what a seed asks beyond a first install — join a running cluster (replacing a dead
//! member), restore a snapshot, keep backups. Each is a `Step` that `apply` calls at the same
//! points, in order; `check` and `--dry-run` ask each what it would do.

pub mod backup;
pub mod join;
pub mod lock;
pub mod replace;
pub mod restart;
pub mod restore;
pub mod status;
pub mod upgrade;

use crate::host::systemd::ServiceManager;
use crate::preflight::Report;
use crate::seed::Config;
use crate::util::http::Fetcher;
use anyhow::Result;
use std::path::Path;

/// What a step may use.
pub struct Context<'a> {
    pub root: &'a Path,
    /// Look, change nothing.
    pub dry_run: bool,
    /// This run starts (or restarts) etcd on a live system.
    pub live_start: bool,
    pub fetcher: &'a Fetcher,
    pub services: &'a dyn ServiceManager,
}

/// A day-2 step. Every hook defaults to doing nothing.
pub trait Step {
    /// `check`: report lines for what the step would do; changes nothing.
    fn check(&mut self, _cx: &Context, _cfg: &Config, _report: &mut Report) {}
    /// Before anything is installed (in a dry run: only looks). May settle settings the install
    /// renders (a join's `initial-cluster`).
    fn verify(&mut self, _cx: &Context, _cfg: &mut Config) -> Result<()> {
        Ok(())
    }
    /// Lines for `apply --dry-run`, after `verify`.
    fn preview(&self, _cx: &Context, _cfg: &Config) -> Vec<String> {
        vec![]
    }
    /// After the install, before etcd starts.
    fn before_start(&mut self, _cx: &Context, _cfg: &Config) -> Result<()> {
        Ok(())
    }
    /// After etcd was started (or, under `--root`, after the install).
    fn after_start(&mut self, _cx: &Context, _cfg: &Config) -> Result<()> {
        Ok(())
    }
}

/// The steps a seed asks for, in the order apply runs them.
pub fn steps(cfg: &Config) -> Vec<Box<dyn Step>> {
    let mut out: Vec<Box<dyn Step>> = Vec::new();
    if let Some(spec) = &cfg.join {
        out.push(Box::new(join::JoinStep::new(spec.clone())));
    }
    if let Some(spec) = &cfg.restore {
        out.push(Box::new(restore::RestoreStep::new(spec.clone())));
    }
    if let Some(spec) = &cfg.backup {
        out.push(Box::new(backup::BackupStep::new(spec.clone())));
    }
    out
}
