//! The day-2 keys: join (from `initial-cluster-state: existing`), backup and restore.

use super::{parse_bool, Render};
use crate::seed::config::{BackupSpec, Day2, JoinSpec, MaintenanceSpec, RestoreSpec};
use crate::seed::defaults::{
    BACKUP_DIR, BACKUP_INTERVAL, BACKUP_KEEP, MAINTENANCE_COMPACT_KEEP, MAINTENANCE_FRAGMENTATION,
    MAINTENANCE_INTERVAL, MAINTENANCE_MIN_DB_SIZE,
};
use crate::seed::schema::RawMaintenance;
use crate::seed::schema::Scalar;
use crate::seed::Seed;
use crate::util::time::parse_duration;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A rendered value and the raw text it came from (for the error's place).
pub(super) struct Got {
    pub(super) value: String,
    pub(super) raw: String,
}

fn scalar(r: &Render, key: &str) -> Result<Got> {
    let raw = r.seed.raw.scalar_or_default(key);
    Ok(Got {
        value: r.render(key, &raw)?.trim().to_string(),
        raw,
    })
}

/// A true-or-false key.
pub(super) fn boolean(seed: &Seed, r: &Render, key: &str) -> Result<bool> {
    let got = scalar(r, key)?;
    parse_bool(&got.value).ok_or_else(|| seed.error(key, &got.raw, "must be true or false"))
}

pub(super) fn nested(r: &Render, key: &str, v: &Option<Scalar>, default: &str) -> Result<Got> {
    let raw = v
        .as_ref()
        .map(|s| s.0.clone())
        .unwrap_or(default.to_string());
    Ok(Got {
        value: r.render(key, &raw)?.trim().to_string(),
        raw,
    })
}

pub(super) fn resolve(
    seed: &Seed,
    r: &Render,
    settings: &BTreeMap<String, String>,
) -> Result<Day2> {
    let join = join(seed, r, settings)?;
    let backup = backup(seed, r)?;
    let restore = restore(seed, r)?;
    let maintenance = maintenance(seed, r)?;
    if restore.is_some() && join.is_some() {
        return Err(seed.error(
            "etcd_restore",
            "etcd_restore",
            "a restore starts a new cluster from the snapshot: initial-cluster-state must be new (every member restores the same snapshot)",
        ));
    }
    Ok(Day2 {
        join,
        backup,
        restore,
        maintenance,
    })
}

fn join(seed: &Seed, r: &Render, settings: &BTreeMap<String, String>) -> Result<Option<JoinSpec>> {
    let state = settings
        .get("initial-cluster-state")
        .map(|s| s.trim())
        .unwrap_or("new");
    let as_learner = boolean(seed, r, "etcd_join_as_learner")?;
    let replace = scalar(r, "etcd_replace_member")?;
    let timeout = scalar(r, "etcd_join_timeout")?;
    let timeout_d = parse_duration(&timeout.value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            seed.error(
                "etcd_join_timeout",
                &timeout.raw,
                "must be a duration like 10m",
            )
        })?;
    let grace = scalar(r, "etcd_replace_grace")?;
    let grace_d = parse_duration(&grace.value).map_err(|_| {
        seed.error(
            "etcd_replace_grace",
            &grace.raw,
            "must be a duration like 60s",
        )
    })?;
    match state {
        "existing" => Ok(Some(JoinSpec {
            as_learner,
            replace: Some(replace.value).filter(|s| !s.is_empty()),
            timeout: timeout_d,
            replace_grace: grace_d,
        })),
        "new" if !replace.value.is_empty() => Err(seed.error(
            "etcd_replace_member",
            &replace.raw,
            "replacing a member joins a running cluster: set etcd_settings_user: {initial-cluster-state: existing}",
        )),
        "new" => Ok(None),
        other => Err(seed.error(
            "initial-cluster-state",
            other,
            "must be new or existing",
        )),
    }
}

/// A non-zero duration scalar.
pub(super) fn duration(seed: &Seed, r: &Render, key: &str) -> Result<std::time::Duration> {
    let got = scalar(r, key)?;
    parse_duration(&got.value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| seed.error(key, &got.raw, "must be a duration like 10m"))
}

