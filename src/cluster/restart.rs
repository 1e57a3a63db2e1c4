//! Restarting a running member without costing quorum: one member at a time (a lease-held lock in
//! etcd), only while every other voter the cluster lists is started and healthy, leadership
//! handed over first, and the lock kept until a **new** etcd process runs this member, answers
//! healthy and has caught up with the leader.
//!
//! Asking the service manager is not doing: `systemctl restart --no-block` returns once the job
//! is queued, and the old process may go on answering for seconds (a busy job queue, a slow stop).
//! So the turn ends only when both witnesses that spoke before the restart name another process:
//! the service manager's main process (pid and start time), and etcd's own
//! `process_start_time_seconds` on `/metrics`.

use super::instance::Instance;
use super::lock::{self, ClusterLock};
use super::voters::{other_voters, Me};
use crate::etcd::api::Api;
use crate::etcd::health::Checker;
use crate::host::systemd::ServiceManager;
use crate::seed::Config;
use crate::state;
use crate::util::error::Error;
use crate::util::retry::{Backoff, Next, Policy};
use crate::util::text::printable;
use crate::util::time::format_duration;
use anyhow::{anyhow, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// Polls at most every `max` (jitter included): a waiting member notices a freed turn, and the
/// holder notices its new process, within that.
fn poll(within: Duration, max: Duration) -> Policy {
    Policy {
        backoff: Backoff {
            first: max / 4,
            max: max * 2 / 3,
            jitter: true,
        },
        attempts: None,
        within,
        last_try_at_deadline: true,
    }
}

/// How often, at most, a waiting member asks for the turn (a read of one key while it is held:
/// a few requests a second are nothing to etcd, and the turn passes on without a gap).
const TURN_POLL: Duration = Duration::from_millis(250);
/// How often, at most, the holder asks whether its new process is up.
const BACK_POLL: Duration = Duration::from_millis(200);

/// Marks a restart as wanted (the files etcd reads are installed): a run that cannot take its
/// turn, or dies waiting, leaves it for the next run to do.
pub fn want(root: &Path, why: &str) -> Result<()> {
    state::write(root, state::RESTART_PENDING, &format!("{why}\n"))
}

pub fn pending(root: &Path) -> Option<String> {
    state::read(root, state::RESTART_PENDING).map(|s| s.trim().to_string())
}

/// The restart happened, or a start made it moot (etcd was not running).
pub fn done(root: &Path) {
    let _ = std::fs::remove_file(state::path(root, state::RESTART_PENDING));
}

/// The last lines etcd wrote to the journal, for a member that does not come back.
fn journal_tail(unit: &str) -> String {
    let mut c = std::process::Command::new("journalctl");
    c.args(["-u", unit, "-n", "20", "--no-pager", "-o", "cat"]);
    match crate::util::cmd::run(c, "journalctl", None) {
        Ok(t) if !t.trim().is_empty() => format!("; its journal ends:\n{}", t.trim_end()),
        _ => String::new(),
    }
}

struct Restart<'a> {
    cfg: &'a Config,
    api: Api,
    checker: Checker,
    me: Me,
    mine: String,
}

