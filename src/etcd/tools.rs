//! Running the etcd programs: `etcd --help`/`--version` (what flags a binary takes), and
//! etcdctl/etcdutl for snapshots.

use crate::util::error::Error;
use crate::util::fs;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How long `etcd --help` or `--version` may take: a binary that hangs is not an etcd to run.
pub const QUESTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What `bin <arg>` prints on stdout and stderr together, within `timeout` (else it is killed).
/// Err says why there is no answer.
pub fn ask(bin: &Path, arg: &str, timeout: std::time::Duration) -> Result<String, Error> {
    let mut c = Command::new(bin);
    c.arg(arg);
    run_within(c, &format!("{} {arg}", bin.display()), timeout).map(|(_, text)| text)
}

/// Runs `cmd` (shown as `shown`), killed past `timeout`: its exit status and what it printed on
/// stdout and stderr together.
pub fn run_within(
    mut cmd: Command,
    shown: &str,
    timeout: std::time::Duration,
) -> Result<(std::process::ExitStatus, String), Error> {
    use std::io::Read;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::other(format!("cannot run {shown}: {e}")))?;
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut s);
            }
            s
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let start = std::time::Instant::now();
    // etcd answers in about 20 ms: polled every 1 ms at first (a fixed 20 ms step made every
    // answer cost 40), backing off to 20 ms for a binary that hangs.
    let mut pause = std::time::Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::other(format!(
                    "{shown} did not finish within {}s; is it an etcd binary for this machine?",
                    timeout.as_secs()
                )));
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(Error::other(format!("waiting for {shown}: {e}"))),
        }
    };
    let mut text = String::from_utf8_lossy(&out.join().unwrap_or_default()).to_string();
    text.push_str(&String::from_utf8_lossy(&err.join().unwrap_or_default()));
    Ok((status, text))
}

/// `etcd --help` of a binary.
pub fn etcd_help(bin: &Path) -> Result<String, Error> {
    ask(bin, "--help", QUESTION_TIMEOUT)
}

/// The version `etcd --version` reports.
pub fn etcd_version(bin: &Path) -> Option<String> {
    ask(bin, "--version", QUESTION_TIMEOUT)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("etcd Version:"))
        .map(|s| s.trim().to_string())
}

/// The etcd tools of the installed release: `etcdutl` reads snapshot files on 3.5+, `etcdctl` on 3.4.
pub struct Tools {
    pub etcdctl: PathBuf,
    pub etcdutl: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotStatus {
    pub revision: u64,
    pub total_keys: u64,
}

impl Tools {
    /// The tools in `bin_dir`, to be run as root: only from a dir no one else can write, and only
    /// when each file is the one etcd-bootstrap installed — its digest recorded at install (the
    /// file's metadata unchanged since), and its content hashed now to the same digest.
    pub fn verified(root: &Path, bin_dir: &Path) -> Result<Tools> {
        let dir = fs::under(root, bin_dir);
        if dir.is_dir() {
            fs::private_dir(root, &dir, 0o755)?;
        }
        let tools = Tools::in_bin_dir(root, bin_dir)?;
        let digests = crate::state::digests::Digests::load(root);
        for bin in std::iter::once(&tools.etcdctl).chain(tools.etcdutl.as_ref()) {
            let refuse = |why: &str| {
                anyhow::anyhow!(
                    "{} {why}: refusing to run it as root; run `etcd-bootstrap apply` to install it again",
                    bin.display()
                )
            };
            let recorded = digests
                .known(bin)
                .ok_or_else(|| refuse("is not the file etcd-bootstrap installed (no digest recorded for it as it is now)"))?;
            let (now, _) = crate::util::io::sha256_file(bin)?.ok_or_else(|| refuse("vanished"))?;
            if now != recorded {
                return Err(refuse(&format!(
                    "has sha256 {now}, not {recorded} as installed"
                )));
            }
        }
        Ok(tools)
    }

    pub fn in_bin_dir(root: &Path, bin_dir: &Path) -> Result<Tools> {
        let dir = fs::under(root, bin_dir);
        let etcdctl = dir.join("etcdctl");
        if !etcdctl.is_file() {
            bail!(
                "{} does not exist: is etcd installed (apply) and is etcd_bin_dir right?",
                etcdctl.display()
            );
        }
        let etcdutl = Some(dir.join("etcdutl")).filter(|p| p.is_file());
        Ok(Tools { etcdctl, etcdutl })
    }

    /// etcdctl speaking v3, with `env` (from etcdctl.env) and `args`.
    pub fn etcdctl(&self, env: &[(String, String)], args: &[&str]) -> Command {
        let mut c = Command::new(&self.etcdctl);
        c.env("ETCDCTL_API", "3")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args);
        c
    }

    /// The tool for offline snapshot work (`snapshot status` / `snapshot restore`).
    pub fn offline(&self) -> Command {
        match &self.etcdutl {
            Some(u) => Command::new(u),
            None => {
                let mut c = Command::new(&self.etcdctl);
                c.env("ETCDCTL_API", "3");
                c
            }
        }
    }

    /// `snapshot status -w json`: proves the file is a whole etcd snapshot (it checks the hash that
    /// `snapshot save` appends) and tells its revision.
    pub fn snapshot_status(&self, file: &Path) -> Result<SnapshotStatus> {
        let mut c = self.offline();
        c.args(["snapshot", "status", "-w", "json"]).arg(file);
        let text = crate::util::cmd::run(
            c,
            &format!("verifying the snapshot {}", file.display()),
            None,
        )?;
        let v: serde_json::Value = serde_json::from_str(text.trim())
            .with_context(|| format!("reading snapshot status of {}: {text}", file.display()))?;
        Ok(SnapshotStatus {
            revision: v.get("revision").and_then(|r| r.as_u64()).unwrap_or(0),
            total_keys: v.get("totalKey").and_then(|r| r.as_u64()).unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_binary_that_hangs_is_cut_off_with_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("etcd");
        std::fs::write(&bin, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let start = std::time::Instant::now();
        let e = ask(&bin, "--help", std::time::Duration::from_millis(300)).unwrap_err();
        assert!(e.message.contains("--help did not finish within 0s"), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        std::fs::write(&bin, "#!/bin/sh\necho out; echo err >&2\n").unwrap();
        let t = ask(&bin, "--help", QUESTION_TIMEOUT).unwrap();
        assert!(t.contains("out") && t.contains("err"), "{t}");
    }
}
