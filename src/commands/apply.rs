//! `apply`: the run context, then named phases in order. Each takes what it needs and returns
//! what the next one uses; an error names the phase it stopped in.
//!
//! ```text
//! preflight → upgrade path → release → flags → day 2: verify → plan → (a dry run prints it, stops)
//!   → prepare → restart turn → install → day 2: before start → service → day 2: after start → stamp
//! ```
//!
//! Every phase takes the run's `Node` (its config, root, mode, service manager, and what the run
//! learns once: the last stamp, the cluster client); after `day 2: verify` it is the node with
//! the settings the steps settled.
//!
//! ```text
//! ```
//!
//! Nothing is written before `release` (and only into the download dir, a cache); nothing the
//! system runs or reads changes before `install`, and a running member that must restart takes its
//! turn before that.

use super::run::{phase, Options, Run};
use crate::cli::ApplyArgs;
use crate::cluster::node::{Mode, Node};
use crate::cluster::upgrade::{self, Verdict};
use crate::cluster::{downgrade, restart, v2store};
use crate::day2::{self, Step};
use crate::etcd::version::Version;
use crate::host::systemd::ServiceManager;
use crate::host::users;
use crate::install::apply::Prepared;
use crate::install::desired::{self, Binaries};
use crate::install::plan::{self, EtcdChange, Plan};
use crate::preflight::Only;
use crate::release::staging::Staged;
use crate::seed::Config;
use crate::state::Stamp;
use crate::util::error::Error;
use anyhow::{Context as _, Result};
use std::path::PathBuf;

pub fn run(o: &ApplyArgs) -> Result<()> {
    let mut opts = Options::reading(&o.common).waiting(o.wait_interface);
    if !o.dry_run {
        opts = opts.locked(o.lock_wait);
    }
    let run = Run::new(&opts)?;
    run.log_summary();
    let live_start = run.services.live() && !o.no_start;
    if live_start && !o.dry_run {
        run.services.check_running()?;
    }
    let seed_node = run.node(Mode {
        dry_run: o.dry_run,
        live_start,
    });
    phase("preflight", || preflight(&run))?;
    let verdict = phase("upgrade path", || upgrade_path(&seed_node))?;
    let staged = phase("release", || release(&run, live_start, o.dry_run))?;
    phase("flags", || flags(&run, staged.as_ref(), o.dry_run))?;
    let mut steps = day2::steps(&run.cfg);
    let cfg = phase("day 2: verify", || {
        day2::verify_all(&mut steps, &seed_node).map(|s| run.cfg.with_settings(&s))
    })?;
    let node = seed_node.with_cfg(&cfg);
    let features = day2::files(&steps, &cfg);
    let plan = phase("plan", || {
        plan(&run, &cfg, staged.as_ref(), features, o.dry_run)
    })?;
    if o.dry_run {
        print_dry_run(&node, &plan, &steps);
        return Ok(());
    }
    let prepared = phase("prepare", || plan.prepare(&run.root))?;
    let turn = phase("restart turn", || turn(&node, &plan, verdict.as_ref()))?;
    phase("install", || install(&run, &cfg, &plan, prepared))?;
    phase("day 2: before start", || {
        each(&mut steps, |s| s.before_start(&node))
    })?;
    phase("service", || service(&node, &plan, turn))?;
    if let Some(Verdict::Downgrade { target, .. }) = verdict {
        downgrade::report(&node, target);
    }
    phase("day 2: after start", || {
        each(&mut steps, |s| s.after_start(&node))
    })?;
    phase("stamp", || stamp(&run, &cfg, &plan))
}

fn each(
    steps: &mut [Box<dyn Step>],
    f: impl FnMut(&mut Box<dyn Step>) -> Result<()>,
) -> Result<()> {
    steps.iter_mut().try_for_each(f)
}

/// What needs no etcd binary is checked before anything is downloaded.
fn preflight(run: &Run) -> Result<()> {
    run.preflight(&run.cfg, None, Only::AllButFlags, false)
        .stop_on_errors("the checks")
}

