//! `maintain`: the database looked after without a person at 3 a.m.
//!
//! - A member whose db file is mostly free pages (over `fragmentation` percent, and at least
//!   `min_db_size`) is defragmented in the **same cluster turn as restarts**: never two members at
//!   once, never during a rolling restart, only while every other voter is healthy, and never
//!   while it leads (leadership is handed away first; a leading member also lets fragmented
//!   followers go first, so the leader goes last).
//! - A NOSPACE alarm (the cluster refuses writes) is recovered: optionally compacted first, then
//!   every member defragmented one at a time, followers first, the leader last, and the alarm
//!   disarmed only when the space in use is back under 80 % of the quota. etcd refuses new
//!   leases while the alarm is raised, so the turn cannot be held as a lock then: the run waits,
//!   before each member, until no turn is held and every other member answers (a member that is
//!   defragmenting does not), and every run goes through the members in the same order.

use crate::cluster::lock::ClusterLock;
use crate::cluster::node::Node;
use crate::cluster::turn::{poll, Peers, Standing};
use crate::etcd::api::Alarm;
use crate::etcd::member::{is_member_url, ApiMember};
use crate::seed::Config;
use crate::state::RunRecord;
use crate::util::error::Error;
use crate::util::retry::Next;
use crate::util::size::format_bytes;
use crate::util::text::printable;
use crate::util::time::{format_duration, unix_now};
use anyhow::{anyhow, bail, Context as _, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// Disarm NOSPACE only when in use is under this share of the quota (percent): headroom, so the
/// alarm does not fire again with the next writes.
pub const HEADROOM_PERCENT: u64 = 80;

/// The least a defragmentation is waited for: about a second per GiB, and etcd allows 8 GiB.
const DEFRAG_WAIT: Duration = Duration::from_secs(600);

/// What one run is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub fragmentation: u8,
    pub min_db_size: u64,
    /// Compact to the current revision minus this before recovering from NOSPACE; 0: never.
    pub compact_keep_revisions: u64,
    /// How long to wait for the turn, and for a member to answer again after defragmenting.
    pub timeout: Duration,
}

/// A member's backend, as it reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Db {
    pub size: u64,
    pub in_use: u64,
}

impl Db {
    /// The share of the file (percent) that holds no data.
    pub fn fragmentation(&self) -> f64 {
        if self.size == 0 {
            return 0.0;
        }
        self.size.saturating_sub(self.in_use) as f64 * 100.0 / self.size as f64
    }

    pub fn describe(&self) -> String {
        format!(
            "{} db, {} in use ({:.0}% fragmented)",
            format_bytes(self.size),
            format_bytes(self.in_use),
            self.fragmentation()
        )
    }
}

/// Why a member needs no defragmenting; None when it does.
pub fn why_not_defrag(db: &Db, o: &Options) -> Option<String> {
    if db.size < o.min_db_size {
        return Some(format!(
            "{}: under the {} it takes to be worth a defragmentation",
            db.describe(),
            format_bytes(o.min_db_size)
        ));
    }
    if db.fragmentation() < f64::from(o.fragmentation) {
        return Some(format!(
            "{}: under the {}% threshold",
            db.describe(),
            o.fragmentation
        ));
    }
    None
}

/// The order NOSPACE recovery goes through the members: by ID, the leader last. Every run
/// computes the same order, so two runs at once work on the same member, never on two.
pub fn recovery_order(members: &[ApiMember], leader: u64) -> Vec<&ApiMember> {
    let mut order: Vec<&ApiMember> = members.iter().collect();
    order.sort_by_key(|m| (m.id == leader, m.id));
    order
}

/// Who coordinates NOSPACE recovery: the started voter with the lowest ID. Every run computes
/// it from the same list, whatever it sees of the leader or of who answers.
pub fn coordinator(members: &[ApiMember]) -> Option<&ApiMember> {
    members
        .iter()
        .filter(|m| m.started() && !m.learner)
        .min_by_key(|m| m.id)
}

/// A member's first plain https client URL.
fn url_of(m: &ApiMember) -> Option<&String> {
    m.client_urls.iter().find(|u| is_member_url(u))
}

