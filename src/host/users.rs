//! The etcd system user and group, read from and created in the target root's own
//! `/etc/passwd` and `/etc/group` (never the host's NSS, which is wrong under `--root`).

use crate::util::fs::{self as fsutil, Ids};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const SYSUSERS_PATH: &str = "/etc/sysusers.d/etcd-bootstrap.conf";

fn lookup(root: &Path, file: &str, name: &str, field: usize) -> Result<Option<u32>> {
    let path = fsutil::under(root, Path::new(file));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    for line in text.lines() {
        let mut it = line.split(':');
        if it.next() == Some(name) {
            if let Some(id) = it.nth(field - 1).and_then(|s| s.parse().ok()) {
                return Ok(Some(id));
            }
        }
    }
    Ok(None)
}

pub fn uid(root: &Path, user: &str) -> Result<Option<u32>> {
    if user == "root" {
        return Ok(Some(0));
    }
    lookup(root, "/etc/passwd", user, 2)
}

pub fn gid(root: &Path, group: &str) -> Result<Option<u32>> {
    if group == "root" {
        return Ok(Some(0));
    }
    lookup(root, "/etc/group", group, 2)
}

/// Both ids when both exist.
pub fn ids(root: &Path, user: &str, group: &str) -> Result<Option<Ids>> {
    Ok(match (uid(root, user)?, gid(root, group)?) {
        (Some(uid), Some(gid)) => Some(Ids { uid, gid }),
        _ => None,
    })
}

/// The sysusers.d entry: a system user without login, its home the data dir.
pub fn sysusers_conf(user: &str, group: &str, home: &Path) -> String {
    let mut s = String::from("# Written by etcd-bootstrap: the account etcd runs as.\n");
    if user == group {
        s.push_str(&format!(
            "u {user} - \"etcd\" {} /usr/sbin/nologin\n",
            home.display()
        ));
    } else {
        s.push_str(&format!("g {group} -\n"));
        s.push_str(&format!(
            "u {user} - \"etcd\" {} /usr/sbin/nologin\n",
            home.display()
        ));
        s.push_str(&format!("m {user} {group}\n"));
    }
    s
}

fn have(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(cmd))
            .find(|c| c.is_file())
    })
}

fn run(cmd: Command, input: Option<&str>) -> Result<()> {
    let shown = format!("{cmd:?}");
    crate::util::cmd::run(cmd, &shown, input).map(|_| ())
}

/// Creates the user and group if missing: `systemd-sysusers --root` with the sysusers.d entry when
/// the root has systemd's sysusers, else `groupadd`/`useradd --root`.
pub fn ensure(root: &Path, user: &str, group: &str, home: &Path) -> Result<Ids> {
    if let Some(ids) = ids(root, user, group)? {
        return Ok(ids);
    }
    let conf = sysusers_conf(user, group, home);
    let root_arg = format!("--root={}", root.display());
    if let Some(sysusers) = have("systemd-sysusers") {
        let mut c = Command::new(sysusers);
        c.arg(&root_arg).arg("-");
        run(c, Some(&conf)).context("creating the etcd user with systemd-sysusers")?;
    } else {
        if gid(root, group)?.is_none() {
            let mut c = Command::new("groupadd");
            c.args(["--root", &root.display().to_string(), "--system", group]);
            run(c, None).with_context(|| format!("creating group {group}"))?;
        }
        if uid(root, user)?.is_none() {
            let mut c = Command::new("useradd");
            c.args([
                "--root",
                &root.display().to_string(),
                "--system",
                "--no-create-home",
            ])
            .args(["--gid", group, "--home-dir", &home.display().to_string()])
            .args(["--shell", "/usr/sbin/nologin", user]);
            run(c, None).with_context(|| format!("creating user {user}"))?;
        }
    }
    ids(root, user, group)?.with_context(|| {
        format!(
            "user {user} / group {group} still missing from {}/etc/passwd after creating them",
            root.display()
        )
    })
}
