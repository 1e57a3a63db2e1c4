//! What node_exporter's textfile collector reads from the scheduled jobs: each backup and
//! maintenance run leaves its numbers in `<etcd_metrics_textfile_dir>/etcd-bootstrap-<job>.prom`,
//! written whole (temp, rename) so the collector never reads half a file. The numbers that must
//! outlive a failed run (the last success, its size) are kept in the state dir, one line per
//! target, so a run that fails never erases when the last good one was.
//!
//! An alert on `time() - etcd_bootstrap_backup_last_success_timestamp_seconds{target="offsite"}`
//! sees the cluster's last verified upload from every member (the one that uploaded it, or the
//! cluster's record of it read by the others), not only from the member whose turn it was.

use crate::install::desired::{Item, Meta};
use crate::seed::Config;
use crate::util::fs;
use anyhow::{Context as _, Result};
use std::path::Path;
use std::time::Duration;

/// The scheduled jobs that leave metrics, each in its own file and state record (they may run at
/// the same time: neither rewrites the other's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Backup,
    Maintenance,
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Job::Backup => "backup",
            Job::Maintenance => "maintenance",
        }
    }

    fn state(self) -> &'static str {
        match self {
            Job::Backup => crate::state::BACKUP_METRICS,
            Job::Maintenance => crate::state::MAINTENANCE_METRICS,
        }
    }

    /// The file in the textfile dir; node_exporter reads every `*.prom` there.
    pub fn file(self) -> String {
        format!("etcd-bootstrap-{}.prom", self.name())
    }
}

/// One run of one target (`local` or `offsite` for backups; `""` for maintenance).
#[derive(Debug, Clone, PartialEq)]
pub struct RunOf {
    pub target: &'static str,
    /// Unix seconds.
    pub at: i64,
    pub ok: bool,
    pub duration: Duration,
    /// When the target last succeeded, if this run knows (its own success, or the cluster's
    /// record of another member's upload); `None` keeps what was recorded.
    pub success_at: Option<i64>,
    /// What was stored (bytes), if this run knows; `None` keeps what was recorded.
    pub size: Option<u64>,
}

/// What is kept of a target between runs.
#[derive(Debug, Clone, Default, PartialEq)]
struct Kept {
    target: String,
    at: i64,
    ok: bool,
    duration: f64,
    success_at: Option<i64>,
    size: Option<u64>,
}

impl Kept {
    fn line(&self) -> String {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        format!(
            "target={} at={} ok={} duration={:.3} success_at={} size={}\n",
            if self.target.is_empty() {
                "-"
            } else {
                &self.target
            },
            self.at,
            u8::from(self.ok),
            self.duration,
            opt(self.success_at.map(|v| v.to_string())),
            opt(self.size.map(|v| v.to_string())),
        )
    }

    /// A line `line` wrote; `None` for anything else (a record from another version is dropped,
    /// the next run writes it anew).
    fn parse(line: &str) -> Option<Kept> {
        let mut k = Kept::default();
        for field in line.split_whitespace() {
            let (key, v) = field.split_once('=')?;
            match key {
                "target" => k.target = if v == "-" { "" } else { v }.to_string(),
                "at" => k.at = v.parse().ok()?,
                "ok" => k.ok = v == "1",
                "duration" => k.duration = v.parse().ok()?,
                "success_at" => k.success_at = v.parse().ok(),
                "size" => k.size = v.parse().ok(),
                _ => {}
            }
        }
        Some(k)
    }
}

/// Records `runs` of `job` and rewrites its textfile. Never fails the run it reports on: the
/// backup or maintenance itself did what it did; a textfile that could not be written is a
/// warning in the journal.
pub fn record(cfg: &Config, root: &Path, job: Job, runs: &[RunOf]) {
    if let Err(e) = try_record(cfg, root, job, runs) {
        log::warn!("could not leave the {} metrics: {e:#}", job.name());
    }
}

fn try_record(cfg: &Config, root: &Path, job: Job, runs: &[RunOf]) -> Result<()> {
    let mut kept: Vec<Kept> = crate::state::read(root, job.state())
        .unwrap_or_default()
        .lines()
        .filter_map(Kept::parse)
        .collect();
    for r in runs {
        let k = match kept.iter_mut().find(|k| k.target == r.target) {
            Some(k) => k,
            None => {
                kept.push(Kept {
                    target: r.target.to_string(),
                    ..Kept::default()
                });
                kept.last_mut().expect("just pushed")
            }
        };
        k.at = r.at;
        k.ok = r.ok;
        k.duration = r.duration.as_secs_f64();
        k.success_at = r.success_at.or(k.success_at);
        k.size = r.size.or(k.size);
    }
    // A seed that no longer sends backups offsite: its old success would age into an alert.
    let offsite = cfg.backup.as_ref().is_some_and(|b| b.offsite.is_some());
    kept.retain(|k| job != Job::Backup || k.target != "offsite" || offsite);
    kept.sort_by(|a, b| a.target.cmp(&b.target));
    let text: String = kept.iter().map(Kept::line).collect();
    crate::state::write(root, job.state(), &text)?;
    let Some(dir) = &cfg.textfile_dir else {
        return Ok(());
    };
    write_textfile(root, dir, &job.file(), &render(job, &kept))
}

