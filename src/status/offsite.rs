//! The offsite line: the cluster's last verified upload (a key in etcd, so every member shows
//! it) and its age against the interval; an error when this member's own last run failed after it.

use crate::etcd::api::Api;
use crate::seed::Config;
use crate::state::{RunRecord, OFFSITE};
use crate::util::report::Report;
use crate::util::time::{format_duration, unix_now, utc};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Serialize)]
pub struct LastOffsite {
    /// The cluster's last verified upload: when (UTC) and its object key.
    pub uploaded_at: Option<String>,
    pub object: Option<String>,
    pub age_secs: Option<u64>,
    /// This member's last run: ok or not, and what it did.
    pub this_member_ok: Option<bool>,
    pub this_member_result: Option<String>,
}

pub(super) fn offsite(
    cfg: &Config,
    root: &Path,
    api: Option<&Api>,
    r: &mut Report,
) -> Option<LastOffsite> {
    let backup = cfg.backup.as_ref()?;
    let spec = backup.offsite.as_ref()?;
    let interval = backup.interval.as_secs();
    let last: Option<(i64, String)> = api
        .and_then(|a| a.get(crate::day2::offsite::LAST).ok().flatten())
        .and_then(|v| {
            let (at, key) = v.split_once(' ')?;
            // Any member may answer anything: shown only as printable text.
            Some((at.parse().ok()?, crate::util::text::excerpt(key, 300)))
        });
    let mine = RunRecord::load(root, OFFSITE);
    let age = |at: i64| unix_now().saturating_sub(at).max(0) as u64;
    let since = |d: u64| format_duration(Duration::from_secs(d));
    let store = format!("{}/{}", spec.endpoint, spec.bucket);
    let every = format_duration(backup.interval);
    match (&mine, &last) {
        (Some(m), _) if !m.ok && last.as_ref().is_none_or(|(at, _)| *at <= m.at) => r.error(
            "offsite",
            format!(
                "this member's last offsite upload to {store} failed {} ({} ago): {}",
                utc(m.at),
                since(age(m.at)),
                m.result
            ),
        ),
        (_, Some((at, key))) if age(*at) > 2 * interval => r.warn(
            "offsite",
            format!(
                "the last offsite upload {key} is {} old, more than twice the interval ({every}): \
                 are the members' backup timers running?",
                since(age(*at))
            ),
        ),
        (_, Some((at, key))) => r.ok(
            "offsite",
            format!(
                "the last offsite upload {key} is {} old (interval {every})",
                since(age(*at))
            ),
        ),
        _ if super::backup::stamp_age(root).is_some_and(|a| a > 2 * interval) => r.warn(
            "offsite",
            format!("no offsite upload to {store} recorded in the cluster (interval {every})"),
        ),
        _ => r.ok(
            "offsite",
            format!("no offsite upload to {store} yet (interval {every})"),
        ),
    }
    Some(LastOffsite {
        uploaded_at: last.as_ref().map(|(at, _)| utc(*at)),
        object: last.as_ref().map(|(_, k)| k.clone()),
        age_secs: last.as_ref().map(|(at, _)| age(*at)),
        this_member_ok: mine.as_ref().map(|m| m.ok),
        this_member_result: mine.map(|m| m.result),
    })
}
