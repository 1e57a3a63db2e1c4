//! The cluster turn: one member at a time does what costs it its service (a restart, a
//! defragmentation), holding the restart lock, only while every other voter the cluster lists is
//! started and healthy. `restart` and `maintain` take it the same way, so neither ever overlaps
//! the other.

use super::lock::{self, ClusterLock};
use super::node::Node;
use super::voters::{other_voters, Me};
use crate::etcd::api::Api;
use crate::etcd::health::Checker;
use crate::etcd::member::ApiMember;
use crate::seed::Config;
use crate::util::error::Error;
use crate::util::retry::{Backoff, Next, Policy};
use crate::util::text::printable;
use anyhow::Result;
use std::time::Duration;

/// Polls at most every `max` (jitter included): a waiting member notices a freed turn, and the
/// holder notices what it waits for, within that.
pub fn poll(within: Duration, max: Duration) -> Policy {
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
pub const TURN_POLL: Duration = Duration::from_millis(250);

/// The turn, held: the lock and the other voters' client URLs when it was taken.
pub struct Held {
    pub lock: ClusterLock,
    pub others: Vec<String>,
}

/// No turn within the time given: the last reason to wait.
#[derive(Debug)]
pub struct NoTurn {
    pub last: String,
}

/// Where a member stands before it does what costs it its service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// The only member: no one to wait for, no lock.
    Alone,
    /// A member of a cluster with others: it waits for its turn.
    Cluster,
    /// Still starting, and no member answers: the cluster has no quorum yet, so there is no turn
    /// to take and no service to lose (the reason no member answered).
    NoQuorum(String),
}

/// This member and the rest of its cluster, as one member sees them.
pub struct Peers {
    pub api: Api,
    pub checker: Checker,
    pub me: Me,
    /// This member's client URL.
    pub mine: String,
}

impl Peers {
    /// This member, asked for its ID, and the client for the cluster. `checker` judges health:
    /// maintenance under a NOSPACE alarm needs one that does not count the alarm as unhealthy.
    pub fn new(node: &Node, tolerate_nospace: bool) -> Result<Peers> {
        Ok(Peers::with_client(
            node.cfg,
            node.client()?,
            tolerate_nospace,
        ))
    }

    /// `new`, with the TLS client given (a scheduled job's, with the installed certificates).
    pub fn with_client(
        cfg: &Config,
        client: reqwest::blocking::Client,
        tolerate_nospace: bool,
    ) -> Peers {
        let mine = cfg.this_member.url(cfg.client_port);
        let api = Api::new(client.clone(), cfg.client_urls());
        let me = Me {
            id: api.status_of(&mine).ok().map(|s| s.member_id),
            name: cfg.this_member.name.clone(),
            peer_urls: cfg.my_peer_urls(),
        };
        let mut checker = Checker::from_client(client);
        if tolerate_nospace {
            checker = checker.excluding("NOSPACE");
        }
        Peers {
            api,
            checker,
            me,
            mine,
        }
    }

    /// Where this member stands, by the cluster's own word. Fails closed: a member list that
    /// answers but does not parse, or does not hold this member, is an error, never "alone".
    /// When no member answers at all: a member still `activating` (waiting for its peers) is in a
    /// cluster without quorum; otherwise the seed says whether it is alone, and a turn is waited
    /// for (and not had) when it is not.
    pub fn standing(&self, cfg: &Config, activating: bool) -> Result<Standing, Error> {
        match self.api.list() {
            Ok(members) => {
                let mine = &self.me.peer_urls;
                let holds_me = members.iter().any(|m| match self.me.id {
                    Some(id) => m.id == id,
                    None => m.peer_urls.iter().any(|u| mine.contains(u)),
                });
                if !holds_me {
                    return Err(Error::other(format!(
                        "the member list the cluster answered does not hold {} ({}): not taking \
                         it as this member's cluster",
                        printable(&self.me.name),
                        mine.join(",")
                    )));
                }
                Ok(if members.len() == 1 {
                    Standing::Alone
                } else {
                    Standing::Cluster
                })
            }
            Err(e) if !e.is_busy() => Err(e.about("asking the member list")),
            Err(e) if activating => Ok(Standing::NoQuorum(e.message)),
            Err(_) if cfg.members.len() <= 1 => Ok(Standing::Alone),
            Err(_) => Ok(Standing::Cluster),
        }
    }