/// A version change is judged against the running cluster before anything is downloaded.
fn upgrade_path(node: &Node) -> Result<Option<Verdict>> {
    let Some(v) = upgrade::path(node)? else {
        return Ok(None);
    };
    let line = v
        .clone()
        .into_result()
        .map_err(|refused| anyhow::anyhow!("{refused:#}; nothing was changed"))?;
    log::info!("upgrade {line}");
    Ok(Some(v))
}

/// The verified release, staged. A dry run downloads nothing: it uses a verified cached tarball if
/// there is one, else the binaries are pending (None).
fn release(run: &Run, live_start: bool, dry_run: bool) -> Result<Option<Staged>> {
    if dry_run {
        return run.release.verified_staged(&run.digests);
    }
    // Verifying and unpacking a release is the heavy part: etcd, when it runs here, comes first.
    let _yield = (live_start && run.services.is_active(&run.cfg.unit_name()))
        .then(crate::host::priority::Yield::now);
    Ok(Some(run.release.fetch_and_stage(&run.digests)?.2))
}

/// Flags are asked of the binary that will run: the one just staged (verified), else the one this
/// tool installed before. Its answers are kept by its digest (not by a dry run, which writes
/// nothing): a warm run asks it nothing.
fn flags(run: &Run, staged: Option<&Staged>, dry_run: bool) -> Result<()> {
    let bin = match staged.and_then(Staged::etcd) {
        Some(b) => Some((b.path.clone(), b.sha256)),
        None => run.release.etcd_to_ask(&run.cfg.bin_dir, &run.digests)?,
    };
    run.preflight(&run.cfg, bin, Only::Flags, !dry_run)
        .stop_on_errors("the checks")
}

/// What the install would change, against the root; a new etcd must report the seed's version.
fn plan(
    run: &Run,
    cfg: &Config,
    staged: Option<&Staged>,
    features: Vec<crate::install::desired::Item>,
    dry_run: bool,
) -> Result<Plan> {
    let binaries = match staged {
        Some(s) => Binaries::Staged(&s.binaries),
        None => Binaries::Pending,
    };
    let items = desired::build(cfg, &run.root, binaries, features)?;
    let plan = plan::diff(&run.root, items, &run.digests)?;
    if let (false, true, Some(s)) = (
        dry_run,
        plan.etcd_changes().contains(&EtcdChange::Binary),
        staged,
    ) {
        staged_is_the_seeds_version(cfg, s, run)?;
    }
    Ok(plan)
}

/// The etcd about to be installed reports the version the seed names: the upgrade path was judged
/// from that name, so a tarball holding another version (a URL or checksum pointing elsewhere) is
/// refused before it is installed. A binary this machine cannot run (another architecture) is
/// not asked.
fn staged_is_the_seeds_version(cfg: &Config, staged: &Staged, run: &Run) -> Result<()> {
    let Some(etcd) = staged.etcd() else {
        return Ok(());
    };
    // Asked already by the flags check, with the same verified digest: not asked again.
    let reported = run
        .heard
        .reported_version(&etcd.path, etcd.sha256, &run.root, true);
    let Some(reported) = reported else {
        if crate::release::elf::runs_here(&etcd.path) {
            // Built for this machine, yet it says nothing: nothing vouches for what it is.
            return Err(Error::input(format!(
                "the etcd in the release from etcd_download_url does not answer --version as etcd \
                 {} would: refusing to install it; nothing was installed (is the tarball etcd's?)",
                cfg.release.version
            ))
            .into());
        }
        log::warn!(
            "{} does not tell its version here (another architecture?): installing it as etcd {}",
            etcd.path.display(),
            cfg.release.version
        );
        return Ok(());
    };
    let want = cfg.release.version.trim_start_matches('v');
    if reported.trim_start_matches('v') != want {
        return Err(Error::input(format!(
            "etcd_version is {want}, but the etcd in the release from etcd_download_url reports {reported}: \
             the seed's URL or checksum names another release; nothing was installed (fix etcd_version or \
             etcd_download_url)"
        ))
        .into());
    }
    Ok(())
}

