//! Day 2: join a running cluster (`initial-cluster-state: existing`).
//!
//! Membership changes go through a healthy member's v3 JSON API (the gateway etcd serves on its client
//! port: `/v3/cluster/member/list`, `/member/add`, ...) over TLS with the client certificate, so the node
//! needs no etcdctl and no control machine. The outcome is recorded in `STATE`: once etcd has run from
//! it, a re-run asks the cluster nothing and renders the same `initial-cluster`, so it changes nothing.

use crate::fsutil;
use crate::seed::{Config, JoinSpec};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What this node's join produced: its member ID, the `initial-cluster` etcd starts with, and
/// whether it still waits to be promoted from learner.
pub const STATE: &str = "/var/lib/etcd-bootstrap/member";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiMember {
    pub id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub learner: bool,
}

impl ApiMember {
    /// A member added but never started has no name yet.
    pub fn started(&self) -> bool {
        !self.name.is_empty()
    }
    fn describe(&self) -> String {
        let name = if self.started() {
            self.name.as_str()
        } else {
            "(not started)"
        };
        format!(
            "{name} {:x} at {}{}",
            self.id,
            self.peer_urls.join(","),
            if self.learner { " (learner)" } else { "" }
        )
    }
}

fn id_of(v: &Value) -> Option<u64> {
    match v {
        // The gateway writes uint64 as a JSON string (protobuf's JSON mapping).
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn parse_member(v: &Value) -> Option<ApiMember> {
    Some(ApiMember {
        id: id_of(v.get("ID")?)?,
        name: v
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_string(),
        peer_urls: strings(v.get("peerURLs")),
        client_urls: strings(v.get("clientURLs")),
        learner: v
            .get("isLearner")
            .and_then(|b| b.as_bool())
            .unwrap_or(false),
    })
}

pub fn parse_members(v: &Value) -> Vec<ApiMember> {
    v.get("members")
        .and_then(|m| m.as_array())
        .map(|a| a.iter().filter_map(parse_member).collect())
        .unwrap_or_default()
}

/// A failed call: `busy` when waiting and asking again can help (no leader, another join under way,
/// a learner not caught up, a member unreachable).
#[derive(Debug)]
pub struct CallError {
    pub busy: bool,
    pub message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// etcd's errors that go away by themselves.
fn transient(message: &str) -> bool {
    const BUSY: &[&str] = &[
        "unhealthy cluster",
        "too many learner",
        "not enough started",
        "in sync with leader",
        "no leader",
        "leader changed",
        "timed out",
        "timeout",
        "server stopped",
        "too many requests",
        "not capable",
        "not supported for learner",
    ];
    let m = message.to_ascii_lowercase();
    BUSY.iter().any(|b| m.contains(b))
}

/// The v3 JSON API of the cluster, asked through whichever endpoint answers.
pub struct Api {
    client: reqwest::blocking::Client,
    pub endpoints: Vec<String>,
    /// The endpoint that answered last is asked first: a dead member costs one timeout, not one per call.
    first: std::cell::Cell<usize>,
}

impl Api {
    pub fn new(client: reqwest::blocking::Client, endpoints: Vec<String>) -> Api {
        Api {
            client,
            endpoints,
            first: std::cell::Cell::new(0),
        }
    }

    /// Every member's client URL except this node's: the members it can ask.
    pub fn for_config(cfg: &Config, root: &Path) -> Result<Api> {
        let endpoints = cfg
            .members
            .iter()
            .filter(|m| m.name != cfg.this_member.name)
            .map(|m| m.url(cfg.client_port))
            .collect::<Vec<_>>();
        if endpoints.is_empty() {
            bail!(crate::error::InvalidSeed(format!(
                "initial-cluster-state is existing, but etcd_members names no member besides {}: \
                 list the running members so this node can ask one of them to add it",
                cfg.this_member.name
            )));
        }
        Ok(Api::new(crate::health::tls_client(cfg, root)?, endpoints))
    }

    fn post_one(&self, endpoint: &str, path: &str, body: &Value) -> Result<Value, CallError> {
        let url = format!("{}{path}", endpoint.trim_end_matches('/'));
        let resp = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .map_err(|e| CallError {
                busy: true,
                message: format!("{url}: {}", crate::error::chain_text(&e)),
            })?;
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(v);
        }
        let message = v
            .get("message")
            .or_else(|| v.get("error"))
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| text.trim().to_string());
        Err(CallError {
            busy: transient(&message) || status.is_server_error() && message.is_empty(),
            message: format!("{url}: {status}: {message}"),
        })
    }

    /// POSTs to each endpoint in turn until one answers; a definite refusal is not retried elsewhere.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, CallError> {
        let mut errors = Vec::new();
        let n = self.endpoints.len();
        for k in 0..n {
            let i = (self.first.get() + k) % n;
            match self.post_one(&self.endpoints[i], path, body) {
                Ok(v) => {
                    self.first.set(i);
                    return Ok(v);
                }
                Err(err) if !err.busy => return Err(err),
                Err(err) => errors.push(err.message),
            }
        }
        Err(CallError {
            busy: true,
            message: errors.join("; "),
        })
    }

    pub fn list(&self) -> Result<Vec<ApiMember>, CallError> {
        // `linearizable` so a member added a moment ago through another endpoint is seen (3.5+;
        // older gateways ignore the field).
        self.post("/v3/cluster/member/list", &json!({"linearizable": true}))
            .map(|v| parse_members(&v))
    }
}

