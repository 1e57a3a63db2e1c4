//! The backups' line: the newest snapshot and its age against the interval.

use super::BackupAge;
use crate::seed::Config;
use crate::state;
use crate::util::report::Report;
use crate::util::time::format_duration;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The newest snapshot's age, against the backup interval (only when the seed asks for backups).
pub(super) fn backup(cfg: &Config, root: &Path, r: &mut Report) -> Option<BackupAge> {
    let spec = cfg.backup.as_ref()?;
    let dir = crate::util::fs::under(root, &spec.dir);
    let newest = crate::day2::backup::newest(&dir);
    let interval = spec.interval.as_secs();
    let age = newest.as_ref().map(|(_, t)| {
        SystemTime::now()
            .duration_since(*t)
            .unwrap_or_default()
            .as_secs()
    });
    let since = |d: u64| format_duration(Duration::from_secs(d));
    let every = format_duration(spec.interval);
    match (&newest, age) {
        (Some((p, _)), Some(a)) if a > 2 * interval => r.warn(
            "backup",
            format!(
                "the newest snapshot {} is {} old, more than twice the interval ({every}): is {} running?",
                p.display(),
                since(a),
                cfg.backup_unit_names().1
            ),
        ),
        (Some((p, _)), Some(a)) => r.ok(
            "backup",
            format!("the newest snapshot {} is {} old (interval {every})", p.display(), since(a)),
        ),
        // None yet: late only once the install is older than twice the interval.
        _ if stamp_age(root).is_some_and(|a| a > 2 * interval) => r.warn(
            "backup",
            format!("no snapshot in {} although etcd was installed {} ago (interval {every})", spec.dir.display(), since(stamp_age(root).unwrap_or(0))),
        ),
        _ => r.ok("backup", format!("no snapshot in {} yet (interval {every})", spec.dir.display())),
    }
    Some(BackupAge {
        dir: spec.dir.clone(),
        newest: newest.map(|(p, _)| p),
        age_secs: age,
        interval_secs: interval,
    })
}

pub(super) fn stamp_age(root: &Path) -> Option<u64> {
    let t = std::fs::metadata(state::path(root, state::STAMP))
        .and_then(|m| m.modified())
        .ok()?;
    Some(
        SystemTime::now()
            .duration_since(t)
            .unwrap_or_default()
            .as_secs(),
    )
}