    /// Every other voter the cluster lists is started and answers healthy (on any of its client
    /// URLs); their client URLs.
    pub fn others_ready(&self) -> Result<Vec<String>, Error> {
        let members = self
            .api
            .list()
            .map_err(|e| e.about("asking the member list"))?;
        self.ready_besides(&members, &self.me)
    }

    /// Every voter in `members` but `me` is started and answers healthy, all asked at once; their
    /// client URLs.
    pub fn ready_besides(&self, members: &[ApiMember], me: &Me) -> Result<Vec<String>, Error> {
        let voters = other_voters(members, me)?;
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

    /// Whether the member at `endpoint` leads; its ID with it.
    pub fn leads(&self, endpoint: &str) -> Option<u64> {
        let st = self.api.status_of(endpoint).ok()?;
        (st.leader == st.member_id && st.leader != 0).then_some(st.member_id)
    }

    /// When the member at `endpoint` leads, leadership goes to a started voter (one of
    /// `preferred` when it can) first: the rest never go through an election while it is busy.
    pub fn hand_over_leadership(&self, endpoint: &str, before: &str, preferred: &[u64]) {
        let Some(id) = self.leads(endpoint) else {
            return;
        };
        let Ok(members) = self.api.list() else { return };
        let candidates: Vec<_> = members
            .iter()
            .filter(|m| m.id != id && m.started() && !m.learner)
            .collect();
        let next = candidates
            .iter()
            .find(|m| preferred.contains(&m.id))
            .or(candidates.first());
        if let Some(next) = next {
            match self.api.move_leader(endpoint, next.id) {
                Ok(()) => log::info!(
                    "handed leadership to {} before {before}",
                    printable(&next.name)
                ),
                Err(e) => log::warn!("could not hand leadership over ({e}); {before} anyway"),
            }
        }
    }

    /// The raft index of the leader now, as the leader itself reports it: the member most of
    /// the others name as leader. Not the highest any member reports: one member's word (a
    /// number it made up) must not hold every restart until its timeout. When no member is named
    /// leader by most, the lowest index any other voter reports (a target none can inflate).
    pub fn leader_index(&self, others: &[String]) -> u64 {
        let statuses: Vec<_> = others
            .iter()
            .filter_map(|e| self.api.status_of(e).ok())
            .collect();
        let named = |id: u64| statuses.iter().filter(|st| st.leader == id).count();
        statuses
            .iter()
            .find(|st| {
                st.member_id != 0
                    && st.member_id == st.leader
                    && named(st.leader) * 2 > statuses.len()
            })
            .map(|st| st.raft_index)
            .or_else(|| statuses.iter().map(|st| st.raft_index).min())
            .unwrap_or(0)
    }

    /// Polls until the restart lock is free and taken, with every other voter started and
    /// healthy, and `hold_back` (asked while the lock is free) has no reason to wait. NoTurn
    /// with the last reason when `within` passes. The lock is kept for at most `hold_for`: the
    /// holder's own deadline.
    pub fn wait_for_turn(
        &self,
        within: Duration,
        hold_for: Duration,
        what: &str,
        hold_back: &dyn Fn() -> Option<String>,
    ) -> Result<Result<Held, NoTurn>> {
        let mut last = String::new();
        let me = printable(&self.me.name).into_owned();
        let turn = poll(within, TURN_POLL).run(
            |_| {
                match self.api.get(lock::RESTART) {
                    Ok(Some(holder)) => {
                        return Ok(Next::Again(format!(
                            "{} holds the turn",
                            crate::util::text::excerpt(&holder, 64)
                        )))
                    }
                    Ok(None) => {}
                    Err(e) => return Ok(Next::Again(format!("asking the cluster: {e}"))),
                }
                if let Some(why) = hold_back() {
                    return Ok(Next::Again(why));
                }
                Ok(
                    match ClusterLock::acquire(&self.api, lock::RESTART, &self.me.name, hold_for) {
                        Ok(None) => Next::Again("another member took the turn first".to_string()),
                        Err(e) => Next::Again(format!("asking the cluster: {e}")),
                        Ok(Some(lock)) => match self.others_ready() {
                            Ok(others) => Next::Done(Held { lock, others }),
                            Err(why) => Next::Again(why.message),
                        },
                    },
                )
            },
            |why, _, _| {
                if *why != last {
                    log::info!("{what} on {me} waits for its turn: {why}");
                    last = why.clone();
                }
            },
        )?;
        Ok(turn.map_err(|g| NoTurn { last: g.last }))
    }
}