/// What to do next, decided from the member list alone.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// `etcd_replace_member` names this member and it is not healthy: remove it.
    Remove(ApiMember),
    /// Added before (a run that stopped before etcd started): use that entry.
    Reuse(ApiMember),
    Add,
    /// Another member is added but not started, or a learner not yet promoted: one join at a time.
    Wait(String),
}

pub fn decide(
    members: &[ApiMember],
    my_peer_urls: &[String],
    replace: Option<&str>,
    healthy: &dyn Fn(&ApiMember) -> bool,
) -> Result<Step> {
    let mine = members
        .iter()
        .find(|m| m.peer_urls.iter().any(|u| my_peer_urls.contains(u)));
    if let Some(r) = replace {
        if let Some(old) = members.iter().find(|m| m.name == r) {
            if healthy(old) {
                bail!(
                    "etcd_replace_member: {r} ({:x}) is healthy at {}; refusing to remove a working member \
                     (stop it first, or remove etcd_replace_member from the seed)",
                    old.id,
                    old.client_urls.join(",")
                );
            }
            return Ok(Step::Remove(old.clone()));
        }
    }
    if let Some(m) = mine {
        if !m.started() {
            return Ok(Step::Reuse(m.clone()));
        }
        bail!(
            "the cluster already has member {} ({:x}) at this node's peer URL {}, started before, but this \
             node's data dir holds no member: its data is gone. To join again under the same address, set \
             etcd_replace_member: {} (it is removed once it is not healthy)",
            m.name,
            m.id,
            m.peer_urls.join(","),
            m.name
        );
    }
    let pending: Vec<String> = members
        .iter()
        .filter(|m| !m.started() || m.learner)
        .map(|m| m.describe())
        .collect();
    if !pending.is_empty() {
        return Ok(Step::Wait(format!(
            "waiting for {} to start (and be promoted) first: members join one at a time",
            pending.join(", ")
        )));
    }
    Ok(Step::Add)
}

/// `name=url,...` from the member list, this member named `my_name`, sorted for a stable unit.
pub fn initial_cluster(members: &[ApiMember], my_id: u64, my_name: &str) -> String {
    let mut entries: Vec<String> = members
        .iter()
        .flat_map(|m| {
            let name = if m.id == my_id { my_name } else { &m.name };
            m.peer_urls.iter().map(move |u| format!("{name}={u}"))
        })
        .collect();
    entries.sort();
    entries.join(",")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub id: u64,
    pub learner: bool,
    pub initial_cluster: String,
}

impl State {
    fn path(root: &Path) -> PathBuf {
        fsutil::under(root, Path::new(STATE))
    }
    pub fn load(root: &Path) -> Option<State> {
        let text = std::fs::read_to_string(State::path(root)).ok()?;
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_string)
        };
        Some(State {
            id: u64::from_str_radix(&get("id")?, 16).ok()?,
            learner: get("learner")? == "true",
            initial_cluster: get("initial_cluster")?,
        })
    }
    pub fn save(&self, root: &Path) -> Result<()> {
        fsutil::write_state(
            &State::path(root),
            &format!(
                "id={:x}\nlearner={}\ninitial_cluster={}\n",
                self.id, self.learner, self.initial_cluster
            ),
        )
    }
}

