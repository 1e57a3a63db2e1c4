//! `apply`, as named phases in order:
//! load → preflight → release → preflight (flags) → day-2 verify → plan → install → day-2 before
//! start → service → day-2 after start → stamp. A dry run stops after the plan and prints it.

use super::load::{check_root, etcd_binary_for_check, load, log_summary, preflight, Loaded};
use crate::cli::ApplyArgs;
use crate::day2::{self, restart, upgrade, Context, Step};
use crate::host::systemd::{ServiceManager, Systemd};
use crate::host::{lock, users};
use crate::install::desired::{self, Content};
use crate::install::plan::{self, Plan};
use crate::preflight::{Only, Report};
use crate::release::{self, Release, Source};
use crate::seed::Config;
use crate::state::{digests::Digests, Stamp};
use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};

pub fn run(o: &ApplyArgs) -> Result<()> {
    let root = o.common.root.as_path();
    check_root(root)?;
    let _lock = if o.dry_run {
        None
    } else {
        Some(lock::acquire(root, o.lock_wait)?)
    };
    let mut l = load(&o.common.seed_arg(), root, o.wait_interface)?;
    log_summary(&l);
    super::load::own_dirs_are_private(&l.cfg, root)?;
    let services = Systemd::new(root);
    let live_start = services.live() && !o.no_start;
    if live_start && !o.dry_run {
        services.check_running()?;
    }
    // What needs no etcd binary is checked before anything is downloaded.
    stop_on_errors(&preflight(&l, root, None, Only::AllButFlags))?;
    // A version change is judged against the running cluster before anything is downloaded.
    if let Some(path) = upgrade::path(&l.cfg, root)? {
        let line = path.map_err(|refused| anyhow::anyhow!("{refused}; nothing was changed"))?;
        log::info!("upgrade {line}");
    }
    let fetcher = release::fetcher_for(&l.cfg.release, root)?;
    let mut digests = Digests::load(root);
    let binaries = {
        // Verifying and unpacking a release is the heavy part: etcd, when it runs here, comes first.
        let _yield = (live_start && services.is_active(&l.cfg.unit_name()))
            .then(crate::host::priority::Yield::now);
        release_phase(&l.cfg, root, &fetcher, &mut digests, o.dry_run)?
    };
    preflight_flags(&l, root, &binaries, &mut digests)?;
    let cx = Context {
        root,
        dry_run: o.dry_run,
        live_start,
        fetcher: &fetcher,
        services: &services,
    };
    let mut steps = day2::steps(&l.cfg);
    for s in steps.iter_mut() {
        s.verify(&cx, &mut l.cfg)?;
    }
    let items = desired::build(&l.cfg, root, &binaries)?;
    let plan = plan::diff(root, items, &mut digests)?;
    if !o.dry_run && plan.etcd_changes().contains(&"binary") {
        staged_is_the_seeds_version(&l.cfg, &binaries)?;
    }
    if o.dry_run {
        print_dry_run(&cx, &l.cfg, &plan, &steps);
        return Ok(());
    }
    // The heavy writes go to temp files first; a running member that must restart then waits
    // for its turn before any file changes, so the turn covers renames only.
    let prepared = plan.prepare(root)?;
    let turn = match running_restart(&cx, &l.cfg, &plan) {
        Some(why) => Some(restart::take_turn(&l.cfg, root, &why)?),
        None => None,
    };
    install(&l.cfg, root, &plan, prepared, &mut digests)?;
    for s in steps.iter_mut() {
        s.before_start(&cx, &l.cfg)?;
    }
    service(&cx, &l.cfg, &plan, turn)?;
    for s in steps.iter_mut() {
        s.after_start(&cx, &l.cfg)?;
    }
    stamp(&l, root, &plan, &mut digests)
}

