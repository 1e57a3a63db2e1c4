//! Running the etcd programs: `etcd --help`/`--version` (what flags a binary takes), and
//! etcdctl/etcdutl for snapshots.

use crate::util::fs;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What `bin <arg>` prints on stdout and stderr together; `None` when it cannot be run.
fn output_of(bin: &Path, arg: &str) -> Option<String> {
    let out = Command::new(bin)
        .arg(arg)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let mut s = String::from_utf8_lossy(&out.stdout).to_string();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    Some(s)
}

/// `etcd --help` of a binary.
pub fn etcd_help(bin: &Path) -> Option<String> {
    output_of(bin, "--help")
}

/// The version `etcd --version` reports.
pub fn etcd_version(bin: &Path) -> Option<String> {
    output_of(bin, "--version")?
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
