//! Which offsite snapshots go: computed from one listing of this cluster's prefix and the time,
//! nothing else, so every run (and every member) computes the same. Only after a verified upload;
//! never the newest verified snapshot; unverified leftovers only when older than it.

use std::collections::BTreeSet;

/// One snapshot dir under the cluster's prefix: `<YYYYmmddTHHMMSSZ>-rev<16 hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snap {
    pub name: String,
    /// Its meta was written: the object was checked after its upload.
    pub verified: bool,
}

impl Snap {
    /// `YYYYmmdd`, the UTC day it was taken.
    fn day(&self) -> &str {
        self.name.get(..8).unwrap_or("")
    }
}

/// The names to delete. `snaps` in any order; names sort as time does. `today` is
/// `YYYYmmdd` (UTC) of now: the daily window is the last `keep_daily` days up to it.
pub fn to_delete(snaps: &[Snap], keep: u32, keep_daily: u32, today: &str) -> Vec<String> {
    let mut verified: Vec<&Snap> = snaps.iter().filter(|s| s.verified).collect();
    verified.sort_by(|a, b| b.name.cmp(&a.name));
    let Some(newest) = verified.first().map(|s| s.name.clone()) else {
        return vec![];
    };
    let mut kept: BTreeSet<&str> = verified
        .iter()
        .take(keep.max(1) as usize)
        .map(|s| s.name.as_str())
        .collect();
    if keep_daily > 0 {
        let days = last_days(today, keep_daily);
        let mut seen = BTreeSet::new();
        for s in &verified {
            if days.contains(s.day()) && seen.insert(s.day().to_string()) {
                kept.insert(&s.name);
            }
        }
    }
    let mut gone: Vec<String> = snaps
        .iter()
        .filter(|s| {
            if s.verified {
                !kept.contains(s.name.as_str())
            } else {
                s.name < newest
            }
        })
        .map(|s| s.name.clone())
        .collect();
    gone.sort();
    gone
}

/// The `n` UTC days ending with `today` (`YYYYmmdd` each).
fn last_days(today: &str, n: u32) -> BTreeSet<String> {
    let Some(secs) = day_start(today) else {
        return BTreeSet::new();
    };
    (0..n as i64)
        .map(|i| crate::util::time::utc_stamp(secs - i * 86_400)[..8].to_string())
        .collect()
}

/// Seconds at the start of `YYYYmmdd`, UTC (days from civil, Howard Hinnant's algorithm).
pub fn day_start(d: &str) -> Option<i64> {
    if d.len() != 8 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (y, m, dd): (i64, i64, i64) = (
        d[..4].parse().ok()?,
        d[4..6].parse().ok()?,
        d[6..].parse().ok()?,
    );
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::time::utc_stamp;

    fn snap(secs: i64, verified: bool) -> Snap {
        Snap {
            name: format!("{}-rev{:016x}", utc_stamp(secs), secs),
            verified,
        }
    }

    #[test]
    fn day_arithmetic_matches_the_clock() {
        for secs in [0, 951_782_400, 1_795_000_000] {
            let day = &utc_stamp(secs)[..8];
            assert_eq!(day_start(day), Some(secs - secs % 86_400));
        }
        assert_eq!(
            last_days("20260301", 2).into_iter().collect::<Vec<_>>(),
            ["20260228", "20260301"]
        );
    }

    /// 40 runs, one every 6 hours, through a simulated clock: after each, what is left is the
    /// newest `keep` plus the newest of each of the last `keep_daily` days, and never less.
    #[test]
    fn forty_runs_keep_what_they_say() {
        let start = 1_795_000_000;
        let mut store: Vec<Snap> = Vec::new();
        for run in 0..40i64 {
            let now = start + run * 6 * 3600;
            store.push(snap(now, true));
            // A failed upload now and then leaves an unverified dir.
            if run % 7 == 3 {
                store.push(snap(now + 60, false));
            }
            let gone = to_delete(&store, 5, 3, &utc_stamp(now)[..8]);
            store.retain(|s| !gone.contains(&s.name));
            let verified: Vec<&Snap> = store.iter().filter(|s| s.verified).collect();
            let newest5: Vec<String> = {
                let mut v: Vec<String> = verified.iter().map(|s| s.name.clone()).collect();
                v.sort();
                v.into_iter().rev().take(5).collect()
            };
            for n in &newest5 {
                assert!(store.iter().any(|s| &s.name == n), "run {run}: {n} deleted");
            }
            // One per day of the last 3 days (those with any snapshot), beyond the newest 5.
            let days = last_days(&utc_stamp(now)[..8], 3);
            for d in &days {
                let any_that_day = (0..=run).any(|r| &utc_stamp(start + r * 6 * 3600)[..8] == d);
                if any_that_day {
                    assert!(
                        verified.iter().any(|s| s.day() == d),
                        "run {run}: day {d} lost"
                    );
                }
            }
            let extra = verified.len() - newest5.len();
            assert!(extra <= 3, "run {run}: {extra} beyond keep");
            // Unverified leftovers older than the newest verified are gone.
            let newest = &newest5[0];
            assert!(
                store.iter().all(|s| s.verified || &s.name > newest),
                "run {run}"
            );
        }
        assert!(store.len() >= 5);
    }

    #[test]
    fn never_deletes_without_a_verified_snapshot_nor_the_newest() {
        let s = vec![snap(100, false), snap(200, false)];
        assert!(to_delete(&s, 1, 0, "19700101").is_empty());
        let s = vec![snap(100, true), snap(200, true), snap(300, false)];
        assert_eq!(to_delete(&s, 0, 0, "19700101"), vec![s[0].name.clone()]);
    }
}