/// The only writes before the plan, and only into the download dir (a cache). A dry run downloads
/// nothing: it uses a verified cached tarball if there is one, else the binaries are pending.
fn release_phase(
    cfg: &Config,
    root: &Path,
    fetcher: &crate::util::http::Fetcher,
    digests: &mut Digests,
    dry_run: bool,
) -> Result<Vec<Content>> {
    let rel = Release {
        spec: &cfg.release,
        root,
        source: Source::from_spec(&cfg.release)?,
        fetcher,
    };
    if dry_run {
        return Ok(match rel.verified_staged(digests)? {
            Some(b) => desired::staged_binaries(&b),
            None => desired::pending_binaries(),
        });
    }
    let (tarball, digest) = rel.ensure_tarball(digests)?;
    let staged = rel.stage(&tarball, &digest, digests)?;
    Ok(desired::staged_binaries(&staged.binaries))
}

/// Flags are asked of the binary that will run: the one just staged (verified), else the one this
/// tool installed before.
fn preflight_flags(
    l: &Loaded,
    root: &Path,
    binaries: &[Content],
    digests: &mut Digests,
) -> Result<()> {
    let staged: Option<PathBuf> = binaries.iter().find_map(|b| match b {
        Content::Staged(s) if s.name == "etcd" => Some(s.path.clone()),
        _ => None,
    });
    let bin = match staged {
        Some(b) => Some(b),
        None => etcd_binary_for_check(&l.cfg, root, digests)?,
    };
    stop_on_errors(&preflight(l, root, bin, Only::Flags))
}

/// The etcd about to be installed reports the version the seed names: the upgrade path was judged
/// from that name, so a tarball holding another version (a URL or checksum pointing elsewhere) is
/// refused before it is installed. A binary this machine cannot run (another architecture) is
/// not asked.
fn staged_is_the_seeds_version(cfg: &Config, binaries: &[Content]) -> Result<()> {
    let Some(etcd) = binaries.iter().find_map(|b| match b {
        Content::Staged(s) if s.name == "etcd" => Some(&s.path),
        _ => None,
    }) else {
        return Ok(());
    };
    let Some(reported) = crate::etcd::tools::etcd_version(etcd) else {
        log::warn!(
            "{} does not tell its version here (another architecture?): installing it as etcd {}",
            etcd.display(),
            cfg.release.version
        );
        return Ok(());
    };
    let want = cfg.release.version.trim_start_matches('v');
    if reported.trim_start_matches('v') != want {
        bail!(crate::util::error::invalid(format!(
            "etcd_version is {want}, but the etcd in the release from etcd_download_url reports {reported}: \
             the seed's URL or checksum names another release; nothing was installed (fix etcd_version or \
             etcd_download_url)"
        )));
    }
    Ok(())
}

/// The plan printer: every item's action, then what would be enabled, started or done on day 2.
fn print_dry_run(cx: &Context, cfg: &Config, plan: &Plan, steps: &[Box<dyn Step>]) {
    print!("{}", plan.render());
    let unit = cfg.unit_name();
    if !cx.services.is_enabled(&unit) {
        println!("enable    unit   {unit}");
    }
    if let Some(wg) = interface_unit(cx, cfg) {
        println!("enable    unit   {wg}");
    }
    for s in steps {
        for line in s.preview(cx, cfg) {
            println!("{line}");
        }
    }
    if let Some(why) = running_restart(cx, cfg, plan) {
        println!("restart   unit   {unit} ({why}), waits for its turn");
    } else if cx.live_start && !cx.services.is_active(&unit) {
        println!("start     unit   {unit}");
    }
    println!(
        "{} change(s) planned; nothing was changed (--dry-run)",
        plan.changes()
    );
}

