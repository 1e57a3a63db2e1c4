//! The job, as named phases in order: seed -> facts -> release -> desired state -> plan -> apply -> service.

use crate::desired::{self, Content};
use crate::error::InvalidSeed;
use crate::facts::{self, Facts};
use crate::fsutil;
use crate::plan;
use crate::preflight;
use crate::release::{self, unpack};
use crate::render;
use crate::seed::source::SeedArg;
use crate::seed::{Config, Seed};
use crate::systemd::{Mode, Systemd};
use crate::users;
use anyhow::{bail, Context, Result};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Options {
    pub seed: SeedArg,
    pub root: PathBuf,
    pub no_start: bool,
    pub dry_run: bool,
    pub wait_interface: Duration,
    pub lock_wait: Duration,
}

/// Where success is recorded; the bootstrap's own unit uses it as its run-once condition.
pub const STAMP: &str = "/var/lib/etcd-bootstrap/applied";

pub struct Loaded {
    pub seed: Seed,
    pub digest: String,
    pub facts: Facts,
    pub cfg: Config,
}

fn check_root(root: &Path) -> Result<()> {
    if !root.is_absolute() {
        bail!(InvalidSeed(format!(
            "--root {}: must be an absolute path",
            root.display()
        )));
    }
    if !root.is_dir() {
        bail!(InvalidSeed(format!(
            "--root {}: not a directory",
            root.display()
        )));
    }
    Ok(())
}

/// A seed that carries private keys must be readable by root alone.
fn warn_if_keys_readable(src: &str, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    if !text.contains("PRIVATE KEY") {
        return;
    }
    if let Ok(m) = std::fs::metadata(src) {
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            log::warn!(
                "seed {src} holds private keys but is readable by other users (mode {mode:04o}); chmod 0600 {src}"
            );
        }
    }
}

/// Phases seed + facts: read and parse the seed, wait for the interface, resolve every value.
pub fn load(src: &SeedArg, root: &Path, wait: Duration) -> Result<Loaded> {
    check_root(root)?;
    let text = crate::seed::source::load(src)?;
    let digest = format!("{:x}", sha2::Sha256::digest(text.text.as_bytes()));
    let seed = Seed::parse(&text.origin, &text.text)?;
    warn_if_keys_readable(&text.origin, &text.text);
    let facts0 = Facts::gather();
    let (iface, pinned) = seed.interface_and_override(&facts0)?;
    let (facts, address) = match pinned {
        Some(a) => (facts0, a),
        None => facts::wait_for_interface(&iface, wait)?,
    };
    let cfg = seed.resolve(&facts, address)?;
    Ok(Loaded {
        seed,
        digest,
        facts,
        cfg,
    })
}

fn log_summary(l: &Loaded) {
    let c = &l.cfg;
    log::info!(
        "seed {}: this node is member {} at {} ({}), etcd {} ({}), {} member(s)",
        l.seed.origin,
        c.this_member.name,
        c.address,
        c.interface,
        c.release.version,
        c.release.architecture,
        c.members.len()
    );
}

/// `fetch`: download, verify and stage the release. Needs no interface.
pub fn fetch(src: &SeedArg, root: &Path) -> Result<()> {
    check_root(root)?;
    let _lock = crate::lock::acquire(root, Duration::from_secs(600))?;
    let seed = Seed::load(src)?;
    let spec = seed.release(&Facts::gather())?;
    let source = release::Source::from_config(&spec)?;
    let fetcher = release::fetcher_for(&spec, root)?;
    let mut digests = crate::digests::Digests::load(root);
    let (tarball, digest) = release::ensure_tarball(&spec, root, &source, &fetcher, &mut digests)?;
    let staged = unpack::stage(
        &tarball,
        &digest,
        &spec.architecture,
        !spec.allow_unsupported_arch,
    )?;
    digests.save()?;
    println!("{}  {}", digest, tarball.display());
    for b in &staged.binaries {
        println!("{}  {}", b.sha256, b.path.display());
    }
    Ok(())
}

pub fn render(src: &SeedArg, root: &Path, wait: Duration) -> Result<()> {
    let l = load(src, root, wait)?;
    print!("{}", render::unit(&l.cfg));
    Ok(())
}

/// The etcd binary a check should ask: the one staged from the release if present, else the installed one.
fn etcd_binary_for_check(cfg: &Config, root: &Path) -> Option<PathBuf> {
    if let Ok(src) = release::Source::from_config(&cfg.release) {
        let tarball = release::cache_path(&cfg.release, root, &src);
        let dir = tarball.parent().map(|d| unpack::staging_dir(d, &tarball));
        if let Some(staged) = dir.map(|d| d.join("etcd")).filter(|p| p.is_file()) {
            return Some(staged);
        }
    }
    Some(fsutil::under(root, &cfg.bin_dir).join("etcd")).filter(|p| p.is_file())
}