struct Maintainer<'a> {
    cfg: &'a Config,
    root: &'a Path,
    o: &'a Options,
    peers: Peers,
}

/// One member defragmented: its name, its db before and after, how long it was busy.
struct Defragmented {
    name: String,
    before: Db,
    after: Db,
    busy: Duration,
}

impl Defragmented {
    fn line(&self) -> String {
        format!(
            "defragmented {}: {} → {} ({} reclaimed), busy {:.2} s",
            self.name,
            format_bytes(self.before.size),
            format_bytes(self.after.size),
            format_bytes(self.before.size.saturating_sub(self.after.size)),
            self.busy.as_secs_f64()
        )
    }
}

impl Maintainer<'_> {
    fn db_at(&self, endpoint: &str) -> Result<Db, Error> {
        let st = self.peers.api.status_of(endpoint)?;
        Ok(Db {
            size: st.db_size,
            in_use: st.db_size_in_use,
        })
    }

    /// The other started voters over the threshold, by name.
    fn others_fragmented(&self) -> Vec<String> {
        let Ok(members) = self.peers.api.list() else {
            return vec![];
        };
        members
            .iter()
            .filter(|m| Some(m.id) != self.peers.me.id && m.started() && !m.learner)
            .filter(|m| {
                url_of(m)
                    .and_then(|u| self.db_at(u).ok())
                    .is_some_and(|db| why_not_defrag(&db, self.o).is_none())
            })
            .map(|m| printable(&m.name).into_owned())
            .collect()
    }

    /// Defragments the member at `endpoint` and waits until it answers healthy again.
    fn defragment(&self, name: &str, endpoint: &str) -> Result<Defragmented> {
        let before = self
            .db_at(endpoint)
            .with_context(|| format!("asking {name} for its db size"))?;
        self.defragment_from(name, endpoint, before)
    }

    /// `defragment` of a member whose db was just read as `before`.
    fn defragment_from(&self, name: &str, endpoint: &str, before: Db) -> Result<Defragmented> {
        log::info!("defragmenting {name} ({})", before.describe());
        let start = Instant::now();
        self.peers
            .api
            .defragment(endpoint, self.o.timeout.max(DEFRAG_WAIT))
            .with_context(|| format!("defragmenting {name} at {endpoint}"))?;
        let busy = start.elapsed();
        self.wait_healthy(name, endpoint)?;
        let after = self.db_at(endpoint).unwrap_or(before);
        Ok(Defragmented {
            name: name.to_string(),
            before,
            after,
            busy,
        })
    }

    fn wait_healthy(&self, name: &str, endpoint: &str) -> Result<()> {
        let back = poll(self.o.timeout, Duration::from_millis(200)).run(
            |_| {
                let h = self.peers.checker.check(endpoint);
                Ok(match h.healthy {
                    true => Next::Done(()),
                    false => Next::Again(h.error.unwrap_or_default()),
                })
            },
            |_, _, _| {},
        )?;
        back.map_err(|g| {
            anyhow!(
                "{name} did not answer healthy within {} of its defragmentation: {}",
                format_duration(self.o.timeout),
                printable(&g.last)
            )
        })
    }

    /// The longest a defragmentation turn is held: the defragmentation's wait, then the wait for
    /// the member to answer again.
    fn hold_for(&self) -> Duration {
        self.o.timeout.max(DEFRAG_WAIT) + self.o.timeout + Duration::from_secs(60)
    }

    /// This member, when it needs it, in its turn.
    fn routine(&self) -> Result<String> {
        let name = printable(&self.cfg.this_member.name).into_owned();
        let db = self
            .db_at(&self.peers.mine)
            .with_context(|| format!("asking {name} ({}) for its status", self.peers.mine))?;
        if let Some(why) = why_not_defrag(&db, self.o) {
            return Ok(format!("nothing to do on {name}: {why}"));
        }
        // etcd writes a whole copy of the db before it drops the old one: without room for it the
        // defragmentation fails half-way, on the member's own disk.
        let data_dir = &self.cfg.data_dir;
        if let Some((at, free)) = crate::host::disk::free_at(self.root, data_dir) {
            if free < db.size {
                bail!(
                    "{name} was not defragmented: it needs room for a copy of its {} db, and {} \
                     has {} free; nothing was changed",
                    format_bytes(db.size),
                    at.display(),
                    format_bytes(free)
                );
            }
        }
        let held = self.take_turn(&name)?;
        if let Some(lock) = &held {
            let p = &self.peers;
            p.hand_over_leadership(&p.mine, "defragmenting", &[]);
            lock.still_held()
                .with_context(|| format!("{name} was not defragmented"))?;
        }
        let done = self.defragment(&name, &self.peers.mine);
        drop(held);
        Ok(done?.line())
    }

    /// The restart lock with every other voter healthy; none when this member is alone. A leader
    /// lets fragmented followers go first, for up to half the timeout.
    fn take_turn(&self, name: &str) -> Result<Option<ClusterLock>> {
        if self.peers.standing(self.cfg, false)? == Standing::Alone {
            log::warn!(
                "{name} is the only member: the cluster answers nothing while it defragments"
            );
            return Ok(None);
        }
        let start = Instant::now();
        let hold_back = || {
            if start.elapsed() >= self.o.timeout / 2 {
                return None;
            }
            self.peers.leads(&self.peers.mine)?;
            let waiting = self.others_fragmented();
            (!waiting.is_empty()).then(|| {
                format!(
                    "this member leads, so it goes last: {} over the threshold first",
                    waiting.join(", ")
                )
            })
        };
        let held = self
            .peers
            .wait_for_turn(
                self.o.timeout,
                self.hold_for(),
                "defragmentation",
                &hold_back,
            )?
            .map_err(|no| {
                anyhow!(
                    "{name} was not defragmented: no turn within {}: {}; nothing was changed",
                    format_duration(self.o.timeout),
                    no.last
                )
            })?;
        Ok(Some(held.lock))
    }
}

