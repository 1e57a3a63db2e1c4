//! Day 2: what a seed asks beyond a first install — join a running cluster (replacing a dead
//! member), restore a snapshot, keep backups, run maintenance. Each is a `Step` that `apply` calls at the same
//! points, in order; `check` and `--dry-run` ask each what it would do.
//!
//! To add a step: a type implementing `Step` (every hook defaults to doing nothing, so it
//! implements only the points it acts at), a line in `steps` that builds it when the seed asks for
//! it, and a test beside it. A step never changes the `Config` it is given: what it settles for
//! the unit (a join's `initial-cluster`) it returns from `verify`, and `apply` renders the unit
//! with what all steps returned. Cluster-wide services the steps use (the lock, restarts, the
//! upgrade path, status, backups) live in `crate::cluster`.

pub mod join;
pub mod replace;
pub mod restore;
pub mod timer;

use crate::host::systemd::ServiceManager;
use crate::seed::Config;
use crate::util::http::Fetcher;
use crate::util::report::Report;
use crate::util::time::format_duration;
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

/// Settings (flag name → value) a step settles for the unit, over the seed's.
pub type Settings = Vec<(String, String)>;

/// A day-2 step. Every hook defaults to doing nothing.
pub trait Step {
    /// `check`: report lines for what the step would do; changes nothing.
    fn check(&mut self, _cx: &Context, _cfg: &Config, _report: &mut Report) {}
    /// Before anything is installed (in a dry run: only looks). Returns the settings it settles
    /// for the unit (a join's `initial-cluster`).
    fn verify(&mut self, _cx: &Context, _cfg: &Config) -> Result<Settings> {
        Ok(Settings::new())
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
        let does = format!("a snapshot every {}", format_duration(spec.interval));
        let (_, timer) = cfg.backup_unit_names();
        out.push(Box::new(timer::TimerStep::new(timer, does)));
    }
    if let Some(spec) = Some(&cfg.maintenance).filter(|m| m.enabled) {
        let does = format!(
            "maintenance every {} (defragment over {}% fragmented, recover NOSPACE)",
            format_duration(spec.interval),
            spec.fragmentation
        );
        let (_, timer) = cfg.maintenance_unit_names();
        out.push(Box::new(timer::TimerStep::new(timer, does)));
    }
    out
}

/// Every step's `verify`, in order, each seeing the settings the ones before it settled; the
/// settings they settled together.
pub fn verify_all(steps: &mut [Box<dyn Step>], cx: &Context, cfg: &Config) -> Result<Settings> {
    let mut all = Settings::new();
    let mut seen = cfg.clone();
    for s in steps.iter_mut() {
        let added = s.verify(cx, &seen)?;
        seen = seen.with_settings(&added);
        all.extend(added);
    }
    Ok(all)
}

#[cfg(test)]
mod mock_tests;
