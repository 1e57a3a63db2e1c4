//! Join a running cluster (`initial-cluster-state: existing`) through a member's v3 API.
//!
//! The outcome is recorded (`state::MemberRecord`): once etcd has run from it, a re-run asks the
//! cluster nothing and renders the same `initial-cluster`, so it changes nothing.

pub mod decide;
mod quota;
mod step;
pub use step::JoinStep;

use super::Node;
use crate::cluster::lock::{self, ClusterLock};
use crate::etcd::api::Api;
use crate::etcd::member::ApiMember;
use crate::seed::{Config, JoinSpec};
use crate::state::{self, MemberRecord};
use crate::util::error::Error;
use crate::util::retry::{Backoff, Next, Policy};
use crate::util::time::format_duration;
use anyhow::{anyhow, bail, Context as _, Result};
use decide::{decide, initial_cluster, Decision};
use std::time::Duration;

/// What this node's join produced: the `initial-cluster` etcd starts with.
#[derive(Debug, Clone)]
pub struct Joined {
    pub initial_cluster: String,
    /// Added as a learner and not promoted yet.
    pub learner: bool,
    pub id: Option<u64>,
    /// What happened (or, in a dry run, would happen), for the log.
    pub action: String,
}

/// What a join would do now, asking the cluster but changing nothing (`check`, `--dry-run`).
pub enum Preview {
    Would(Joined),
    /// The cluster is busy or unreachable: apply would wait (up to etcd_join_timeout) and retry.
    Busy(String),
}

/// Waits between tries: 0.5 s doubling to 8 s, with jitter, up to etcd_join_timeout.
fn policy(within: Duration) -> Policy {
    Policy {
        backoff: Backoff {
            first: Duration::from_millis(500),
            max: Duration::from_secs(8),
            jitter: true,
        },
        attempts: None,
        within,
        last_try_at_deadline: true,
    }
}

/// The API of every member but this one: the members it can ask.
fn api_of_others(node: &Node) -> Result<Api> {
    let cfg = node.cfg;
    let endpoints = cfg
        .members
        .iter()
        .filter(|m| m.name != cfg.this_member.name)
        .map(|m| m.url(cfg.client_port))
        .collect::<Vec<_>>();
    if endpoints.is_empty() {
        bail!(Error::input(format!(
            "initial-cluster-state is existing, but etcd_members names no member besides {}: \
             list the running members so this node can ask one of them to add it",
            cfg.this_member.name
        )));
    }
    Ok(Api::new(node.client()?, endpoints))
}

/// One try at joining: lock, list, decide, act.
struct Joiner<'a> {
    cfg: &'a Config,
    spec: &'a JoinSpec,
    api: Api,
    /// Once this node joined (its record exists), it never replaces anyone again: a shared seed
    /// still naming the member it replaced must not remove that member's next incarnation.
    replace: Option<&'a str>,
    dry_run: bool,
}

