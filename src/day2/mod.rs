//! Day 2: what a seed asks beyond a first install, one room per feature — `join` (and `replace`,
//! a dead member replaced), `restore` a snapshot, `backup` on a schedule (and `offsite`, what a
//! backup run then sends to an S3 store: no step of its own, it rides the backup timer),
//! `maintain` the database. Every scheduled run leaves its numbers for node_exporter
//! (`textfile`).
//! Each is a `Step` that `apply` calls at the same points, in order; `check` and `--dry-run` ask
//! each what it would do. A scheduled feature is a `timer::TimerStep` with its own service and
//! timer; what every scheduled service shares (where it finds this tool, its sandbox, its timer)
//! is in `timer`.
//!
//! To add a feature: a folder `day2/<feature>/` holding its job (what its command runs), its units
//! if it has any (`units.rs`), and a `step(cfg, spec)` that builds its `Step` — every hook defaults
//! to doing nothing, so it implements only the points it acts at, `files` for what it installs;
//! a line in `steps` below when the seed asks for it; its seed keys in `seed::resolve::day2`; its
//! subcommand in `cli.rs` and `commands/`; tests beside it. `install` and `render` know no
//! feature by name. A step never changes the `Config` it is given: what it settles for the unit
//! (a join's `initial-cluster`) it returns from `verify`, and `apply` renders the unit with what
//! all steps returned. The shared mechanisms the features use (the lock, the turn, restarts, the
//! upgrade path) live in `crate::cluster`; `crate::status` shows them all.

pub mod backup;
pub mod join;
pub mod maintain;
pub mod offsite;
pub mod replace;
pub mod restore;
pub mod textfile;
pub mod timer;

pub use crate::cluster::node::Node;
use crate::seed::Config;
use crate::util::report::Report;
use anyhow::Result;

/// Settings (flag name → value) a step settles for the unit, over the seed's.
pub type Settings = Vec<(String, String)>;

/// A day-2 step. Every hook defaults to doing nothing. Each is given the node as the run sees it
/// at that point (its config with what the steps before settled).
pub trait Step {
    /// Files it installs with the rest (its units), planned and applied like every other.
    fn files(&self, _cfg: &Config) -> Vec<crate::install::desired::Item> {
        vec![]
    }
    /// `check`: report lines for what the step would do; changes nothing.
    fn check(&mut self, _node: &Node, _report: &mut Report) {}
    /// Before anything is installed (in a dry run: only looks). Returns the settings it settles
    /// for the unit (a join's `initial-cluster`).
    fn verify(&mut self, _node: &Node) -> Result<Settings> {
        Ok(Settings::new())
    }
    /// Lines for `apply --dry-run`, after `verify`.
    fn preview(&self, _node: &Node) -> Vec<String> {
        vec![]
    }
    /// After the install, before etcd starts.
    fn before_start(&mut self, _node: &Node) -> Result<()> {
        Ok(())
    }
    /// After etcd was started (or, under `--root`, after the install).
    fn after_start(&mut self, _node: &Node) -> Result<()> {
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
        out.push(Box::new(backup::step(cfg, spec)));
    }
    if let Some(spec) = Some(&cfg.maintenance).filter(|m| m.enabled) {
        out.push(Box::new(maintain::step(cfg, spec)));
    }
    out
}

/// The files every step asks for, in order; a path two steps share (the metrics dir) once, as
/// the first asked for it.
pub fn files(steps: &[Box<dyn Step>], cfg: &Config) -> Vec<crate::install::desired::Item> {
    let mut out: Vec<crate::install::desired::Item> = Vec::new();
    for item in steps.iter().flat_map(|s| s.files(cfg)) {
        if !out.iter().any(|i| i.path() == item.path()) {
            out.push(item);
        }
    }
    out
}

/// Every step's `verify`, in order, each seeing the settings the ones before it settled; the
/// settings they settled together.
pub fn verify_all(steps: &mut [Box<dyn Step>], node: &Node) -> Result<Settings> {
    let mut all = Settings::new();
    let mut seen = node.cfg.clone();
    for s in steps.iter_mut() {
        let added = s.verify(&node.with_cfg(&seen))?;
        seen = seen.with_settings(&added);
        all.extend(added);
    }
    Ok(all)
}

#[cfg(test)]
mod mock_tests;