impl Restart<'_> {
    /// Every other voter the cluster lists is started and answers healthy (on any of its client
    /// URLs); their client URLs.
    fn others_ready(&self) -> Result<Vec<String>, Error> {
        let members = self
            .api
            .list()
            .map_err(|e| e.about("asking the member list"))?;
        let voters = other_voters(&members, &self.me)?;
        let checker = &self.checker;
        let bad: Vec<String> = std::thread::scope(|s| {
            let checks: Vec<_> = voters
                .iter()
                .map(|(name, urls)| {
                    s.spawn(move || {
                        let all = checker.check_all(urls);
                        (!all.iter().any(|h| h.healthy)).then(|| match all.first() {
                            Some(h) => format!(
                                "{name} ({}: {})",
                                h.endpoint,
                                h.error.as_deref().unwrap_or("unhealthy")
                            ),
                            None => name.clone(),
                        })
                    })
                })
                .collect();
            checks.into_iter().filter_map(|h| h.join().ok()?).collect()
        });
        if bad.is_empty() {
            Ok(voters.into_iter().flat_map(|(_, urls)| urls).collect())
        } else {
            Err(Error::busy(format!(
                "waiting for {} to be healthy",
                printable(&bad.join(", "))
            )))
        }
    }

    /// When this member leads, leadership goes to a healthy other voter first: the rest never go
    /// through an election while this one restarts.
    fn hand_over_leadership(&self) {
        let Ok(st) = self.api.status_of(&self.mine) else {
            return;
        };
        if st.leader != st.member_id {
            return;
        }
        let Ok(members) = self.api.list() else { return };
        if let Some(next) = members
            .iter()
            .find(|m| m.id != st.member_id && m.started() && !m.learner)
        {
            match self.api.move_leader(&self.mine, next.id) {
                Ok(()) => log::info!(
                    "handed leadership to {} before restarting",
                    printable(&next.name)
                ),
                Err(e) => log::warn!("could not hand leadership over ({e}); restarting anyway"),
            }
        }
    }

    /// The highest raft index the other voters report now: the leader's (0 when none says).
    fn leader_index(&self, others: &[String]) -> u64 {
        others
            .iter()
            .filter_map(|e| self.api.status_of(e).ok())
            .map(|st| st.raft_index)
            .max()
            .unwrap_or(0)
    }

    /// Both witnesses asked at once.
    fn instance(&self, services: &dyn ServiceManager, unit: &str) -> Instance {
        let (api, mine) = (&self.api.client, &self.mine);
        std::thread::scope(|s| {
            let started = s.spawn(|| crate::etcd::api::process_start(api, mine).ok());
            let main = services.main_process(unit);
            Instance {
                main,
                started: started.join().ok().flatten(),
            }
        })
    }

    /// A new process runs this member, answers healthy, and its raft index reached `target`.
    fn back(
        &self,
        services: &dyn ServiceManager,
        unit: &str,
        before: &Instance,
        target: u64,
    ) -> Result<Instance, Error> {
        let now = self.instance(services, unit);
        if let Some(why) = before.not_replaced_by(&now) {
            return Err(Error::busy(why));
        }
        let health = self.checker.check(&self.mine);
        if !health.healthy {
            return Err(Error::busy(format!(
                "the new process is not healthy yet: {}",
                health.error.as_deref().unwrap_or("unhealthy")
            )));
        }
        match self.api.status_of(&self.mine) {
            Ok(st) if st.raft_index >= target => Ok(now),
            Ok(st) => Err(Error::busy(format!(
                "raft index {} of {target}",
                st.raft_index
            ))),
            Err(e) => Err(e),
        }
    }
}

/// This member's turn to restart: the restart lock (none when the cluster has one member) with
/// every other voter healthy. Files change only once it is held.
pub struct Turn<'a> {
    r: Restart<'a>,
    held: Option<ClusterLock>,
    /// The other voters' client URLs when the turn was taken.
    others: Vec<String>,
    why: String,
}

/// How many members the cluster has, as it says (None when no member answers).
fn cluster_size(api: &Api) -> Option<usize> {
    api.list().ok().map(|m| m.len())
}

/// Waits (up to `etcd_restart_timeout`) for this member's turn to restart etcd, then marks the
/// restart as wanted. Without a turn it fails having changed nothing.
pub fn take_turn<'a>(cfg: &'a Config, root: &Path, why: &str) -> Result<Turn<'a>> {
    let unit = cfg.unit_name();
    let client = crate::etcd::client::tls_client(cfg, root)?;
    let mine = cfg.this_member.url(cfg.client_port);
    let api = Api::new(client.clone(), cfg.client_urls());
    let me = Me {
        id: api.status_of(&mine).ok().map(|s| s.member_id),
        name: cfg.this_member.name.clone(),
    };
    let r = Restart {
        cfg,
        api,
        checker: Checker::from_client(client),
        me,
        mine,
    };
    // Alone by the cluster's own word (or by the seed's, when nothing answers): no one to wait for.
    let alone = cluster_size(&r.api).map_or(cfg.members.len() <= 1, |n| n <= 1);
    let (held, others) = if alone {
        (None, Vec::new())
    } else {
        let (held, others) = wait_for_turn(&r, &unit, why)?;
        (Some(held), others)
    };
    want(root, why)?;
    Ok(Turn {
        r,
        held,
        others,
        why: why.to_string(),
    })
}