/// The plan printer: every item's action, then what would be enabled, started or done on day 2.
fn print_dry_run(node: &Node, plan: &Plan, steps: &[Box<dyn Step>]) {
    let (cfg, cx) = (node.cfg, node);
    print!("{}", plan.render());
    let unit = cfg.unit_name();
    if !cx.services.is_enabled(&unit) {
        println!("enable    unit   {unit}");
    }
    if let Some(wg) = interface_unit(node) {
        println!("enable    unit   {wg}");
    }
    for s in steps {
        for line in s.preview(node) {
            println!("{line}");
        }
    }
    if let Some(why) = running_restart(node, plan) {
        println!("restart   unit   {unit} ({why}), waits for its turn");
    } else if cx.mode.live_start && !cx.services.active_state(&unit).running() {
        println!("start     unit   {unit}");
    }
    println!(
        "{} change(s) planned; nothing was changed (--dry-run)",
        plan.changes()
    );
}

/// A running member that must restart waits for its turn before any file changes. Leaving 3.5
/// for 3.6, its v2 store is checked first; a minor downgrade is enabled through etcd's API once
/// the turn is held (the other members healthy), before any binary changes.
fn turn<'a>(
    node: &Node<'a>,
    plan: &Plan,
    verdict: Option<&Verdict>,
) -> Result<Option<restart::Turn<'a>>> {
    let (cx, cfg) = (node, node.cfg);
    let why = running_restart(node, plan);
    // Whether etcd runs or not: a stopped member starts on the new binary just the same.
    if let Some((from, to)) = version_change(node) {
        if v2store::applies(from, to) && crate::state::data_dir_has_member(cx.root, &cfg.data_dir) {
            v2store::check(node)?;
        }
    }
    let pending_before = restart::pending(cx.root);
    let turn = why.map(|why| restart::take_turn(node, &why)).transpose()?;
    if let Some(Verdict::Downgrade {
        target,
        enabled: false,
        ..
    }) = verdict
    {
        if let Err(e) = downgrade::enable(node, *target) {
            if pending_before.is_none() {
                restart::done(cx.root);
            }
            return Err(e);
        }
    }
    Ok(turn)
}

/// The installed version and the seed's, when they differ.
fn version_change(node: &Node) -> Option<(Version, Version)> {
    let from = node.stamp()?.etcd_version.parse::<Version>().ok()?;
    let to = node.cfg.release.semver;
    (from != to).then_some((from, to))
}

/// The prepared plan applied (temp files renamed into place, the rest written), the account made
/// first; what was installed is recorded at once: the day-2 steps that follow run these binaries
/// only when their digests are the recorded ones.
fn install(run: &Run, cfg: &Config, plan: &Plan, prepared: Prepared) -> Result<()> {
    if cfg.user != "root" || cfg.group != "root" {
        users::ensure(&run.root, &cfg.user, &cfg.group, &cfg.data_dir)?;
    }
    for line in plan.changed_lines() {
        log::info!("{line}");
    }
    prepared.apply(&run.root, &run.digests)?;
    run.digests.save()
}

/// Reload, then restart etcd in its turn, or enable and (on a live system) start it. With a turn
/// held the restart comes first: the other members wait on this one for nothing else. systemd is
/// reloaded when this run replaced the unit, or when the unit it loaded differs from the one on
/// disk (an earlier run wrote it and died before its reload).
fn service(node: &Node, plan: &Plan, turn: Option<restart::Turn>) -> Result<()> {
    let (cx, cfg, sd) = (node, node.cfg, node.services);
    let unit = cfg.unit_name();
    crate::failpoint!("before-reload");
    if plan.unit_replaced() || sd.needs_reload(&unit) {
        sd.daemon_reload()?;
    }
    let restarted = turn.is_some();
    if let Some(turn) = turn {
        turn.restart(cx.root, sd)?;
    }
    crate::failpoint!("before-enable");
    if !sd.is_enabled(&unit) {
        sd.enable(&unit)
            .with_context(|| format!("enabling {unit}"))?;
        log::info!("enabled {unit}");
    }
    enable_interface_unit(node);
    if !cx.mode.live_start || restarted {
        return Ok(());
    }
    if !sd.active_state(&unit).running() {
        sd.start(&unit)?;
        // etcd was not running: it starts with every file installed, a restart is moot.
        restart::done(cx.root);
        log::info!("starting {unit} (not waiting: the first member waits for its peers)");
    }
    Ok(())
}