pub fn data_dir_has_member(cfg: &Config, root: &Path) -> bool {
    fsutil::under(root, &cfg.data_dir).join("member").is_dir()
}

fn my_peer_urls(cfg: &Config) -> Vec<String> {
    let urls = crate::preflight::urls(cfg, "initial-advertise-peer-urls");
    if urls.is_empty() {
        vec![cfg.this_member.url(cfg.peer_port)]
    } else {
        urls
    }
}

/// The outcome `apply` renders the unit from.
#[derive(Debug, Clone)]
pub struct Joined {
    pub initial_cluster: String,
    /// Added as a learner and not promoted yet.
    pub learner: bool,
    pub id: Option<u64>,
    /// What happened (or, in a dry run, would happen), for the log.
    pub action: String,
}

/// Backoff between attempts: 0.5 s doubling to 8 s, each with up to half again of jitter, so nodes
/// that start together do not ask together again.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(500) * 2u32.pow(attempt.min(4));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0) as u64
        ^ u64::from(std::process::id()).wrapping_mul(0x9e37_79b9);
    base + Duration::from_millis(nanos % (base.as_millis() as u64 / 2 + 1))
}

/// A short lease-held key in the cluster: two nodes joining at the same moment would both see no
/// pending member and both add themselves; the lock makes list-then-add one step.
struct JoinLock<'a> {
    api: &'a Api,
    lease: Option<u64>,
}

const LOCK_KEY: &str = "etcd-bootstrap/join-lock";

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

impl<'a> JoinLock<'a> {
    /// Ok(None) when another node holds it.
    fn acquire(api: &'a Api, me: &str) -> Result<Option<JoinLock<'a>>, CallError> {
        let grant = api.post("/v3/lease/grant", &json!({"TTL": 30}))?;
        let lease = grant.get("ID").and_then(id_of).ok_or_else(|| CallError {
            busy: false,
            message: format!("lease grant answered without an ID: {grant}"),
        })?;
        let lock = JoinLock {
            api,
            lease: Some(lease),
        };
        let txn = json!({
            "compare": [{"key": b64(LOCK_KEY), "result": "EQUAL", "target": "CREATE", "create_revision": "0"}],
            "success": [{"request_put": {"key": b64(LOCK_KEY), "value": b64(me), "lease": lease.to_string()}}],
        });
        let r = api.post("/v3/kv/txn", &txn)?;
        if r.get("succeeded")
            .and_then(|b| b.as_bool())
            .unwrap_or(false)
        {
            Ok(Some(lock))
        } else {
            Ok(None)
        }
    }
}

impl Drop for JoinLock<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.lease.take() {
            // Best effort: the lease expires by itself in 30 s.
            let _ = self
                .api
                .post("/v3/lease/revoke", &json!({"ID": id.to_string()}));
        }
    }
}

enum Attempt {
    Done(Joined),
    Again(String),
}

/// Healthy if any client URL answers healthy now or 2 s later: a member is removed only when it
/// stays down, not for a blip (a leader election makes every member briefly unhealthy).
fn health_of(checker: &crate::health::Checker, m: &ApiMember) -> bool {
    let once = || m.client_urls.iter().any(|u| checker.check(u).healthy);
    if m.client_urls.is_empty() {
        return false;
    }
    once() || {
        std::thread::sleep(Duration::from_secs(2));
        once()
    }
}

