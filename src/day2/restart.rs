//! Restarting a running member without costing quorum: one member at a time (a lease-held lock in
//! etcd), only while every other member is healthy, leadership handed over first, and the lock
//! kept until this member is healthy again and has caught up with the leader.

use super::lock::{self, ClusterLock};
use crate::etcd::api::Api;
use crate::etcd::health::Checker;
use crate::host::systemd::ServiceManager;
use crate::seed::Config;
use crate::state;
use crate::util::retry::{Backoff, Next, Policy};
use crate::util::time::format_duration;
use anyhow::{anyhow, Result};
use std::path::Path;
use std::time::{Duration, Instant};

fn policy(within: Duration) -> Policy {
    Policy {
        backoff: Backoff {
            first: Duration::from_millis(500),
            max: Duration::from_secs(5),
            jitter: true,
        },
        attempts: None,
        within,
        last_try_at_deadline: true,
    }
}

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
    me: String,
    mine: String,
}

impl Restart<'_> {
    /// Every other member's client URL answers healthy.
    fn others_healthy(&self) -> Result<(), String> {
        let others: Vec<String> = self
            .api
            .endpoints
            .iter()
            .filter(|e| **e != self.mine)
            .cloned()
            .collect();
        let bad: Vec<String> = self
            .checker
            .check_all(&others)
            .into_iter()
            .filter(|s| !s.healthy)
            .map(|s| s.endpoint)
            .collect();
        if bad.is_empty() {
            Ok(())
        } else {
            Err(format!("waiting for {} to be healthy", bad.join(", ")))
        }
    }

    /// When this member leads, leadership goes to a healthy other member first: the rest never
    /// go through an election while this one restarts.
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
                Ok(()) => log::info!("handed leadership to {} before restarting", next.name),
                Err(e) => log::warn!("could not hand leadership over ({e}); restarting anyway"),
            }
        }
    }

    /// This member answers healthy and its raft index reached the leader's from before.
    fn caught_up(&self, target: u64) -> Result<(), String> {
        if !self.checker.check(&self.mine).healthy {
            return Err("not healthy yet".into());
        }
        match self.api.status_of(&self.mine) {
            Ok(st) if st.raft_index >= target => Ok(()),
            Ok(st) => Err(format!("raft index {} of {target}", st.raft_index)),
            Err(e) => Err(e.message),
        }
    }

    /// The highest raft index the other members report now: the leader's (0 when none says).
    fn leader_index(&self) -> u64 {
        self.api
            .endpoints
            .iter()
            .filter(|e| **e != self.mine)
            .filter_map(|e| self.api.status_of(e).ok())
            .map(|st| st.raft_index)
            .max()
            .unwrap_or(0)
    }
}

/// This member's turn to restart: the restart lock (none for a single member) with every other
/// member healthy. Files change only once it is held.
pub struct Turn<'a> {
    r: Restart<'a>,
    held: Option<ClusterLock>,
    why: String,
}

/// Waits (up to `etcd_restart_timeout`) for this member's turn to restart etcd, then marks the
/// restart as wanted. Without a turn it fails having changed nothing.
pub fn take_turn<'a>(cfg: &'a Config, root: &Path, why: &str) -> Result<Turn<'a>> {
    let unit = cfg.unit_name();
    let client = crate::etcd::client::tls_client(cfg, root)?;
    let r = Restart {
        cfg,
        api: Api::new(client.clone(), cfg.client_urls()),
        checker: Checker::from_client(client),
        me: cfg.this_member.name.clone(),
        mine: cfg.this_member.url(cfg.client_port),
    };
    let held = if cfg.members.len() <= 1 {
        None
    } else {
        let mut last = String::new();
        let turn = policy(cfg.restart_timeout).run(
            |_| match ClusterLock::acquire(&r.api, lock::RESTART, &r.me) {
                Ok(None) => Ok(Next::Again("another member is restarting".to_string())),
                Err(e) => Ok(Next::Again(format!("asking the cluster: {e}"))),
                Ok(Some(held)) => match r.others_healthy() {
                    Ok(()) => Ok(Next::Done(held)),
                    Err(why) => Ok(Next::Again(why)),
                },
            },
            |why, _, _| {
                if *why != last {
                    log::info!("restart of {unit} waits for its turn: {why}");
                    last = why.clone();
                }
            },
        )?;
        Some(turn.map_err(|g| {
            anyhow!(
                "{unit} was not restarted ({why}): no turn within etcd_restart_timeout ({}): {}; \
                 nothing was changed",
                format_duration(cfg.restart_timeout),
                g.last
            )
        })?)
    };
    want(root, why)?;
    Ok(Turn {
        r,
        held,
        why: why.to_string(),
    })
}

impl Turn<'_> {
    /// Restarts etcd (leadership handed over first) and keeps the turn until this member is
    /// healthy and caught up with the leader's raft index from before.
    pub fn restart(self, root: &Path, services: &dyn ServiceManager) -> Result<()> {
        let unit = self.r.cfg.unit_name();
        let target = match &self.held {
            Some(_) => {
                self.r.hand_over_leadership();
                self.r.leader_index()
            }
            None => 0,
        };
        services.restart(&unit)?;
        match &self.held {
            Some(_) => log::info!(
                "restarting {unit}: {} (one member at a time; holding {})",
                self.why,
                lock::RESTART
            ),
            None => log::info!("restarting {unit}: {}", self.why),
        }
        let deadline = Instant::now() + self.r.cfg.restart_timeout;
        let back = wait_back(&self.r, &unit, target, deadline);
        drop(self.held);
        back.map(|_| done(root))
    }
}

/// Waits until the restarted member is healthy and caught up, or the deadline passes.
fn wait_back(r: &Restart, unit: &str, target: u64, deadline: Instant) -> Result<()> {
    let within = deadline.saturating_duration_since(Instant::now());
    let back = policy(within).run(
        |_| match r.caught_up(target) {
            Ok(()) => Ok(Next::Done(())),
            Err(why) => Ok(Next::Again(why)),
        },
        |_, _, _| {},
    )?;
    match back {
        Ok(()) => {
            log::info!("{} is back: healthy and caught up with the leader", r.me);
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