/// Why a running etcd must restart, on a live system: what it reads gets new content in this run
/// (the binary's versions from the last stamp), or an earlier run installed for a restart it did
/// not finish. Running includes `activating`: an etcd waiting for its peers, or between the
/// tries of `Restart=`, read its flags already, and a start would change nothing.
fn running_restart(node: &Node, plan: &Plan) -> Option<String> {
    let cfg = node.cfg;
    if !node.mode.live_start || !node.services.active_state(&cfg.unit_name()).running() {
        return None;
    }
    let root = node.root;
    let mut parts: Vec<String> = Vec::new();
    for what in plan.etcd_changes() {
        let old = node
            .stamp()
            .map(|s| &s.etcd_version)
            .filter(|v| what == EtcdChange::Binary && !v.is_empty() && **v != cfg.release.version);
        parts.push(match old {
            Some(old) => format!("binary changed: {old} → {}", cfg.release.version),
            None => format!("{what} changed"),
        });
    }
    if parts.is_empty() {
        return restart::pending(root).map(|p| format!("left pending by an earlier run: {p}"));
    }
    Some(parts.join(", "))
}

/// The wg-quick unit of the seed's interface, when its config is on the node and the unit is not
/// enabled yet: this boot it came up because the first-boot unit wants it, later boots need it
/// enabled (cloud-init only writes the config).
fn interface_unit(node: &Node) -> Option<String> {
    let (cx, cfg) = (node, node.cfg);
    let conf = PathBuf::from(format!("/etc/wireguard/{}.conf", cfg.interface));
    let unit = format!("wg-quick@{}.service", cfg.interface);
    (crate::util::fs::under(cx.root, &conf).is_file() && !cx.services.is_enabled(&unit))
        .then_some(unit)
}

fn enable_interface_unit(node: &Node) {
    let cfg = node.cfg;
    let Some(unit) = interface_unit(node) else {
        return;
    };
    match node.services.enable(&unit) {
        Ok(()) => log::info!("enabled {unit}: {} comes up at every boot", cfg.interface),
        Err(e) => log::warn!(
            "could not enable {unit} ({e:#}); enable it so {} comes up at boot",
            cfg.interface
        ),
    }
}

/// Success, recorded: the seed's digest, the etcd version, this member, the membership inputs.
fn stamp(run: &Run, cfg: &Config, plan: &Plan) -> Result<()> {
    crate::failpoint!("before-stamp");
    run.digests.save()?;
    // What the scheduled jobs act on: this seed, as applied, not one fetched again.
    crate::state::write_private(&run.root, crate::state::APPLIED_SEED, run.seed.text())?;
    Stamp {
        seed_sha256: run.seed.digest(),
        etcd_version: cfg.release.version.clone(),
        member: cfg.this_member.name.clone(),
        membership: crate::state::MEMBERSHIP
            .iter()
            .map(|k| (k.to_string(), cfg.setting(k).unwrap_or("").to_string()))
            .collect(),
    }
    .save(&run.root)?;
    if plan.changes() == 0 {
        log::info!("nothing changed: {} is up to date", cfg.this_member.name);
    } else {
        log::info!("{} change(s) applied", plan.changes());
    }
    Ok(())
}

#[cfg(test)]
#[path = "apply_mock_tests.rs"]
mod mock_tests;