fn attempt(
    cfg: &Config,
    api: &Api,
    spec: &JoinSpec,
    checker: &crate::health::Checker,
    dry_run: bool,
) -> Result<Attempt> {
    let busy = |e: CallError| -> Result<Attempt> {
        if e.busy {
            Ok(Attempt::Again(e.message))
        } else {
            Err(anyhow!("asking the cluster: {e}"))
        }
    };
    let me = &cfg.this_member.name;
    let _lock =
        if dry_run {
            None
        } else {
            match JoinLock::acquire(api, me) {
                Ok(Some(l)) => Some(l),
                Ok(None) => return Ok(Attempt::Again(
                    "another node is changing the membership (it holds etcd-bootstrap/join-lock)"
                        .into(),
                )),
                Err(e) => return busy(e),
            }
        };
    let members = match api.list() {
        Ok(m) => m,
        Err(e) => return busy(e),
    };
    let urls = my_peer_urls(cfg);
    let step = decide(&members, &urls, spec.replace.as_deref(), &|m| {
        health_of(checker, m)
    })?;
    let joined = |id: u64, learner: bool, members: &[ApiMember], action: String| Joined {
        initial_cluster: initial_cluster(members, id, me),
        learner,
        id: Some(id),
        action,
    };
    // A dry run's view of the member list after this node's add.
    let with_me = |ms: &[ApiMember]| -> Vec<ApiMember> {
        let mut v = ms.to_vec();
        v.push(ApiMember {
            id: 0,
            name: me.clone(),
            peer_urls: urls.clone(),
            client_urls: vec![],
            learner: spec.as_learner,
        });
        v
    };
    match step {
        Step::Wait(why) => Ok(Attempt::Again(why)),
        Step::Reuse(m) => Ok(Attempt::Done(joined(
            m.id,
            m.learner,
            &members,
            format!("reusing member {:x}, added before but never started", m.id),
        ))),
        Step::Remove(old) if dry_run => {
            let rest: Vec<ApiMember> = members.into_iter().filter(|m| m.id != old.id).collect();
            Ok(Attempt::Done(joined(
                0,
                spec.as_learner,
                &with_me(&rest),
                format!(
                    "would remove member {} (not healthy) and add {me} at {}",
                    old.describe(),
                    urls.join(",")
                ),
            )))
        }
        Step::Remove(old) => {
            if let Err(e) = api.post(
                "/v3/cluster/member/remove",
                &json!({"ID": old.id.to_string()}),
            ) {
                return busy(e);
            }
            log::info!(
                "removed member {} (etcd_replace_member; it was not healthy)",
                old.describe()
            );
            Ok(Attempt::Again(String::new()))
        }
        Step::Add if dry_run => Ok(Attempt::Done(joined(
            0,
            spec.as_learner,
            &with_me(&members),
            format!(
                "would add {me} at {} to the {} member(s) of the running cluster{}",
                urls.join(","),
                members.len(),
                if spec.as_learner { " as a learner" } else { "" }
            ),
        ))),
        Step::Add => {
            let r = match api.post(
                "/v3/cluster/member/add",
                &json!({"peerURLs": urls, "isLearner": spec.as_learner}),
            ) {
                Ok(r) => r,
                Err(e) => return busy(e),
            };
            let added = r
                .get("member")
                .and_then(parse_member)
                .ok_or_else(|| anyhow!("member/add answered without the new member: {r}"))?;
            crate::failpoint!("join-added");
            let all = parse_members(&r);
            Ok(Attempt::Done(joined(
                added.id,
                spec.as_learner,
                &all,
                format!(
                    "added {me} ({:x}) at {}{} to the running cluster, now {} member(s)",
                    added.id,
                    urls.join(","),
                    if spec.as_learner { " as a learner" } else { "" },
                    all.len()
                ),
            )))
        }
    }
}

/// The join as recorded, when the data dir already holds a member: nothing to ask the cluster.
fn recorded(cfg: &Config, root: &Path) -> Option<Joined> {
    if !data_dir_has_member(cfg, root) {
        return None;
    }
    Some(match State::load(root) {
        Some(s) => Joined {
            action: format!("already joined as member {:x}", s.id),
            initial_cluster: s.initial_cluster,
            learner: s.learner,
            id: Some(s.id),
        },
        None => {
            // A member of the first cluster whose seed now says `existing` (as group_vars often
            // do once the cluster runs): it is a member already.
            Joined {
                action: format!(
                    "{} already holds this member's data: etcd ignores initial-cluster, so nothing is \
                     asked of the cluster",
                    cfg.data_dir.display()
                ),
                initial_cluster: cfg
                    .settings
                    .get("initial-cluster")
                    .cloned()
                    .unwrap_or_default(),
                learner: false,
                id: None,
            }
        }
    })
}