/// Polls (at most every second) until the restart lock is free and taken, with every other
/// voter started and healthy.
fn wait_for_turn(r: &Restart, unit: &str, why: &str) -> Result<(ClusterLock, Vec<String>)> {
    let mut last = String::new();
    let me = printable(&r.me.name).into_owned();
    let turn = poll(r.cfg.restart_timeout, TURN_POLL).run(
        |_| {
            match r.api.get(lock::RESTART) {
                Ok(Some(holder)) => {
                    return Ok(Next::Again(format!(
                        "{} is restarting",
                        crate::util::text::excerpt(&holder, 64)
                    )))
                }
                Ok(None) => {}
                Err(e) => return Ok(Next::Again(format!("asking the cluster: {e}"))),
            }
            Ok(
                match ClusterLock::acquire(&r.api, lock::RESTART, &r.me.name) {
                    Ok(None) => Next::Again("another member took the turn first".to_string()),
                    Err(e) => Next::Again(format!("asking the cluster: {e}")),
                    Ok(Some(held)) => match r.others_ready() {
                        Ok(others) => Next::Done((held, others)),
                        Err(why) => Next::Again(why.message),
                    },
                },
            )
        },
        |why, _, _| {
            if *why != last {
                log::info!("restart of {unit} on {me} waits for its turn: {why}");
                last = why.clone();
            }
        },
    )?;
    turn.map_err(|g| {
        anyhow!(
            "{unit} was not restarted ({why}): no turn within etcd_restart_timeout ({}): {}; \
             nothing was changed",
            format_duration(r.cfg.restart_timeout),
            g.last
        )
    })
}

impl Turn<'_> {
    /// Restarts etcd (leadership handed over first) and keeps the turn until a new process runs
    /// this member, healthy and caught up with the leader's raft index from before.
    pub fn restart(self, root: &Path, services: &dyn ServiceManager) -> Result<()> {
        let unit = self.r.cfg.unit_name();
        // The process that runs now is asked of both witnesses while leadership moves.
        let (target, before) = std::thread::scope(|s| {
            let before = s.spawn(|| self.r.instance(services, &unit));
            let target = match &self.held {
                Some(_) => {
                    self.r.hand_over_leadership();
                    self.r.leader_index(&self.others)
                }
                None => 0,
            };
            (target, before.join())
        });
        let before = before.map_err(|_| anyhow!("asking which etcd process runs {unit}"))?;
        let asked = Instant::now();
        services.restart(&unit)?;
        match &self.held {
            Some(_) => log::info!(
                "restarting {unit}: {} (one member at a time; holding {})",
                self.why,
                lock::RESTART
            ),
            None => log::info!("restarting {unit}: {}", self.why),
        }
        let back = wait_back(&self.r, services, &unit, &before, target, asked);
        drop(self.held);
        back.map(|_| done(root))
    }
}

/// Waits until a new process runs this member, healthy and caught up, or
/// `etcd_restart_timeout` after the restart was asked.
fn wait_back(
    r: &Restart,
    services: &dyn ServiceManager,
    unit: &str,
    before: &Instance,
    target: u64,
    asked: Instant,
) -> Result<()> {
    let within = r.cfg.restart_timeout.saturating_sub(asked.elapsed());
    let back = poll(within, BACK_POLL).run(
        |_| {
            Ok(match r.back(services, unit, before, target) {
                Ok(now) => Next::Done(now),
                Err(why) => Next::Again(why.message),
            })
        },
        |_, _, _| {},
    )?;
    match back {
        Ok(now) => {
            let pid = now
                .main
                .map(|p| format!(" (pid {})", p.pid))
                .unwrap_or_default();
            log::info!(
                "{} is back: a new etcd process{pid} is healthy and caught up with the leader, \
                 {:.1} s after the restart was asked",
                printable(&r.me.name),
                asked.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(g) => Err(anyhow!(
            "{unit} did not come back healthy and caught up within etcd_restart_timeout ({}): {}{}",
            format_duration(r.cfg.restart_timeout),
            g.last,
            journal_tail(unit)
        )),
    }
}