fn backup(seed: &Seed, r: &Render) -> Result<Option<BackupSpec>> {
    let Some(b) = &seed.raw.etcd_backup else {
        return Ok(None);
    };
    let dir = nested(r, "etcd_backup.dir", &b.dir, BACKUP_DIR)?;
    if !dir.value.starts_with('/') {
        return Err(seed.error("etcd_backup.dir", &dir.raw, "must be an absolute path"));
    }
    let iv = nested(r, "etcd_backup.interval", &b.interval, BACKUP_INTERVAL)?;
    let interval = parse_duration(&iv.value)
        .ok()
        .filter(|d| d.as_secs() >= 60)
        .ok_or_else(|| {
            seed.error(
                "etcd_backup.interval",
                &iv.raw,
                "must be a duration of at least 1m, like 1h",
            )
        })?;
    let keep = nested(r, "etcd_backup.keep", &b.keep, BACKUP_KEEP)?;
    let keep_n = keep.value.parse::<u32>().map_err(|_| {
        seed.error(
            "etcd_backup.keep",
            &keep.raw,
            "must be a number (0 keeps every snapshot)",
        )
    })?;
    let offsite = match &b.offsite {
        Some(o) => Some(super::offsite::resolve(seed, r, o)?),
        None => None,
    };
    Ok(Some(BackupSpec {
        dir: PathBuf::from(dir.value),
        interval,
        keep: keep_n,
        offsite,
    }))
}

/// On unless `enabled: false`: a seed without the key gets the defaults (which `maintain` uses
/// even when the timer is off).
fn maintenance(seed: &Seed, r: &Render) -> Result<MaintenanceSpec> {
    let none = RawMaintenance::default();
    let m = seed.raw.etcd_maintenance.as_ref().unwrap_or(&none);
    let enabled = nested(r, "etcd_maintenance.enabled", &m.enabled, "true")?;
    let enabled = parse_bool(&enabled.value).ok_or_else(|| {
        seed.error(
            "etcd_maintenance.enabled",
            &enabled.raw,
            "must be true or false",
        )
    })?;
    let iv = nested(
        r,
        "etcd_maintenance.interval",
        &m.interval,
        MAINTENANCE_INTERVAL,
    )?;
    let interval = parse_duration(&iv.value)
        .ok()
        .filter(|d| d.as_secs() >= 60)
        .ok_or_else(|| {
            seed.error(
                "etcd_maintenance.interval",
                &iv.raw,
                "must be a duration of at least 1m, like 6h",
            )
        })?;
    let key = "etcd_maintenance.fragmentation";
    let frag = nested(r, key, &m.fragmentation, MAINTENANCE_FRAGMENTATION)?;
    let fragmentation = frag
        .value
        .trim_end_matches('%')
        .parse::<u8>()
        .ok()
        .filter(|p| (1..=99).contains(p))
        .ok_or_else(|| {
            seed.error(
                key,
                &frag.raw,
                "must be a percentage from 1 to 99 (the share of the db file that holds no data)",
            )
        })?;
    let key = "etcd_maintenance.min_db_size";
    let min = nested(r, key, &m.min_db_size, MAINTENANCE_MIN_DB_SIZE)?;
    let min_db_size = crate::util::size::parse_bytes(&min.value)
        .ok_or_else(|| seed.error(key, &min.raw, "must be a size like 100MiB or 2GiB"))?;
    let key = "etcd_maintenance.compact_keep_revisions";
    let keep = nested(r, key, &m.compact_keep_revisions, MAINTENANCE_COMPACT_KEEP)?;
    let compact_keep_revisions = keep.value.parse::<u64>().map_err(|_| {
        seed.error(
            key,
            &keep.raw,
            "must be a number of revisions (0: never compact; Kubernetes compacts on its own)",
        )
    })?;
    Ok(MaintenanceSpec {
        enabled,
        interval,
        fragmentation,
        min_db_size,
        compact_keep_revisions,
    })
}

fn restore(seed: &Seed, r: &Render) -> Result<Option<RestoreSpec>> {
    let Some(x) = &seed.raw.etcd_restore else {
        return Ok(None);
    };
    let snapshot = r
        .render("etcd_restore.snapshot", &x.snapshot.0)?
        .trim()
        .to_string();
    let sha = r
        .render("etcd_restore.sha256", &x.sha256.0)?
        .trim()
        .to_ascii_lowercase();
    if !["/", "file://", "https://", "http://"]
        .iter()
        .any(|p| snapshot.starts_with(p))
    {
        return Err(seed.error(
            "etcd_restore.snapshot",
            &x.snapshot.0,
            "must be an absolute path or a file://, https:// URL",
        ));
    }
    if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(seed.error(
            "etcd_restore.sha256",
            &x.sha256.0,
            "must be the snapshot's sha256 (64 hex digits); `etcd-bootstrap backup` prints it",
        ));
    }
    let keep = nested(r, "etcd_restore.keep", &x.keep, "false")?;
    let keep_b = parse_bool(&keep.value)
        .ok_or_else(|| seed.error("etcd_restore.keep", &keep.raw, "must be true or false"))?;
    Ok(Some(RestoreSpec {
        snapshot,
        sha256: sha,
        keep: keep_b,
    }))
}