/// What a join would do now, asking the cluster but changing nothing (`check`, `--dry-run`).
pub enum Preview {
    Would(Joined),
    /// The cluster is busy or unreachable: apply would wait (up to etcd_join_timeout) and retry.
    Busy(String),
}

pub fn preview(cfg: &Config, root: &Path, spec: &JoinSpec) -> Result<Preview> {
    if let Some(j) = recorded(cfg, root) {
        return Ok(Preview::Would(j));
    }
    let api = Api::for_config(cfg, root)?;
    // One TLS client (its certificates read and parsed once) for the API and the health checks.
    let checker = crate::health::Checker::from_client(api.client.clone());
    Ok(match attempt(cfg, &api, spec, &checker, true)? {
        Attempt::Done(j) => Preview::Would(j),
        Attempt::Again(why) => {
            Preview::Busy(format!("{} (asked {})", why, api.endpoints.join(", ")))
        }
    })
}

/// Becomes a member of the running cluster (or finds it already is one) and says which
/// `initial-cluster` etcd must start with. A dry run only looks.
pub fn prepare(cfg: &Config, root: &Path, spec: &JoinSpec, dry_run: bool) -> Result<Joined> {
    if dry_run {
        return Ok(match preview(cfg, root, spec)? {
            Preview::Would(j) => j,
            Preview::Busy(why) => Joined {
                action: format!("would wait and retry: {why}"),
                initial_cluster: cfg
                    .settings
                    .get("initial-cluster")
                    .cloned()
                    .unwrap_or_default(),
                learner: spec.as_learner,
                id: None,
            },
        });
    }
    if let Some(j) = recorded(cfg, root) {
        return Ok(j);
    }
    let api = Api::for_config(cfg, root)?;
    // One TLS client (its certificates read and parsed once) for the API and the health checks.
    let checker = crate::health::Checker::from_client(api.client.clone());
    let deadline = Instant::now() + spec.timeout;
    let mut last = String::new();
    for n in 0u32.. {
        match attempt(cfg, &api, spec, &checker, false)? {
            Attempt::Done(j) => {
                State {
                    id: j.id.unwrap_or(0),
                    learner: j.learner,
                    initial_cluster: j.initial_cluster.clone(),
                }
                .save(root)?;
                return Ok(j);
            }
            Attempt::Again(why) if why.is_empty() => continue,
            Attempt::Again(why) => {
                if Instant::now() >= deadline {
                    bail!(
                        "could not join the running cluster ({}) within etcd_join_timeout ({}): {why}",
                        api.endpoints.join(", "),
                        crate::duration::format(spec.timeout)
                    );
                }
                if why != last {
                    log::info!("join: {why}; trying again");
                    last = why;
                }
                std::thread::sleep(
                    backoff(n).min(deadline.saturating_duration_since(Instant::now())),
                );
            }
        }
    }
    unreachable!()
}

