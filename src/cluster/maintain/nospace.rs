//! NOSPACE recovered: compaction when asked, every member defragmented in the same order as any
//! other run (by ID, the leader last), the alarm disarmed only with headroom under the quota.

use super::{recovery_order, url_of, Maintainer, HEADROOM_PERCENT};
use crate::cluster::lock;
use crate::cluster::turn::poll;
use crate::cluster::voters::Me;
use crate::etcd::member::ApiMember;
use crate::seed::Quota;
use crate::util::retry::Next;
use crate::util::size::format_bytes;
use crate::util::text::printable;
use crate::util::time::format_duration;
use anyhow::{anyhow, bail, Result};
use std::time::Duration;

impl Maintainer<'_> {
    /// Before each member under NOSPACE: no turn held (a rolling restart finishes first) and every
    /// other voter answers (one that is defragmenting does not).
    fn wait_quiet(&self, members: &[ApiMember], m: &ApiMember) -> Result<()> {
        let them = Me {
            id: Some(m.id),
            name: m.name.clone(),
        };
        let quiet = poll(self.o.timeout, Duration::from_millis(250)).run(
            |_| {
                if let Ok(Some(holder)) = self.peers.api.get(lock::RESTART) {
                    return Ok(Next::Again(format!(
                        "{} holds the turn",
                        crate::util::text::excerpt(&holder, 64)
                    )));
                }
                Ok(match self.peers.ready_besides(members, &them) {
                    Ok(_) => Next::Done(()),
                    Err(e) => Next::Again(e.message),
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
            .map_err(|e| anyhow!("compacting to revision {to}: {e}"))?;
        Ok(Some(format!(
            "compacted to revision {to} (keeping the last {keep} of {})",
            st.revision
        )))
    }

    /// Every member defragmented in turn, then the alarm disarmed if there is room again.
    pub(super) fn nospace(&self, raised_by: &[(u64, String)]) -> Result<String> {
        let members = self.peers.api.list()?;
        let name_of = |id: u64| {
            members
                .iter()
                .find(|m| m.id == id)
                .map(|m| printable(&m.name).into_owned())
                .unwrap_or_else(|| format!("{id:x}"))
        };
        let by: Vec<String> = raised_by.iter().map(|(id, _)| name_of(*id)).collect();
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
            self.wait_quiet(&members, m)?;
            if m.id == leader {
                self.peers.hand_over_leadership(url, "defragmenting", &done);
            }
            let d = self.defragment(&printable(&m.name), url)?;
            log::info!("{}", d.line());
            lines.push(d.line());
            done.push(m.id);
        }
        lines.push(self.disarm_if_room(&members, raised_by)?);
        Ok(lines.join("; "))
    }

    fn disarm_if_room(&self, members: &[ApiMember], raised: &[(u64, String)]) -> Result<String> {
        let in_use = members
            .iter()
            .filter_map(url_of)
            .filter_map(|u| self.db_at(u).ok())
            .map(|db| db.in_use)
            .max()
            .unwrap_or(0);
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
        for (id, alarm) in raised.iter().filter(|(_, a)| a == "NOSPACE") {
            self.peers
                .api
                .disarm(*id, alarm)
                .map_err(|e| anyhow!("disarming NOSPACE of member {id:x}: {e}"))?;
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
