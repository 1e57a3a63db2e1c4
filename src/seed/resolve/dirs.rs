//! The dirs the tool takes over (owner, mode) must be its own, never a system dir: a seed with
//! `etcd_data_dir: /var/lib` would otherwise make /var/lib 0700 etcd:etcd.

use crate::seed::{Config, Seed};
use anyhow::Result;
use std::path::{Component, Path, PathBuf};

/// `/`, the FHS top-level dirs and the shared dirs below them.
const SYSTEM_DIRS: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/etc/systemd",
    crate::state::UNIT_DIR,
    "/etc/default",
    "/etc/ssl",
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/local",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/local/lib",
    "/usr/local/etc",
    "/usr/share",
    "/usr/src",
    "/var/lib",
    "/var/cache",
    "/var/log",
    "/var/tmp",
    "/var/spool",
    "/var/mail",
    "/var/opt",
    "/var/run",
    "/var/backups",
    "/var/local",
    "/var/lock",
    "/etc/ssh",
    "/etc/sudoers.d",
    "/etc/cron.d",
    "/etc/pam.d",
    "/etc/security",
    "/etc/wireguard",
    "/etc/etcd-bootstrap",
    "/usr/lib/systemd",
    "/lib/systemd",
    "/var/lib/systemd",
    "/var/lib/dpkg",
    "/var/lib/apt",
];

/// Trees no dir of etcd's may be in (or be): the kernel's, systemd's unit and state dirs, ssh's,
/// root's home, and the tool's own state (`state::DIR`).
const SYSTEM_TREES: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root/.ssh",
    "/etc/ssh",
    "/etc/systemd",
    "/usr/lib/systemd",
    "/lib/systemd",
    "/var/lib/systemd",
    "/etc/etcd-bootstrap",
    crate::state::DIR,
];

/// Where etcd's data (the data dir, the WAL dir) never goes, whatever the dir's name: config,
/// programs, boot, the kernel's and the runtime's file systems, anyone's home, scratch space.
const NO_DATA_TREES: &[&str] = &[
    "/etc", "/usr", "/boot", "/proc", "/sys", "/dev", "/run", "/var/run", "/home", "/root", "/tmp",
    "/var/tmp", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// `path` with `.` and `..` folded and no trailing slash.
fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

pub(super) fn not_system_dirs(seed: &Seed, cfg: &Config) -> Result<()> {
    let mut dirs: Vec<(&str, PathBuf)> = vec![
        ("etcd_conf_dir", cfg.conf_dir.clone()),
        ("etcd_data_dir", cfg.data_dir.clone()),
        ("etcd_download_dir", cfg.release.download_dir.clone()),
    ];
    if let Some(w) = cfg.path_setting("wal-dir") {
        dirs.push(("wal-dir", w));
    }
    if let Some(b) = &cfg.backup {
        dirs.push(("etcd_backup.dir", b.dir.clone()));
    }
    for (key, dir) in dirs {
        let n = normal(&dir);
        let system = SYSTEM_DIRS.iter().any(|s| Path::new(s) == n)
            || SYSTEM_TREES.iter().any(|t| n.starts_with(t));
        if system {
            return Err(seed.error(
                key,
                &dir.display().to_string(),
                format!(
                    "is {}, a system dir: etcd-bootstrap sets the owner and mode of this dir, so it must be one of \
                     etcd's own (like {})",
                    n.display(),
                    match key {
                        "etcd_conf_dir" => "/etc/etcd",
                        "etcd_data_dir" => "/var/lib/etcd",
                        "etcd_download_dir" => "/opt/etcd",
                        "wal-dir" => "/var/lib/etcd-wal",
                        _ => "/var/backups/etcd",
                    }
                ),
            ));
        }
        let data = matches!(key, "etcd_data_dir" | "wal-dir");
        if let Some(tree) = NO_DATA_TREES.iter().find(|t| data && n.starts_with(t)) {
            return Err(seed.error(
                key,
                &dir.display().to_string(),
                format!(
                    "is {}, under {tree}: etcd's data never goes there (etcd-bootstrap makes this \
                     dir etcd's own, 0700); use a dir of its own like /var/lib/etcd",
                    n.display()
                ),
            ));
        }
    }
    Ok(())
}