fn preflight(
    l: &Loaded,
    root: &Path,
    etcd_binary: Option<PathBuf>,
    only: preflight::Only,
) -> preflight::Report {
    preflight::run(&preflight::Inputs {
        cfg: &l.cfg,
        facts: &l.facts,
        root,
        etcd_binary,
        only,
        seed_digest: &l.digest,
        now: std::time::SystemTime::now(),
    })
}

/// `check`: every preflight line; exit 1 when any is an error.
pub fn check(src: &SeedArg, root: &Path, wait: Duration, output: crate::cli::Output) -> Result<()> {
    let l = load(src, root, wait)?;
    let mut report = preflight(
        &l,
        root,
        etcd_binary_for_check(&l.cfg, root),
        preflight::Only::All,
    );
    if let Some(spec) = &l.cfg.join {
        // Asks a running member what apply would do; changes nothing.
        match crate::join::preview(&l.cfg, root, spec) {
            Ok(crate::join::Preview::Would(j)) => report.ok("join", j.action),
            Ok(crate::join::Preview::Busy(why)) => report.warn(
                "join",
                format!("apply would wait and retry (up to etcd_join_timeout): {why}"),
            ),
            Err(e) => report.error("join", format!("{e:#}")),
        }
    }
    if let Some(r) = &l.cfg.restore {
        match crate::snapshot::restore_preview(&l.cfg, root, r) {
            Ok(m) => report.ok("restore", m),
            Err(m) => report.error("restore", m),
        }
    }
    match output {
        crate::cli::Output::Text => {
            println!(
                "ok       seed     {} (sha256 {}): member {} at {} ({}), etcd {}",
                l.seed.origin,
                l.digest,
                l.cfg.this_member.name,
                l.cfg.address,
                l.cfg.interface,
                l.cfg.release.version
            );
            print!("{}", report.text());
        }
        crate::cli::Output::Json => println!("{}", serde_json::to_string(&report)?),
    }
    let errors = report.errors().len();
    if errors > 0 {
        bail!("{errors} check(s) failed; this node would not join as configured");
    }
    Ok(())
}

pub fn health(
    src: &SeedArg,
    root: &Path,
    endpoints: Option<&str>,
    wait: Duration,
    output: crate::cli::Output,
) -> Result<()> {
    let l = load(src, root, Duration::ZERO)?;
    let eps = match endpoints {
        Some(e) => crate::health::parse_endpoints(e)?,
        None => crate::health::default_endpoints(&l.cfg),
    };
    let checker = crate::health::Checker::new(&l.cfg, root)?;
    let statuses = checker.wait_all(&eps, wait);
    match output {
        crate::cli::Output::Text => {
            for s in &statuses {
                println!("{}", s.line());
            }
        }
        crate::cli::Output::Json => println!("{}", serde_json::to_string(&statuses)?),
    }
    let bad = statuses.iter().filter(|s| !s.healthy).count();
    if bad > 0 {
        bail!("{bad} of {} endpoint(s) unhealthy", statuses.len());
    }
    Ok(())
}

fn stamp(root: &Path, l: &Loaded) -> Result<()> {
    let path = fsutil::under(root, Path::new(STAMP));
    let text = format!(
        "seed_sha256={}\netcd_version={}\nmember={}\n",
        l.digest, l.cfg.release.version, l.cfg.this_member.name
    );
    fsutil::write_state(&path, &text)
}