/// Promotes this learner once it has caught up with the leader; waits up to `wait`.
pub fn promote(cfg: &Config, root: &Path, id: u64, wait: Duration) -> Result<()> {
    // Not the learner itself: it refuses cluster RPCs ("rpc not supported for learner").
    let api = Api::for_config(cfg, root)?;
    let deadline = Instant::now() + wait;
    let mut logged = false;
    for n in 0u32.. {
        match api.post("/v3/cluster/member/promote", &json!({"ID": id.to_string()})) {
            Ok(_) => break,
            // Promoted already (a run that stopped before it recorded it).
            Err(e) if e.message.contains("can only promote a learner member") && !e.busy => break,
            Err(e) if e.busy && Instant::now() < deadline => {
                if !logged {
                    log::info!("learner {id:x} is catching up with the leader: {}", e.message);
                    logged = true;
                }
                std::thread::sleep(backoff(n).min(deadline.saturating_duration_since(Instant::now())));
            }
            Err(e) => bail!(
                "member {id:x} joined as a learner but could not be promoted: {e}; it keeps running as a \
                 learner, run apply again to promote it"
            ),
        }
    }
    let mut state = State::load(root).context("the join record vanished")?;
    state.learner = false;
    state.save(root)?;
    log::info!("promoted member {id:x} from learner to voting member");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: u64, name: &str, url: &str, learner: bool) -> ApiMember {
        ApiMember {
            id,
            name: name.into(),
            peer_urls: vec![url.into()],
            client_urls: if name.is_empty() {
                vec![]
            } else {
                vec![url.replace("2380", "2379")]
            },
            learner,
        }
    }

    fn three() -> Vec<ApiMember> {
        vec![
            m(1, "a", "https://10.0.0.1:2380", false),
            m(2, "b", "https://10.0.0.2:2380", false),
            m(3, "c", "https://10.0.0.3:2380", false),
        ]
    }

    const ME: &str = "https://10.0.0.4:2380";

    #[test]
    fn reads_the_gateway_json() {
        let v: Value = serde_json::from_str(
            r#"{"header":{"cluster_id":"1"},"members":[{"ID":"10276657743932975437","name":"n1",
            "peerURLs":["https://10.8.0.1:2380"],"clientURLs":["https://10.8.0.1:2379"]},
            {"ID":"42","peerURLs":["https://10.8.0.4:2380"],"isLearner":true}]}"#,
        )
        .unwrap();
        let ms = parse_members(&v);
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].id, 10276657743932975437);
        assert!(ms[0].started() && !ms[0].learner);
        assert!(!ms[1].started() && ms[1].learner);
        assert_eq!(
            initial_cluster(&ms, 42, "n4"),
            "n1=https://10.8.0.1:2380,n4=https://10.8.0.4:2380"
        );
    }

    #[test]
    fn adds_when_all_started_and_reuses_an_unstarted_entry_of_its_own() {
        let healthy = |_: &ApiMember| true;
        assert_eq!(
            decide(&three(), &[ME.into()], None, &healthy).unwrap(),
            Step::Add
        );
        let mut ms = three();
        ms.push(m(9, "", ME, false));
        assert_eq!(
            decide(&ms, &[ME.into()], None, &healthy).unwrap(),
            Step::Reuse(m(9, "", ME, false))
        );
    }

    #[test]
    fn waits_for_another_pending_join_or_learner() {
        let healthy = |_: &ApiMember| true;
        let mut ms = three();
        ms.push(m(9, "", "https://10.0.0.5:2380", false));
        assert!(matches!(
            decide(&ms, &[ME.into()], None, &healthy).unwrap(),
            Step::Wait(w) if w.contains("10.0.0.5")
        ));
        let mut ms = three();
        ms.push(m(9, "e", "https://10.0.0.5:2380", true));
        assert!(matches!(
            decide(&ms, &[ME.into()], None, &healthy).unwrap(),
            Step::Wait(_)
        ));
    }

    #[test]
    fn a_started_member_at_my_url_with_my_data_gone_is_an_error_naming_the_fix() {
        let mut ms = three();
        ms.push(m(9, "d", ME, false));
        let e = decide(&ms, &[ME.into()], None, &|_| false).unwrap_err();
        assert!(e.to_string().contains("etcd_replace_member: d"), "{e}");
    }

    #[test]
    fn replaces_only_an_unhealthy_member() {
        let e = decide(&three(), &[ME.into()], Some("c"), &|_| true).unwrap_err();
        assert!(e.to_string().contains("refusing"), "{e}");
        assert_eq!(
            decide(&three(), &[ME.into()], Some("c"), &|_| false).unwrap(),
            Step::Remove(three()[2].clone())
        );
        // Already removed: just join.
        let two = three()[..2].to_vec();
        assert_eq!(
            decide(&two, &[ME.into()], Some("c"), &|_| false).unwrap(),
            Step::Add
        );
    }

    #[test]
    fn transient_errors_are_the_ones_that_pass() {
        assert!(transient("etcdserver: unhealthy cluster"));
        assert!(transient("etcdserver: too many learner members in cluster"));
        assert!(transient(
            "etcdserver: can only promote a learner member which is in sync with leader"
        ));
        assert!(!transient("etcdserver: Peer URLs already exists"));
        assert!(!transient("etcdserver: permission denied"));
    }

    #[test]
    fn backoff_grows_and_is_jittered_within_bounds() {
        for n in 0..8 {
            let b = backoff(n);
            let base = Duration::from_millis(500) * 2u32.pow(n.min(4));
            assert!(b >= base && b <= base + base / 2, "{n}: {b:?}");
        }
    }
}