/// A metric family: its name after the job's prefix, its help, its value for a target if any.
type Family = (&'static str, &'static str, fn(&Kept) -> Option<String>);

/// The exposition text (Prometheus text format 0.0.4).
fn render(job: Job, kept: &[Kept]) -> String {
    let prefix = format!("etcd_bootstrap_{}", job.name());
    let families: [Family; 5] = [
        (
            "last_success_timestamp_seconds",
            "Unix time of the last run that succeeded (offsite: the cluster's last verified upload).",
            |k| k.success_at.map(|v| v.to_string()),
        ),
        (
            "last_run_timestamp_seconds",
            "Unix time of the last run, whatever its outcome.",
            |k| Some(k.at.to_string()),
        ),
        (
            "last_run_success",
            "1 when the last run succeeded, 0 when it failed.",
            |k| Some(u8::from(k.ok).to_string()),
        ),
        (
            "last_duration_seconds",
            "How long the last run took.",
            |k| Some(format!("{:.3}", k.duration)),
        ),
        (
            "last_size_bytes",
            "Size of the last snapshot stored (offsite: as stored, compressed and encrypted).",
            |k| k.size.map(|v| v.to_string()),
        ),
    ];
    let mut out = String::new();
    for (name, help, value) in families {
        let samples: Vec<(String, String)> = kept
            .iter()
            .filter_map(|k| value(k).map(|v| (labels(&k.target), v)))
            .collect();
        if samples.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "# HELP {prefix}_{name} {help}\n# TYPE {prefix}_{name} gauge\n"
        ));
        for (l, v) in samples {
            out.push_str(&format!("{prefix}_{name}{l} {v}\n"));
        }
    }
    out
}

fn labels(target: &str) -> String {
    if target.is_empty() {
        String::new()
    } else {
        format!("{{target=\"{target}\"}}")
    }
}

/// Writes `name` into the textfile dir. The dir may belong to node_exporter's user (it is
/// theirs to read), but the dir it sits in, and every dir above, must be root's alone: nothing
/// above it can be swapped for a link to somewhere else, and the file is made new beside its name
/// and renamed over it, so nothing planted in the dir itself is written through.
fn write_textfile(root: &Path, dir: &Path, name: &str, text: &str) -> Result<()> {
    let entry = fs::under_for_write(root, dir);
    if let Some(parent) = entry.parent() {
        fs::private_dir(root, parent, 0o755)?;
    }
    if std::fs::symlink_metadata(&entry).is_err() {
        // 0755 whatever the umask (the services run with 0077): node_exporter reads it.
        std::fs::create_dir(&entry)
            .and_then(|()| {
                std::fs::set_permissions(
                    &entry,
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                )
            })
            .with_context(|| format!("creating {}", entry.display()))?;
    }
    // A link there was put by root (its dir is root's alone): followed, inside the root.
    let on_host = fs::under(root, dir);
    if !on_host.is_dir() {
        anyhow::bail!(
            "{} (etcd_metrics_textfile_dir) is not a directory",
            on_host.display()
        );
    }
    fs::write_atomic(
        &on_host.join(name),
        0o644,
        fs::Ids::current(),
        &mut text.as_bytes(),
    )?;
    Ok(())
}