/// One maintenance run on this member; the line that says what it did, also recorded for
/// `status`. An error (kept alarm, no turn) is recorded too.
pub fn run(node: &Node, o: &Options) -> Result<String> {
    let result = run_once(node, o);
    let record = RunRecord {
        at: unix_now(),
        ok: result.is_ok(),
        result: match &result {
            Ok(line) => line.clone(),
            Err(e) => format!("{e:#}"),
        },
    };
    if let Err(e) = record.save(node.root, crate::state::MAINTENANCE) {
        log::warn!("could not record the maintenance run: {e:#}");
    }
    result
}

/// The node's client presents the certificates apply installed (`Certs::Installed`): a scheduled
/// job acts on the node as it is, not on the seed's files.
fn run_once(node: &Node, o: &Options) -> Result<String> {
    let m = Maintainer {
        cfg: node.cfg,
        root: node.root,
        o,
        peers: Peers::new(node, true)?,
    };
    let alarms = m
        .peers
        .api
        .alarms()
        .context("asking the cluster for its alarms")?;
    let nospace: Vec<(u64, Alarm)> = alarms
        .iter()
        .filter(|(_, a)| *a == Alarm::Nospace)
        .cloned()
        .collect();
    if let Some((id, other)) = alarms.iter().find(|(_, a)| *a != Alarm::Nospace) {
        bail!(
            "the cluster has a {other} alarm (member {id:x}): not maintaining it; see etcd's \
             docs on data corruption before anything else"
        );
    }
    if nospace.is_empty() {
        m.routine()
    } else {
        m.nospace(&nospace)
    }
}

#[cfg(test)]
mod mock_tests;
mod nospace;
#[cfg(test)]
mod tests;
mod units;
pub use units::maintenance_units;

/// The `etcd_maintenance` step: its units, installed with the rest, and its timer enabled.
pub fn step(cfg: &Config, spec: &crate::seed::MaintenanceSpec) -> super::timer::TimerStep {
    let does = format!(
        "maintenance every {} (defragment over {}% fragmented, recover NOSPACE)",
        format_duration(spec.interval),
        spec.fragmentation
    );
    super::timer::TimerStep::new(
        cfg.maintenance_unit_names(),
        maintenance_units(cfg, spec),
        does,
    )
    .with(super::textfile::dir_item(cfg))
}
