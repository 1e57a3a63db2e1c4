//! NOSPACE recovered: compaction when asked, every member defragmented one after another (by ID,
//! the leader last, leadership handed away from whoever leads then), the alarm disarmed only when
//! every member said it has headroom under the quota.
//!
//! etcd refuses leases under NOSPACE, so no lock can keep two runs apart. Instead one run
//! coordinates: the run on the started voter with the lowest ID. Every other run defers to it,
//! whatever it sees of the leader or of who answers, so two runs never defragment at once; a run
//! that stops being the coordinator (the member list changed) stops before its next member.

use super::{coordinator, recovery_order, url_of, Defragmented, Maintainer, HEADROOM_PERCENT};
use crate::cluster::lock;
use crate::cluster::turn::poll;
use crate::cluster::voters::Me;
use crate::etcd::api::Alarm;
use crate::etcd::member::ApiMember;
use crate::seed::Quota;
use crate::util::retry::Next;
use crate::util::size::format_bytes;
use crate::util::text::printable;
use crate::util::time::format_duration;
use anyhow::{anyhow, bail, Context as _, Result};
use std::time::Duration;

impl Maintainer<'_> {
    /// Before each member under NOSPACE: no turn held (a rolling restart finishes first), every
    /// other voter answers (one that is defragmenting does not), and so does the member itself.
    fn wait_quiet(&self, members: &[ApiMember], m: &ApiMember) -> Result<()> {
        let them = Me {
            id: Some(m.id),
            name: m.name.clone(),
            peer_urls: m.peer_urls.clone(),
        };
        let quiet = poll(self.o.timeout, Duration::from_millis(250)).run(
            |_| {
                if let Ok(Some(holder)) = self.peers.api.get(lock::RESTART) {
                    return Ok(Next::Again(format!(
                        "{} holds the turn",
                        crate::util::text::excerpt(&holder, 64)
                    )));
                }
                if let Err(e) = self.peers.ready_besides(members, &them) {
                    return Ok(Next::Again(e.message));
                }
                // And the member itself: one that was stopped meanwhile is waited for.
                let h = url_of(m).map(|u| self.peers.checker.check(u));
                Ok(match h {
                    Some(h) if !h.healthy => Next::Again(format!(
                        "{} does not answer: {}",
                        printable(&m.name),
                        h.error.as_deref().unwrap_or("unhealthy")
                    )),
                    _ => Next::Done(()),
                })
            },
            |_, _, _| {},
        )?;
        quiet.map_err(|g| {
            anyhow!(
                "NOSPACE recovery stopped before {}: {} for {}",
                printable(&m.name),
                g.last,
                format_duration(self.o.timeout)
            )
        })
    }

    fn compact(&self) -> Result<Option<String>> {
        let keep = self.o.compact_keep_revisions;
        if keep == 0 {
            return Ok(None);
        }
        let st = self.peers.api.status_of(&self.peers.mine)?;
        let Some(to) = st.revision.checked_sub(keep).filter(|r| *r > 0) else {
            return Ok(None);
        };
        self.peers
            .api
            .compact(to)
            .with_context(|| format!("compacting to revision {to}"))?;
        Ok(Some(format!(
            "compacted to revision {to} (keeping the last {keep} of {})",
            st.revision
        )))
    }

    /// Whether this run coordinates NOSPACE recovery; Err names the member whose run does.
    fn coordinates(&self, members: &[ApiMember]) -> Result<(), String> {
        let Some(c) = coordinator(members) else {
            return Err("no started voter".into());
        };
        if self.peers.me.id == Some(c.id) {
            return Ok(());
        }
        Err(printable(&c.describe()).into_owned())
    }

    /// Every member defragmented in turn, then the alarm disarmed if there is room again; or,
    /// on any other member than the coordinator, nothing.
    /// One member's turn: waited for until all is quiet, then defragmented. A member that stops
    /// answering between the wait and its defragmentation (stopped, restarted) is waited for
    /// again, within the same timeout, not given up on.
    fn defragment_when_quiet(
        &self,
        members: &[ApiMember],
        m: &ApiMember,
        url: &str,
        done: &[u64],
    ) -> Result<Defragmented> {
        let name = printable(&m.name).into_owned();
        let started = std::time::Instant::now();
        loop {
            self.wait_quiet(members, m)?;
            let now = self.peers.api.list()?;
            if let Err(who) = self.coordinates(&now) {
                bail!(
                    "NOSPACE recovery stopped before {name}: the member list changed, and {who} \
                     coordinates it now"
                );
            }
            // Whoever leads now (a leader may have changed since the order was made).
            self.peers.hand_over_leadership(url, "defragmenting", done);
            match self.db_at(url) {
                Ok(before) => return self.defragment_from(&name, url, before),
                Err(e) if started.elapsed() < self.o.timeout => log::warn!(
                    "{name} stopped answering before its defragmentation ({}); waiting for it",
                    printable(&e.message)
                ),
                Err(e) => {
                    return Err(anyhow::Error::from(e))
                        .with_context(|| format!("asking {name} for its db size"))
                }
            }
        }
    }

    pub(super) fn nospace(&self, raised_by: &[(u64, Alarm)]) -> Result<String> {
        let members = self.peers.api.list()?;
        let name_of = |id: u64| {
            members
                .iter()
                .find(|m| m.id == id)
                .map(|m| printable(&m.name).into_owned())
                .unwrap_or_else(|| format!("{id:x}"))
        };
        let by: Vec<String> = raised_by.iter().map(|(id, _)| name_of(*id)).collect();
        if let Err(who) = self.coordinates(&members) {
            return Ok(format!(
                "the cluster has a NOSPACE alarm (raised by {}): its recovery is the run of {who} \
                 (the voter with the lowest ID coordinates it, so no two runs defragment at once); \
                 nothing done here",
                by.join(", ")
            ));
        }
        log::warn!(
            "the cluster has a NOSPACE alarm (raised by {}): it refuses writes until the alarm is \
             disarmed; defragmenting every member, the leader last",
            by.join(", ")
        );
        let mut lines: Vec<String> = self.compact()?.into_iter().collect();
        let leader = self.peers.api.status_of(&self.peers.mine)?.leader;
        let mut done = Vec::new();
        for m in recovery_order(&members, leader) {
            let Some(url) = url_of(m) else {
                log::warn!(
                    "{} lists no https client URL: not defragmented",
                    printable(&m.describe())
                );
                continue;
            };
            let d = self.defragment_when_quiet(&members, m, url, &done)?;
            log::info!("{}", d.line());
            lines.push(d.line());
            done.push(m.id);
        }
        lines.push(self.disarm_if_room(&members, raised_by)?);
        Ok(lines.join("; "))
    }

    fn disarm_if_room(&self, members: &[ApiMember], raised: &[(u64, Alarm)]) -> Result<String> {
        // Fail closed: a member that does not say how much of its db is in use keeps the alarm.
        let mut in_use = 0;
        for m in members {
            let db = url_of(m)
                .ok_or_else(|| anyhow!("lists no https client URL"))
                .and_then(|u| self.db_at(u).map_err(anyhow::Error::from))
                .with_context(|| {
                    format!(
                        "kept the NOSPACE alarm: {} did not say how much of its db is in use",
                        printable(&m.name)
                    )
                })?;
            in_use = in_use.max(db.in_use);
        }
        let quota = self.quota();
        if in_use.saturating_mul(100) >= quota.bytes.saturating_mul(HEADROOM_PERCENT) {
            bail!(
                "kept the NOSPACE alarm: {} still in use of the {quota} quota after \
                 defragmenting every member, over the {HEADROOM_PERCENT}% it takes to disarm it \
                 safely. The space holds live keys or their history: {}",
                format_bytes(in_use),
                self.advice(quota.bytes)
            );
        }
        for (id, alarm) in raised.iter().filter(|(_, a)| *a == Alarm::Nospace) {
            self.peers
                .api
                .disarm(*id, alarm)
                .with_context(|| format!("disarming NOSPACE of member {id:x}"))?;
        }
        Ok(format!(
            "disarmed the NOSPACE alarm: {} in use of the {quota} quota",
            format_bytes(in_use)
        ))
    }

    /// The quota the members run with: as they say it (3.6 on), else as the seed sets it.
    fn quota(&self) -> Quota {
        let reported = self.peers.api.status_of(&self.peers.mine);
        Quota::running(reported.map_or(0, |st| st.db_size_quota), self.cfg)
    }

    fn advice(&self, quota: u64) -> String {
        let retention = self.cfg.setting("auto-compaction-retention").unwrap_or("0");
        let bigger = format!(
            "or give etcd more room: quota-backend-bytes (now {}; etcd suggests at most 8 GiB) in \
             etcd_settings_user, then apply",
            format_bytes(quota)
        );
        if retention.trim().is_empty() || retention.trim() == "0" {
            format!(
                "etcd never compacts on its own here (auto-compaction-retention is 0): compact \
                 (etcd_maintenance.compact_keep_revisions, or etcd_settings_user: \
                 {{auto-compaction-retention: \"1h\"}}), delete what is not needed, {bigger}"
            )
        } else {
            format!("delete what is not needed, {bigger}")
        }
    }
}