impl<'a> Joiner<'a> {
    fn new(node: &Node<'a>, spec: &'a JoinSpec, dry_run: bool) -> Result<Joiner<'a>> {
        let api = api_of_others(node)?;
        let replace = match MemberRecord::load(node.root) {
            Some(_) => None,
            None => spec.replace.as_deref(),
        };
        Ok(Joiner {
            cfg: node.cfg,
            spec,
            api,
            replace,
            dry_run,
        })
    }

    fn me(&self) -> &str {
        &self.cfg.this_member.name
    }

    fn busy(&self, e: Error) -> Result<Next<Joined, String>> {
        if e.is_busy() {
            Ok(Next::Again(e.message))
        } else {
            Err(anyhow!("asking the cluster: {e}"))
        }
    }

    fn joined(&self, id: u64, learner: bool, members: &[ApiMember], action: String) -> Joined {
        Joined {
            initial_cluster: initial_cluster(members, id, self.me()),
            learner,
            id: Some(id),
            action,
        }
    }

    /// A dry run's view of the member list after this node's add.
    fn with_me(&self, members: &[ApiMember]) -> Vec<ApiMember> {
        let mut v = members.to_vec();
        v.push(ApiMember {
            id: 0,
            name: self.me().to_string(),
            peer_urls: self.cfg.my_peer_urls(),
            client_urls: vec![],
            learner: self.spec.as_learner,
        });
        v
    }

    fn attempt(&self) -> Result<Next<Joined, String>> {
        let _lock = if self.dry_run {
            None
        } else {
            let hold_for = self.spec.replace_grace + Duration::from_secs(120);
            match ClusterLock::acquire(&self.api, lock::JOIN, self.me(), hold_for) {
                Ok(Some(l)) => Some(l),
                Ok(None) => {
                    return Ok(Next::Again(format!(
                        "another node is changing the membership (it holds {})",
                        lock::JOIN
                    )))
                }
                Err(e) => return self.busy(e),
            }
        };
        let members = match self.api.list() {
            Ok(m) => m,
            Err(e) => return self.busy(e),
        };
        quota::fits(self.cfg, &self.api, &members)?;
        let urls = self.cfg.my_peer_urls();
        // A preview looks once; apply waits out the grace period.
        let grace = if self.dry_run {
            Duration::ZERO
        } else {
            self.spec.replace_grace
        };
        let decision = decide(&members, &urls, self.replace, &|m| {
            super::replace::gone(&self.api.client, &members, m, grace)
        })?;
        match decision {
            Decision::Wait(why) => Ok(Next::Again(why)),
            Decision::Reuse(m) => Ok(Next::Done(self.joined(
                m.id,
                m.learner,
                &members,
                format!("reusing member {:x}, added before but never started", m.id),
            ))),
            Decision::Remove(old) => self.remove(old, &members),
            Decision::Add => self.add(&members),
        }
    }

    fn remove(&self, old: ApiMember, members: &[ApiMember]) -> Result<Next<Joined, String>> {
        let urls = self.cfg.my_peer_urls().join(",");
        if self.dry_run {
            let rest: Vec<ApiMember> = members.iter().filter(|m| m.id != old.id).cloned().collect();
            return Ok(Next::Done(self.joined(
                0,
                self.spec.as_learner,
                &self.with_me(&rest),
                format!(
                    "would remove member {} (unreachable) and add {} at {urls}",
                    old.describe(),
                    self.me()
                ),
            )));
        }
        if let Err(e) = self.api.remove(old.id) {
            return self.busy(e);
        }
        log::info!(
            "removed member {} (etcd_replace_member; it stayed unreachable)",
            old.describe()
        );
        Ok(Next::Now)
    }

    fn add(&self, members: &[ApiMember]) -> Result<Next<Joined, String>> {
        let urls = self.cfg.my_peer_urls();
        let learner = self.spec.as_learner;
        let as_learner = if learner { " as a learner" } else { "" };
        if self.dry_run {
            return Ok(Next::Done(self.joined(
                0,
                learner,
                &self.with_me(members),
                format!(
                    "would add {} at {} to the {} member(s) of the running cluster{as_learner}",
                    self.me(),
                    urls.join(","),
                    members.len()
                ),
            )));
        }
        let (added, all) = match self.api.add(&urls, learner) {
            Ok(x) => x,
            Err(e) => return self.busy(e),
        };
        crate::failpoint!("after-member-add");
        decide::fit_for_unit(&all)?;
        Ok(Next::Done(self.joined(
            added.id,
            learner,
            &all,
            format!(
                "added {} ({:x}) at {}{as_learner} to the running cluster, now {} member(s)",
                self.me(),
                added.id,
                urls.join(","),
                all.len()
            ),
        )))
    }
}

/// The join as recorded, when the data dir already holds a member: nothing to ask the cluster.
fn recorded(node: &Node) -> Option<Joined> {
    let (cfg, root) = (node.cfg, node.root);
    if !state::data_dir_has_member(root, &cfg.data_dir) {
        return None;
    }
    Some(match MemberRecord::load(root) {
        Some(s) => Joined {
            action: format!("already joined as member {:x}", s.id),
            initial_cluster: s.initial_cluster,
            learner: s.learner,
            id: Some(s.id),
        },
        // A member of the first cluster whose seed now says `existing` (as group_vars often do
        // once the cluster runs): it is a member already.
        None => Joined {
            action: format!(
                "{} already holds this member's data: etcd ignores initial-cluster, so nothing is \
                 asked of the cluster",
                cfg.data_dir.display()
            ),
            initial_cluster: cfg.setting("initial-cluster").unwrap_or("").to_string(),
            learner: false,
            id: None,
        },
    })
}

