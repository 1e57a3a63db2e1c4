//! `status`'s database part: this member's db and quota, the cluster's alarms, the last
//! maintenance run.

use crate::etcd::api::Api;
use crate::seed::Config;
use crate::util::report::Report;
use crate::util::time::{format_duration, unix_now, utc};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Serialize)]
pub struct Database {
    pub db_size: u64,
    pub db_size_in_use: u64,
    pub fragmentation_percent: f64,
    pub quota: u64,
    /// The quota is etcd's default (quota-backend-bytes unset or 0).
    pub quota_is_default: bool,
    /// Alarms raised in the cluster: "NOSPACE on n1".
    pub alarms: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct LastMaintenance {
    pub at: String,
    pub ok: bool,
    pub result: String,
}

/// This member's db: its size, how much holds data, the quota, and the cluster's alarms.
pub(super) fn database(cfg: &Config, api: &Api, r: &mut Report) -> Option<Database> {
    use crate::util::size::format_bytes;
    let st = api.status_of(&cfg.this_member.url(cfg.client_port)).ok()?;
    let quota = crate::seed::Quota::running(st.db_size_quota, cfg);
    let db = crate::day2::maintain::Db {
        size: st.db_size,
        in_use: st.db_size_in_use,
    };
    let of_quota = format!("{} of the {quota} quota", format_bytes(db.in_use));
    if db.in_use.saturating_mul(100)
        >= quota
            .bytes
            .saturating_mul(crate::day2::maintain::HEADROOM_PERCENT)
    {
        r.warn(
            "database",
            format!(
                "{}: {of_quota} in use, over {}%: compact, delete, or raise quota-backend-bytes",
                db.describe(),
                crate::day2::maintain::HEADROOM_PERCENT
            ),
        );
    } else {
        r.ok("database", format!("{}; {of_quota} in use", db.describe()));
    }
    let members = api.list().unwrap_or_default();
    let alarms: Vec<String> = match api.alarms() {
        Ok(a) => a
            .iter()
            .map(|(id, alarm)| {
                let who = members
                    .iter()
                    .find(|m| m.id == *id)
                    .map(|m| crate::util::text::printable(&m.name).into_owned())
                    .unwrap_or_else(|| format!("{id:x}"));
                format!("{alarm} on {who}")
            })
            .collect(),
        Err(e) => {
            r.warn(
                "alarms",
                format!("could not ask the cluster for its alarms: {e}"),
            );
            vec![]
        }
    };
    if alarms.is_empty() {
        r.ok("alarms", "none");
    }
    for a in &alarms {
        let fix = if a.starts_with("NOSPACE") {
            ": the cluster refuses writes; `etcd-bootstrap maintain` recovers it"
        } else {
            ""
        };
        r.error("alarms", format!("{a}{fix}"));
    }
    Some(Database {
        db_size: db.size,
        db_size_in_use: db.in_use,
        fragmentation_percent: (db.fragmentation() * 10.0).round() / 10.0,
        quota: quota.bytes,
        quota_is_default: quota.default,
        alarms,
    })
}

/// The last `maintain` run, against its interval (when the seed has maintenance on).
pub(super) fn maintenance(cfg: &Config, root: &Path, r: &mut Report) -> Option<LastMaintenance> {
    let last = crate::state::RunRecord::load(root, crate::state::MAINTENANCE);
    let Some(last) = last else {
        if let Some(m) = Some(&cfg.maintenance).filter(|m| m.enabled) {
            r.ok(
                "maintain",
                format!("not run yet (every {})", format_duration(m.interval)),
            );
        }
        return None;
    };
    let at = utc(last.at);
    let age = format_duration(Duration::from_secs(
        unix_now().saturating_sub(last.at).max(0) as u64,
    ));
    let line = format!("last run {at} ({age} ago): {}", last.result);
    if last.ok {
        r.ok("maintain", line);
    } else {
        r.warn("maintain", line);
    }
    Some(LastMaintenance {
        at,
        ok: last.ok,
        result: last.result,
    })
}
