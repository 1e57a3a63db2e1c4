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
use super::node::Node;
use super::turn::{poll, Peers, Standing};
use crate::host::systemd::{Active, ServiceManager};
use crate::seed::Config;
use crate::state;
use crate::util::error::Error;
use crate::util::retry::Next;
use crate::util::text::printable;
use crate::util::time::format_duration;
use anyhow::{anyhow, Result};
use std::path::Path;
use std::time::{Duration, Instant};

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
    peers: Peers,
}

impl Restart<'_> {
    /// Both witnesses asked at once.
    fn instance(&self, services: &dyn ServiceManager, unit: &str) -> Instance {
        let (api, mine) = (&self.peers.api.client, &self.peers.mine);
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
    /// In a cluster without quorum (`quorum` false) no member can be healthy: a new process is
    /// all there is to wait for.
    fn back(
        &self,
        services: &dyn ServiceManager,
        unit: &str,
        before: &Instance,
        target: u64,
        quorum: bool,
    ) -> Result<Instance, Error> {
        let now = self.instance(services, unit);
        if let Some(why) = before.not_replaced_by(&now) {
            return Err(Error::busy(why));
        }
        if !quorum {
            return Ok(now);
        }
        let health = self.peers.checker.check(&self.peers.mine);
        if !health.healthy {
            return Err(Error::busy(format!(
                "the new process is not healthy yet: {}",
                health.error.as_deref().unwrap_or("unhealthy")
            )));
        }
        match self.peers.api.status_of(&self.peers.mine) {
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
    /// Whether the cluster had quorum (else this member was still starting, and nothing answered).
    quorum: bool,
    why: String,
}

/// The longest a restart turn is held past its taking: the install, then the restart and its
/// wait (`etcd_restart_timeout`). A holder that hangs past it loses the lock to its expiry.
fn hold_for(cfg: &Config) -> Duration {
    cfg.restart_timeout + Duration::from_secs(120)
}

/// Waits (up to `etcd_restart_timeout`) for this member's turn to restart etcd, then marks the
/// restart as wanted. Without a turn it fails having changed nothing. A member still
/// `activating` whose cluster has no quorum yet (the first member waiting for its peers, or one
/// in a crash loop) restarts at once: there is no turn to take, and no service to lose.
pub fn take_turn<'a>(node: &Node<'a>, why: &str) -> Result<Turn<'a>> {
    let cfg = node.cfg;
    let unit = cfg.unit_name();
    let activating = node.services.active_state(&unit) == Active::Activating;
    let r = Restart {
        cfg,
        peers: Peers::new(node, false)?,
    };
    let (held, others, quorum) = match r.peers.standing(cfg, activating)? {
        Standing::Alone => (None, Vec::new(), true),
        Standing::NoQuorum(nobody) => {
            log::info!(
                "{unit} is still starting and no member answers ({}): restarting it at once, \
                 there is no quorum to keep",
                printable(&crate::util::text::excerpt(&nobody, 200))
            );
            (None, Vec::new(), false)
        }
        Standing::Cluster => {
            let held = r
                .peers
                .wait_for_turn(
                    cfg.restart_timeout,
                    hold_for(cfg),
                    &format!("restart of {unit}"),
                    &|| None,
                )?
                .map_err(|no| {
                    anyhow!(
                        "{unit} was not restarted ({why}): no turn within etcd_restart_timeout ({}): \
                         {}; nothing was changed",
                        format_duration(cfg.restart_timeout),
                        no.last
                    )
                })?;
            (Some(held.lock), held.others, true)
        }
    };
    want(node.root, why)?;
    Ok(Turn {
        r,
        held,
        others,
        quorum,
        why: why.to_string(),
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
                    let p = &self.r.peers;
                    p.hand_over_leadership(&p.mine, "restarting", &[]);
                    p.leader_index(&self.others)
                }
                None => 0,
            };
            (target, before.join())
        });
        let before = before.map_err(|_| anyhow!("asking which etcd process runs {unit}"))?;
        if let Some(held) = &self.held {
            // A holder whose lease expired (paused, cut off) may no longer restart: another
            // member may be restarting now. The restart stays pending for the next run.
            held.still_held().map_err(|e| {
                anyhow!(
                    "{unit} was not restarted ({}): {e}; the restart is left pending",
                    self.why
                )
            })?;
        }
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
        let back = wait_back(
            &self.r,
            services,
            &unit,
            &before,
            target,
            self.quorum,
            asked,
        );
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
    quorum: bool,
    asked: Instant,
) -> Result<()> {
    let within = r.cfg.restart_timeout.saturating_sub(asked.elapsed());
    let back = poll(within, BACK_POLL).run(
        |_| {
            Ok(match r.back(services, unit, before, target, quorum) {
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
            let state = if quorum {
                "is healthy and caught up with the leader"
            } else {
                "runs (it waits for its peers: the cluster has no quorum yet)"
            };
            log::info!(
                "{} is back: a new etcd process{pid} {state}, {:.1} s after the restart was asked",
                printable(&r.peers.me.name),
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
