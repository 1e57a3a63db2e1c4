//! What a stand-in member answers: the v3 JSON gateway's paths, from the shared state.

use super::{Member, State};
use crate::util::testserver::{Request, Response};
use serde_json::{json, Value};
use std::sync::{Mutex, MutexGuard};

pub(super) fn lock(s: &Mutex<State>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn b64(v: &Value) -> String {
    use base64::Engine;
    let s = v.as_str().unwrap_or("");
    String::from_utf8_lossy(
        &base64::engine::general_purpose::STANDARD
            .decode(s)
            .unwrap_or_default(),
    )
    .into_owned()
}

fn enc(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn member_json(m: &Member, port: u16) -> Value {
    let mut v = json!({
        "ID": m.id.to_string(),
        "peerURLs": [format!("https://{}:{}", m.addr, port + 1)],
        "isLearner": m.learner,
    });
    if m.started {
        v["name"] = json!(m.name);
        v["clientURLs"] = json!([format!("https://{}:{}", m.addr, port)]);
    }
    v
}

/// What member `i` answers to `r`.
pub(super) fn answer(state: &Mutex<State>, i: usize, r: &Request) -> Response {
    let mut s = lock(state);
    s.log.push((i, r.path.clone()));
    s.expire();
    if let Some(o) = s.overrides.get(&r.path) {
        return o.clone();
    }
    if s.defragmenting.contains(&i) || s.silent.contains(&i) {
        // etcd holds every request while its backend is being rewritten.
        return Response {
            delay: std::time::Duration::from_secs(6),
            ..Response::new(503, "defragmenting")
        };
    }
    if r.path == "/v3/maintenance/defragment" {
        return super::maintenance::defragment(state, s, i);
    }
    let (path, query) = r.path.split_once('?').unwrap_or((&r.path, ""));
    let port: u16 = r
        .header("host")
        .and_then(|h| h.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let q = Asked {
        me: s.members[i].clone(),
        port,
        body: r.json(),
        revision: s.revision,
    };
    match path {
        "/health" => health(&q, query),
        "/version" | "/metrics" | "/v3/maintenance/status" => node(&s, &q, path),
        "/v3/maintenance/downgrade" => downgrade(&mut s, &q),
        "/v3/maintenance/alarm" => super::maintenance::alarm(&mut s, &q.body, q.header()),
        "/v3/kv/compaction" => super::maintenance::compact(&mut s, &q.body, q.header()),
        p if p.starts_with("/v3/lease/") || p.starts_with("/v3/kv/") => keys(&mut s, &q, p),
        p if p.starts_with("/v3/cluster/") || p.ends_with("transfer-leadership") => {
            membership(&mut s, &q, p)
        }
        _ => Response::new(404, "404 page not found"),
    }
}

/// Who was asked, on which port, with what body.
struct Asked {
    me: Member,
    port: u16,
    body: Value,
    revision: u64,
}

impl Asked {
    fn header(&self) -> Value {
        json!({"member_id": self.me.id.to_string(), "revision": self.revision.to_string()})
    }
    fn id(&self, key: &str) -> u64 {
        self.body[key]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0)
    }
}

fn ok(v: Value) -> Response {
    Response::json(200, &v)
}

fn err(code: u16, msg: &str) -> Response {
    Response::json(code, &json!({"error": msg, "message": msg, "code": 14}))
}

/// `/health`, `?exclude=ALARM` as 3.5 on: an unhealthy reason that is that alarm is not counted.
fn health(q: &Asked, query: &str) -> Response {
    let excluded = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("exclude="))
        .collect::<Vec<_>>();
    match &q.me.unhealthy {
        Some(why) if !excluded.iter().any(|x| why.contains(x)) => {
            Response::json(503, &json!({"health": "false", "reason": why}))
        }
        _ => ok(json!({"health": "true", "reason": ""})),
    }
}

/// What one member says of itself.
fn node(s: &State, q: &Asked, path: &str) -> Response {
    let me = &q.me;
    match path {
        "/version" => ok(json!({"etcdserver": me.version, "etcdcluster": s.cluster_version})),
        "/metrics" => Response::new(
            200,
            format!(
                "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {}\n",
                me.started_at
            ),
        ),
        _ => {
            let mut v = json!({
                "header": q.header(), "leader": s.leader.to_string(),
                "raftIndex": me.raft_index.to_string(), "version": me.version, "isLearner": me.learner,
                "dbSize": me.db_size.to_string(), "dbSizeInUse": me.db_in_use.to_string(),
            });
            if minor(&me.version) >= 6 {
                v["downgradeInfo"] = json!({
                    "enabled": s.downgrade.is_some(),
                    "targetVersion": s.downgrade.clone().unwrap_or_default(),
                });
            }
            ok(v)
        }
    }
}

fn minor(version: &str) -> u32 {
    version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

/// etcd's downgrade API as 3.6 answers it: one minor below the cluster version, once.
fn downgrade(s: &mut State, q: &Asked) -> Response {
    if minor(&q.me.version) < 6 {
        return Response::new(404, "404 page not found");
    }
    let action = q.body["action"].as_str().unwrap_or("VALIDATE").to_string();
    let target = q.body["version"].as_str().unwrap_or("").to_string();
    s.downgrade_actions.push(format!("{action} {target}"));
    let header = q.header();
    if action == "CANCEL" {
        s.downgrade = None;
        return ok(json!({"header": header, "version": s.cluster_version}));
    }
    if action == "ENABLE" && s.downgrade.is_some() {
        return err(400, "etcdserver: cluster has a downgrade job in progress");
    }
    if minor(&target) + 1 != minor(&s.cluster_version) {
        return err(400, "etcdserver: invalid downgrade target version");
    }
    if action == "ENABLE" {
        s.downgrade = Some(format!("{target}.0"));
        s.cluster_version = format!("{target}.0");
    }
    ok(json!({"header": header, "version": s.cluster_version}))
}

/// Leases and keys: enough for the cluster lock.
fn keys(s: &mut State, q: &Asked, path: &str) -> Response {
    let header = q.header();
    match path {
        "/v3/lease/grant" => {
            s.next += 1;
            let id = s.next;
            let ttl = q.body["TTL"].as_u64().unwrap_or(0).max(1);
            let until = s.clock() + ttl as f64;
            s.leases.insert(id, (ttl, until));
            ok(json!({"header": header, "ID": id.to_string(), "TTL": ttl.to_string()}))
        }
        "/v3/lease/revoke" => {
            let id = q.id("ID");
            if s.leases.remove(&id).is_none() {
                return err(404, "etcdserver: requested lease not found");
            }
            s.kv.retain(|_, (_, lease)| *lease != id);
            ok(json!({"header": header}))
        }
        // As etcd answers it: 200 either way; an expired lease gets no TTL (0, left out).
        "/v3/lease/keepalive" => {
            let id = q.id("ID");
            let clock = s.clock();
            match s.leases.get_mut(&id) {
                Some((ttl, until)) => {
                    *until = clock + *ttl as f64;
                    ok(
                        json!({"result": {"header": header, "ID": id.to_string(), "TTL": ttl.to_string()}}),
                    )
                }
                None => ok(json!({"result": {"header": header, "ID": id.to_string()}})),
            }
        }
        "/v3/kv/range" => {
            let key = b64(&q.body["key"]);
            match s.kv.get(&key) {
                Some((v, lease)) => ok(json!({"header": header, "kvs": [{"key": enc(&key),
                    "value": enc(v), "lease": lease.to_string()}], "count": "1"})),
                None => ok(json!({"header": header})),
            }
        }
        "/v3/kv/txn" => {
            let key = b64(&q.body["compare"][0]["key"]);
            let put = &q.body["success"][0]["request_put"];
            let free = !s.kv.contains_key(&key);
            let lease = put["lease"]
                .as_str()
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            if lease != 0 && !s.leases.contains_key(&lease) {
                return err(404, "etcdserver: requested lease not found");
            }
            if free {
                s.kv.insert(key, (b64(&put["value"]), lease));
            }
            ok(json!({"header": header, "succeeded": free}))
        }
        _ => Response::new(404, "404 page not found"),
    }
}

/// The member list and its changes, and leadership.
fn membership(s: &mut State, q: &Asked, path: &str) -> Response {
    let (header, port) = (q.header(), q.port);
    let list =
        |s: &State| -> Vec<Value> { s.members.iter().map(|m| member_json(m, port)).collect() };
    match path {
        "/v3/cluster/member/list" => ok(json!({"header": header, "members": list(s)})),
        "/v3/maintenance/transfer-leadership" => {
            if s.leader != q.me.id {
                return err(500, "etcdserver: not leader");
            }
            s.leader = q.id("targetID");
            ok(json!({"header": header}))
        }
        "/v3/cluster/member/add" => {
            s.next += 1;
            let m = Member {
                id: s.next,
                name: String::new(),
                addr: format!("127.0.0.{}", s.members.len() + 1),
                learner: q.body["isLearner"].as_bool().unwrap_or(false),
                started: false,
                unhealthy: None,
                version: "3.5.1".into(),
                started_at: 0.0,
                raft_index: 0,
                db_size: 0,
                db_in_use: 0,
            };
            s.members.push(m.clone());
            ok(json!({"header": header, "member": member_json(&m, port), "members": list(s)}))
        }
        "/v3/cluster/member/remove" | "/v3/cluster/member/promote" => {
            let Some(k) = s.index_of(q.id("ID")) else {
                return err(404, "etcdserver: member not found");
            };
            if path.ends_with("remove") {
                s.members.remove(k);
            } else if !s.members[k].learner {
                return err(400, "etcdserver: can only promote a learner member");
            } else if !s.members[k].started {
                return err(
                    400,
                    "etcdserver: can only promote a learner member which is in sync with leader",
                );
            } else {
                s.members[k].learner = false;
            }
            ok(json!({"header": header}))
        }
        _ => Response::new(404, "404 page not found"),
    }
}