/// The textfile dir, made at install when a scheduled job will write there: the jobs run with
/// the system read-only but for their own dirs, and cannot make it themselves.
pub fn dir_item(cfg: &Config) -> Vec<Item> {
    cfg.textfile_dir
        .iter()
        .map(|d| Item::Dir {
            path: d.clone(),
            meta: Meta::root(0o755),
            enforce: false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config whose backups go offsite, its metrics into `dir`.
    fn cfg(dir: Option<&Path>) -> Config {
        let mut c = crate::seed::testing::config(
            "etcd_version: \"3.5.1\"\netcd_backup:\n  offsite:\n    \
             url: https://s3.example.net/backups\n    credentials: /etc/c\n",
        );
        assert!(c.backup.as_ref().unwrap().offsite.is_some());
        c.textfile_dir = dir.map(Path::to_path_buf);
        c
    }

    fn run(target: &'static str, at: i64, ok: bool, size: Option<u64>) -> RunOf {
        RunOf {
            target,
            at,
            ok,
            duration: Duration::from_millis(1500),
            success_at: ok.then_some(at),
            size,
        }
    }

    #[test]
    fn a_failed_run_keeps_the_last_success_and_the_file_is_whole_text_format() {
        let root = tempfile::tempdir().unwrap();
        let c = cfg(Some(Path::new("/var/lib/prometheus/node-exporter")));
        record(
            &c,
            root.path(),
            Job::Backup,
            &[run("local", 100, true, Some(4096))],
        );
        record(
            &c,
            root.path(),
            Job::Backup,
            &[
                run("local", 200, true, Some(8192)),
                run("offsite", 200, true, Some(900)),
            ],
        );
        record(
            &c,
            root.path(),
            Job::Backup,
            &[run("offsite", 300, false, None)],
        );
        let text = std::fs::read_to_string(
            root.path()
                .join("var/lib/prometheus/node-exporter/etcd-bootstrap-backup.prom"),
        )
        .unwrap();
        let p = "etcd_bootstrap_backup_";
        for want in [
            format!("{p}last_success_timestamp_seconds{{target=\"local\"}} 200\n"),
            format!("{p}last_success_timestamp_seconds{{target=\"offsite\"}} 200\n"),
            format!("{p}last_run_timestamp_seconds{{target=\"offsite\"}} 300\n"),
            format!("{p}last_run_success{{target=\"offsite\"}} 0\n"),
            format!("{p}last_run_success{{target=\"local\"}} 1\n"),
            format!("{p}last_size_bytes{{target=\"offsite\"}} 900\n"),
            format!("{p}last_size_bytes{{target=\"local\"}} 8192\n"),
            format!("{p}last_duration_seconds{{target=\"local\"}} 1.500\n"),
            format!("# TYPE {p}last_success_timestamp_seconds gauge\n"),
        ] {
            assert!(text.contains(&want), "{want} in:\n{text}");
        }
        // Every sample line: a name, labels, one number (what the collector parses).
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = l.rsplit_once(' ').unwrap();
            assert!(v.parse::<f64>().is_ok(), "{l}");
        }
        // The seed stops sending backups offsite: the offsite lines go, the local ones stay.
        let mut local_only = c.clone();
        local_only.backup.as_mut().unwrap().offsite = None;
        record(
            &local_only,
            root.path(),
            Job::Backup,
            &[run("local", 400, true, None)],
        );
        let text = std::fs::read_to_string(
            root.path()
                .join("var/lib/prometheus/node-exporter/etcd-bootstrap-backup.prom"),
        )
        .unwrap();
        assert!(!text.contains("target=\"offsite\""), "{text}");
        assert!(text.contains(&format!(
            "{p}last_success_timestamp_seconds{{target=\"local\"}} 400\n"
        )));
    }

    #[test]
    fn maintenance_has_its_own_file_and_no_target_label() {
        let root = tempfile::tempdir().unwrap();
        let c = cfg(Some(Path::new("/metrics")));
        record(
            &c,
            root.path(),
            Job::Maintenance,
            &[run("", 50, true, None)],
        );
        let text =
            std::fs::read_to_string(root.path().join("metrics/etcd-bootstrap-maintenance.prom"))
                .unwrap();
        assert!(text.contains("etcd_bootstrap_maintenance_last_run_timestamp_seconds 50\n"));
        assert!(text.contains("etcd_bootstrap_maintenance_last_run_success 1\n"));
        assert!(!text.contains("size"), "{text}");
    }

    #[test]
    fn no_dir_means_no_file_and_a_link_in_the_dir_is_replaced_not_followed() {
        let root = tempfile::tempdir().unwrap();
        record(
            &cfg(None),
            root.path(),
            Job::Backup,
            &[run("local", 1, true, None)],
        );
        assert!(!root.path().join("var/lib/prometheus").exists());
        let dir = root.path().join("m");
        std::fs::create_dir(&dir).unwrap();
        let victim = root.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("etcd-bootstrap-backup.prom")).unwrap();
        record(
            &cfg(Some(Path::new("/m"))),
            root.path(),
            Job::Backup,
            &[run("local", 2, true, None)],
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        let md = std::fs::symlink_metadata(dir.join("etcd-bootstrap-backup.prom")).unwrap();
        assert!(md.is_file());
    }
}