fn install(
    cfg: &Config,
    root: &Path,
    plan: &Plan,
    prepared: plan::Prepared,
    digests: &mut Digests,
) -> Result<()> {
    if cfg.user != "root" || cfg.group != "root" {
        users::ensure(root, &cfg.user, &cfg.group, &cfg.data_dir)?;
    }
    for line in plan
        .render()
        .lines()
        .filter(|l| !l.starts_with("unchanged"))
    {
        log::info!("{line}");
    }
    prepared.apply(root, digests)?;
    // What was installed is recorded at once: the day-2 steps that follow run these binaries
    // only when their digests are the recorded ones.
    digests.save()
}

/// Reload, then restart etcd in its turn, or enable and (on a live system) start it. With a turn
/// held the restart comes first: the other members wait on this one for nothing else.
fn service(cx: &Context, cfg: &Config, plan: &Plan, turn: Option<restart::Turn>) -> Result<()> {
    let sd = cx.services;
    let unit = cfg.unit_name();
    if plan.unit_replaced() {
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
    enable_interface_unit(cx, cfg);
    if !cx.live_start || restarted {
        return Ok(());
    }
    if !sd.is_active(&unit) {
        sd.start(&unit)?;
        // etcd was not running: it starts with every file installed, a restart is moot.
        restart::done(cx.root);
        log::info!("starting {unit} (not waiting: the first member waits for its peers)");
    }
    Ok(())
}

/// Why a running etcd must restart, on a live system: what it reads gets new content in this run
/// (the binary's versions from the last stamp), or an earlier run installed for a restart it did
/// not finish.
fn running_restart(cx: &Context, cfg: &Config, plan: &Plan) -> Option<String> {
    if !cx.live_start || !cx.services.is_active(&cfg.unit_name()) {
        return None;
    }
    let root = cx.root;
    let mut parts: Vec<String> = Vec::new();
    for what in plan.etcd_changes() {
        let old = Stamp::load(root)
            .map(|s| s.etcd_version)
            .filter(|v| what == "binary" && !v.is_empty() && *v != cfg.release.version);
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
fn interface_unit(cx: &Context, cfg: &Config) -> Option<String> {
    let conf = PathBuf::from(format!("/etc/wireguard/{}.conf", cfg.interface));
    let unit = format!("wg-quick@{}.service", cfg.interface);
    (crate::util::fs::under(cx.root, &conf).is_file() && !cx.services.is_enabled(&unit))
        .then_some(unit)
}

fn enable_interface_unit(cx: &Context, cfg: &Config) {
    let Some(unit) = interface_unit(cx, cfg) else {
        return;
    };
    match cx.services.enable(&unit) {
        Ok(()) => log::info!("enabled {unit}: {} comes up at every boot", cfg.interface),
        Err(e) => log::warn!(
            "could not enable {unit} ({e:#}); enable it so {} comes up at boot",
            cfg.interface
        ),
    }
}

fn stamp(l: &Loaded, root: &Path, plan: &Plan, digests: &mut Digests) -> Result<()> {
    crate::failpoint!("before-stamp");
    digests.save()?;
    Stamp {
        seed_sha256: l.digest.clone(),
        etcd_version: l.cfg.release.version.clone(),
        member: l.cfg.this_member.name.clone(),
        membership: crate::state::MEMBERSHIP
            .iter()
            .map(|k| (k.to_string(), l.cfg.setting(k).unwrap_or("").to_string()))
            .collect(),
    }
    .save(root)?;
    if plan.changes() == 0 {
        log::info!("nothing changed: {} is up to date", l.cfg.this_member.name);
    } else {
        log::info!("{} change(s) applied", plan.changes());
    }
    Ok(())
}

fn stop_on_errors(report: &Report) -> Result<()> {
    for w in report.warnings() {
        log::warn!("{}", w.message);
    }
    let errors = report.errors();
    if !errors.is_empty() {
        let lines: Vec<String> = errors.iter().map(|e| format!("  {}", e.message)).collect();
        bail!(
            "preflight found {} problem(s); nothing was changed:\n{}",
            errors.len(),
            lines.join("\n")
        );
    }
    Ok(())
}