pub fn apply(o: &Options) -> Result<()> {
    check_root(&o.root)?;
    let _lock = if o.dry_run {
        None
    } else {
        Some(crate::lock::acquire(&o.root, o.lock_wait)?)
    };
    let mut l = load(&o.seed, &o.root, o.wait_interface)?;
    log_summary(&l);
    let cfg = &l.cfg;
    let root = o.root.as_path();
    let sd = Systemd::new(root);
    let live_start = matches!(sd.mode, Mode::Live) && !o.no_start;
    if live_start && !o.dry_run {
        sd.check_running()?;
    }

    // Phase preflight: what needs no etcd binary is checked before anything is downloaded.
    stop_on_errors(&preflight(&l, root, None, preflight::Only::AllButFlags))?;

    // Phase release: the only writes before the plan, and only into the download dir (a cache).
    let source = release::Source::from_config(&cfg.release)?;
    let fetcher = release::fetcher_for(&cfg.release, root)?;
    let mut digests = crate::digests::Digests::load(root);
    let binaries: Vec<Content> = if o.dry_run {
        match release::cached_verified(&cfg.release, root, &source, &fetcher, &mut digests)? {
            Some((tarball, digest)) => match unpack::already_staged(&tarball, &digest) {
                Some(b) => desired::staged_binaries(&b),
                None => pending(),
            },
            None => pending(),
        }
    } else {
        let (tarball, digest) =
            release::ensure_tarball(&cfg.release, root, &source, &fetcher, &mut digests)?;
        let staged = unpack::stage(
            &tarball,
            &digest,
            &cfg.release.architecture,
            !cfg.release.allow_unsupported_arch,
        )?;
        desired::staged_binaries(&staged.binaries)
    };

    let etcd_binary = binaries.iter().find_map(|b| match b {
        Content::Staged(s) if s.name == "etcd" => Some(s.path.clone()),
        _ => None,
    });
    let flags = preflight(
        &l,
        root,
        etcd_binary.or_else(|| etcd_binary_for_check(cfg, root)),
        preflight::Only::Flags,
    );
    stop_on_errors(&flags)?;

    // Phase join: only now, with the release verified and staged, is this node added to a running
    // cluster; a failure before here leaves the cluster untouched.
    let joined = match l.cfg.join.clone() {
        Some(spec) => {
            let j = crate::join::prepare(&l.cfg, root, &spec, o.dry_run)?;
            if !o.dry_run {
                log::info!("join: {}", j.action);
            }
            l.cfg
                .settings
                .insert("initial-cluster".into(), j.initial_cluster.clone());
            Some((spec, j))
        }
        None => None,
    };
    let cfg = &l.cfg;

    // Phase restore, part one: the snapshot is fetched and its digest checked before anything is
    // installed.
    let restore = match (&cfg.restore, o.dry_run) {
        (Some(r), false) => crate::snapshot::verify_restore(cfg, root, r, &fetcher)?,
        _ => None,
    };

    let items = desired::build(cfg, root, &binaries)?;
    let plan = plan::diff(root, items, &mut digests)?;
    let unit = format!("{}.service", cfg.service_name);
    let enabled = sd.is_enabled(&unit);

    let timer = cfg
        .backup
        .as_ref()
        .map(|_| crate::snapshot::unit_names(cfg).1)
        .filter(|t| !sd.is_enabled(t));

    if o.dry_run {
        print!("{}", plan.render());
        if let Some((_, j)) = &joined {
            println!("join      member {}", j.action);
        }
        if let Some(r) = &cfg.restore {
            if crate::snapshot::restore_pending(cfg, root) {
                println!(
                    "restore   datadir {} from {} (sha256 {})",
                    cfg.data_dir.display(),
                    r.snapshot,
                    r.sha256
                );
            }
        }
        if !enabled {
            println!("enable    unit   {unit}");
        }
        if let Some(t) = &timer {
            println!("enable    unit   {t}");
        }
        let restart = plan.etcd_inputs_changed() && sd.is_active(&unit);
        match (&sd.mode, o.no_start) {
            (Mode::Live, false) if restart => println!("restart   unit   {unit}"),
            (Mode::Live, false) if !sd.is_active(&unit) => println!("start     unit   {unit}"),
            _ => {}
        }
        println!(
            "{} change(s) planned; nothing was changed (--dry-run)",
            plan.changes()
        );
        return Ok(());
    }

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
    plan.apply(root, &mut digests)?;

    // Phase restore, part two: the binaries are installed and the data dir exists; etcd has not
    // started.
    if let Some(v) = &restore {
        crate::snapshot::restore(cfg, root, v)?;
    }

    if plan.unit_changed() {
        sd.daemon_reload()?;
    }
    crate::failpoint!("before-enable");
    if !enabled {
        sd.enable(&unit)
            .with_context(|| format!("enabling {unit}"))?;
        log::info!("enabled {unit}");
    }
    if let Some(t) = &timer {
        sd.enable(t).with_context(|| format!("enabling {t}"))?;
        log::info!(
            "enabled {t}: a snapshot every {}",
            crate::duration::format(cfg.backup.as_ref().map(|b| b.interval).unwrap_or_default())
        );
        if live_start {
            sd.start(t)?;
        }
    }
    if live_start {
        if sd.is_active(&unit) {
            if plan.etcd_inputs_changed() {
                sd.restart(&unit)?;
                log::info!("restarting {unit}: its unit, certificates or binaries changed");
            }
        } else {
            sd.start(&unit)?;
            log::info!("starting {unit} (not waiting: the first member waits for its peers)");
        }
    }
    if let Some((spec, j)) = &joined {
        if let (true, Some(id)) = (j.learner, j.id) {
            // A learner is promoted once it runs and has caught up; under --root it runs only later.
            if live_start || crate::join::data_dir_has_member(cfg, root) {
                crate::join::promote(cfg, root, id, spec.timeout)?;
            } else {
                log::info!(
                    "joined as learner {id:x}: once etcd runs, run apply again to promote it to a voting member"
                );
            }
        }
    }
    crate::failpoint!("before-stamp");
    digests.save()?;
    stamp(root, &l)?;
    if plan.changes() == 0 {
        log::info!("nothing changed: {} is up to date", cfg.this_member.name);
    } else {
        log::info!("{} change(s) applied", plan.changes());
    }
    Ok(())
}

fn stop_on_errors(report: &preflight::Report) -> Result<()> {
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

fn pending() -> Vec<Content> {
    // Without a verified tarball the binaries are unknown; show them as pending installs.
    vec![
        Content::Pending("etcd".into()),
        Content::Pending("etcdctl".into()),
    ]
}
