//! Test harness: real etcd release fixtures, a PKI made by `etcd-bootstrap pki`, and nodes made of
//! a network namespace, a private mount namespace (own /var/run/wireguard) and UTS namespace (own
//! hostname), each with a real `wg0` from wireguard-go. Everything a node starts dies with it
//! (Drop); `tests/support/cleanup.sh` removes what an interrupted run left (every name starts with
//! `ebt-` and carries the pid of the test process that made it, so a second run is left alone).
//!
//! One file per thing it builds:
//! - `release`: the fixture release tarballs (real etcd 3.4.23 and 3.5.1) and seed lines naming them;
//! - `seed`: `SeedText`, the one seed builder;
//! - `pki`: `Pki`, certificates made by the tool's own `pki` (deliberately broken ones are made
//!   with rcgen in `tests/preflight.rs`);
//! - `node`: `Node`, one machine in namespaces with a real wg0; `Node::tool` is the one way to
//!   run the tool;
//! - `live`: what a live node adds (its private /etc, /var/lib, ..., and the systemd-like
//!   `systemctl` double);
//! - `cluster`, `single`: N meshed nodes with one seed, or one node with its root;
//! - `store`: a real S3-compatible store (SeaweedFS) in a cluster's bridge namespace;
//! - `watch`: the health watcher and the writing client, and what they saw;
//! - `root`: target roots and their manifests (what an install is).
#![allow(dead_code, unused_imports)]

pub mod cluster;
pub mod live;
pub mod node;
pub mod pki;
pub mod release;
pub mod root;
pub mod seed;
pub mod single;
pub mod store;
pub mod watch;

pub use cluster::*;
pub use live::*;
pub use node::*;
pub use pki::*;
pub use release::*;
pub use root::*;
pub use seed::*;
pub use single::*;
pub use store::*;
pub use watch::*;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_etcd-bootstrap"))
}

pub fn support(script: &str) -> PathBuf {
    repo().join("tests/support").join(script)
}

pub fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    cmd.output()
        .unwrap_or_else(|e| panic!("running {shown}: {e}"))
}

pub fn ok(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{shown} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The lines of `text` that are errors (a report's `error` lines, wherever they stand).
/// stdout, then stderr.
pub fn all_output(o: &Output) -> String {
    stdout(o) + &stderr(o)
}

pub fn error_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("error")).collect()
}

/// A per-process token in every namespace and scratch name: a second test run, or an interrupted
/// one's leftovers, never share a name with this run.
fn run_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        format!("{}-{:x}", std::process::id(), nanos & 0xfffff)
    })
}

/// A scratch dir `/tmp/ebt-<tag>-<pid>-<token>-...`: cleanup.sh removes it once this run is gone.
pub fn scratch(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("ebt-{tag}-{}-", run_token()))
        .tempdir()
        .unwrap()
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// `ebt-<tag>-<pid>-<token>-<n>`: cleanup.sh removes it only once that pid is gone.
pub fn unique(tag: &str) -> String {
    format!(
        "ebt-{tag}-{}-{}",
        run_token(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

pub fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `<cmd> --seed SEED --root ROOT <extra>`.
pub fn with_seed_and_root(cmd: &str, seed: &Path, root: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        cmd.into(),
        "--seed".into(),
        seed.display().to_string(),
        "--root".into(),
        root.display().to_string(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

pub fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Whether a test that needs arm64 programs runs: true when they run here. Otherwise, under CI
/// (`CI` set, as `.ci/run` sets it) the test fails: a skip there would hide that nothing was
/// proven. Elsewhere it is skipped loudly: said on stderr, and counted in
/// `target/test-skips.log`, which `make test` prints after the run.
pub fn need_arm64(test: &str) -> bool {
    let Err(why) = arm64_runs() else {
        return true;
    };
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
        panic!("{test} cannot run here and CI does not skip: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    let log = repo().join("target/test-skips.log");
    if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(log) {
        use std::io::Write;
        let _ = writeln!(f, "{test}: {why}");
    }
    false
}

/// Whether arm64 programs run here: binfmt_misc with qemu-aarch64 registered (tried as
/// install-deps.sh does, as root). Err says why not: the arm64 tests skip only then.
pub fn arm64_runs() -> Result<(), String> {
    let entry = Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64");
    if !entry.exists() {
        if !Path::new("/proc/sys/fs/binfmt_misc/register").exists() {
            let _ = Command::new("mount")
                .args([
                    "-t",
                    "binfmt_misc",
                    "binfmt_misc",
                    "/proc/sys/fs/binfmt_misc",
                ])
                .status();
        }
        let _ = Command::new("update-binfmts")
            .args(["--enable", "qemu-aarch64"])
            .status();
    }
    match fs::read_to_string(entry) {
        Ok(t) if t.starts_with("enabled") => Ok(()),
        Ok(t) => Err(format!(
            "binfmt qemu-aarch64 is registered but not enabled: {}",
            t.trim()
        )),
        Err(e) => Err(format!(
            "binfmt_misc cannot run arm64 programs here ({}: {e}); install qemu-user-static and \
             binfmt-support and run as root",
            entry.display()
        )),
    }
}