pub fn preview(node: &Node, spec: &JoinSpec) -> Result<Preview> {
    if let Some(j) = recorded(node) {
        return Ok(Preview::Would(j));
    }
    let joiner = Joiner::new(node, spec, true)?;
    Ok(match joiner.attempt()? {
        Next::Done(j) => Preview::Would(j),
        Next::Again(why) => {
            Preview::Busy(format!("{why} (asked {})", joiner.api.endpoints.join(", ")))
        }
        Next::Now => Preview::Busy("the membership is changing".into()),
    })
}

/// Becomes a member of the running cluster (or finds it already is one) and says which
/// `initial-cluster` etcd must start with; records it.
pub fn join(node: &Node, spec: &JoinSpec) -> Result<Joined> {
    if let Some(j) = recorded(node) {
        return Ok(j);
    }
    let joiner = Joiner::new(node, spec, false)?;
    let mut last = String::new();
    let outcome = policy(spec.timeout).run(
        |_| joiner.attempt(),
        |why, _, _| {
            if *why != last {
                log::info!("join: {why}; trying again");
                last = why.clone();
            }
        },
    )?;
    let j = outcome.map_err(|gave_up| {
        anyhow!(
            "could not join the running cluster ({}) within etcd_join_timeout ({}): {}",
            joiner.api.endpoints.join(", "),
            format_duration(spec.timeout),
            gave_up.last
        )
    })?;
    MemberRecord {
        id: j.id.unwrap_or(0),
        learner: j.learner,
        initial_cluster: j.initial_cluster.clone(),
    }
    .save(node.root)?;
    Ok(j)
}

/// What apply would do, for a dry run: a busy cluster is a line, not a failure.
fn dry_run(node: &Node, spec: &JoinSpec) -> Result<Joined> {
    let cfg = node.cfg;
    Ok(match preview(node, spec)? {
        Preview::Would(j) => j,
        Preview::Busy(why) => Joined {
            action: format!("would wait and retry: {why}"),
            initial_cluster: cfg.setting("initial-cluster").unwrap_or("").to_string(),
            learner: spec.as_learner,
            id: None,
        },
    })
}

/// Promotes this learner once it has caught up with the leader; waits up to `wait`.
pub fn promote(node: &Node, id: u64, wait: Duration) -> Result<()> {
    // Not the learner itself: it refuses cluster RPCs ("rpc not supported for learner").
    let api = api_of_others(node)?;
    let mut logged = false;
    let outcome = policy(wait).run(
        |_| match api.promote(id) {
            Ok(()) => Ok(Next::Done(())),
            // Promoted already (a run that stopped before it recorded it).
            Err(e) if e.message.contains("can only promote a learner member") && !e.is_busy() => {
                Ok(Next::Done(()))
            }
            Err(e) if e.is_busy() => Ok(Next::Again(e.message)),
            Err(e) => Err(promote_failed(id, &e.message)),
        },
        |why, _, _| {
            if !logged {
                log::info!("learner {id:x} is catching up with the leader: {why}");
                logged = true;
            }
        },
    )?;
    outcome.map_err(|gave_up| promote_failed(id, &gave_up.last))?;
    let mut record = MemberRecord::load(node.root).context("the join record vanished")?;
    record.learner = false;
    record.save(node.root)?;
    log::info!("promoted member {id:x} from learner to voting member");
    Ok(())
}

fn promote_failed(id: u64, why: &str) -> anyhow::Error {
    anyhow!(
        "member {id:x} joined as a learner but could not be promoted: {why}; it keeps running as a \
         learner, run apply again to promote it"
    )
}
