//! etcd's v3 JSON API (the gateway etcd serves on its client port: `/v3/cluster/member/list`,
//! `/v3/lease/grant`, ...) over TLS with the client certificate. The node needs no etcdctl and no
//! control machine for membership changes. Every answer is read with a cap and parsed as input.

pub use super::answer::{exchange, get_text, Answer, ANSWER, MAX_BODY};
pub use super::member::Alarm;
use super::member::{id_of, parse_member, parse_members, ApiMember, MemberStatus};
use crate::util::error::{Error, Kind};
use serde_json::{json, Value};
use std::time::Duration;

/// etcd's errors that go away by themselves.
pub fn transient(message: &str) -> bool {
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

pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// The v3 JSON API of a cluster, asked through whichever endpoint answers.
pub struct Api {
    pub client: reqwest::blocking::Client,
    pub endpoints: Vec<String>,
    /// The endpoint that answered last is asked first: a dead member costs one timeout, not one per call.
    first: std::sync::atomic::AtomicUsize,
}

impl Api {
    pub fn new(client: reqwest::blocking::Client, endpoints: Vec<String>) -> Api {
        Api {
            client,
            endpoints,
            first: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// POSTs to one endpoint. Busy when it does not answer, or answers with an error that passes
    /// by itself (no leader, a learner catching up); any other refusal is not.
    pub fn post_to(&self, endpoint: &str, path: &str, body: &Value) -> Result<Value, Error> {
        self.post_waiting(endpoint, path, body, None)
    }

    /// `post_to`, waiting up to `timeout` for the answer instead of the client's own timeout.
    fn post_waiting(
        &self,
        endpoint: &str,
        path: &str,
        body: &Value,
        timeout: Option<Duration>,
    ) -> Result<Value, Error> {
        let url = format!("{}{path}", endpoint.trim_end_matches('/'));
        let req = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let Answer { status, text } = exchange(req, &url, timeout.unwrap_or(ANSWER))?;
        let parsed = serde_json::from_str::<Value>(&text);
        if status.is_success() {
            // Fail closed: a 200 that is not etcd's JSON says nothing ("no members", "no
            // alarms", "renewed" would all be read from it otherwise).
            return match parsed {
                Ok(v) if v.is_object() => Ok(v),
                _ => Err(Error::other(format!(
                    "{url}: the answer is not etcd's JSON: {}",
                    crate::util::text::printable(&crate::util::text::excerpt(text.trim(), 80))
                ))),
            };
        }
        let v = parsed.unwrap_or(Value::Null);
        let message = v
            .get("message")
            .or_else(|| v.get("error"))
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| crate::util::text::excerpt(text.trim(), 200));
        let message = crate::util::text::printable(&message).into_owned();
        let busy = transient(&message) || status.is_server_error() && message.is_empty();
        Err(Error::new(
            if busy { Kind::Busy } else { Kind::Other },
            format!("{url}: {status}: {message}"),
        ))
    }

    /// POSTs to each endpoint in turn until one answers; a definite refusal is not retried elsewhere.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, Error> {
        use std::sync::atomic::Ordering;
        let mut errors = Vec::new();
        let n = self.endpoints.len();
        for k in 0..n {
            let i = (self.first.load(Ordering::Relaxed) + k) % n;
            match self.post_to(&self.endpoints[i], path, body) {
                Ok(v) => {
                    self.first.store(i, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(err) if !err.is_busy() => return Err(err),
                Err(err) => errors.push(err.message),
            }
        }
        Err(Error::busy(errors.join("; ")))
    }

    pub fn list(&self) -> Result<Vec<ApiMember>, Error> {
        // `linearizable` so a member added a moment ago through another endpoint is seen (3.5+;
        // older gateways ignore the field).
        let v = self.post("/v3/cluster/member/list", &json!({"linearizable": true}))?;
        parse_members(&v)
    }

    /// A lease of `ttl` seconds; its ID.
    pub fn grant(&self, ttl: u64) -> Result<u64, Error> {
        let grant = self.post("/v3/lease/grant", &json!({ "TTL": ttl }))?;
        grant
            .get("ID")
            .and_then(id_of)
            .ok_or_else(|| Error::other("lease grant answered without an ID"))
    }

    pub fn revoke(&self, lease: u64) -> Result<(), Error> {
        self.post("/v3/lease/revoke", &json!({"ID": lease.to_string()}))
            .map(|_| ())
    }

    /// The value of `key` (None when there is none), as text.
    pub fn get(&self, key: &str) -> Result<Option<String>, Error> {
        Ok(self.get_with_lease(key)?.map(|(v, _)| v))
    }

    /// The value of `key` as text and the lease it is held under (0: none); None when there is
    /// no such key. An answer that is not a range answer is an error, never "no key".
    pub fn get_with_lease(&self, key: &str) -> Result<Option<(String, u64)>, Error> {
        let r = self.post("/v3/kv/range", &json!({ "key": b64(key) }))?;
        if r.get("header").is_none() {
            return Err(Error::other(format!(
                "reading {key}: the answer is not etcd's (no header)"
            )));
        }
        Ok(r.get("kvs")
            .and_then(|k| k.as_array())
            .and_then(|k| k.first())
            .map(|kv| {
                let v = kv.get("value").and_then(|v| v.as_str()).unwrap_or("");
                let lease = kv.get("lease").and_then(id_of).unwrap_or(0);
                (
                    String::from_utf8_lossy(&unb64(v).unwrap_or_default()).into_owned(),
                    lease,
                )
            }))
    }

    /// Puts `key` = `value`, no lease.
    pub fn put(&self, key: &str, value: &str) -> Result<(), Error> {
        self.post(
            "/v3/kv/put",
            &json!({ "key": b64(key), "value": b64(value) }),
        )
        .map(|_| ())
    }

    /// Puts `key` = `value` under `lease` only if the key does not exist: whether it did.
    pub fn create(&self, key: &str, value: &str, lease: u64) -> Result<bool, Error> {
        let txn = json!({
            "compare": [{"key": b64(key), "result": "EQUAL", "target": "CREATE", "create_revision": "0"}],
            "success": [{"request_put": {"key": b64(key), "value": b64(value), "lease": lease.to_string()}}],
        });
        let r = self.post("/v3/kv/txn", &txn)?;
        Ok(r.get("succeeded")
            .and_then(|b| b.as_bool())
            .unwrap_or(false))
    }

    /// Adds a member at `peer_urls`; the new member and the member list after the add.
    pub fn add(
        &self,
        peer_urls: &[String],
        learner: bool,
    ) -> Result<(ApiMember, Vec<ApiMember>), Error> {
        let r = self.post(
            "/v3/cluster/member/add",
            &json!({"peerURLs": peer_urls, "isLearner": learner}),
        )?;
        let added = r
            .get("member")
            .and_then(parse_member)
            .ok_or_else(|| Error::other("member/add answered without the new member"))?;
        Ok((added, parse_members(&r)?))
    }

    pub fn remove(&self, id: u64) -> Result<(), Error> {
        self.post("/v3/cluster/member/remove", &json!({"ID": id.to_string()}))
            .map(|_| ())
    }

    pub fn promote(&self, id: u64) -> Result<(), Error> {
        self.post("/v3/cluster/member/promote", &json!({"ID": id.to_string()}))
            .map(|_| ())
    }

    /// `/v3/maintenance/status` of the member at `endpoint`.
    pub fn status_of(&self, endpoint: &str) -> Result<MemberStatus, Error> {
        let v = self.post_to(endpoint, "/v3/maintenance/status", &json!({}))?;
        let num = |x: Option<&Value>| x.and_then(id_of).unwrap_or(0);
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let downgrade = v.get("downgradeInfo");
        Ok(MemberStatus {
            member_id: num(v.get("header").and_then(|h| h.get("member_id"))),
            leader: num(v.get("leader")),
            raft_index: num(v.get("raftIndex")),
            revision: num(v.get("header").and_then(|h| h.get("revision"))),
            version: text("version"),
            is_learner: v
                .get("isLearner")
                .and_then(|b| b.as_bool())
                .unwrap_or(false),
            db_size: num(v.get("dbSize")),
            db_size_in_use: num(v.get("dbSizeInUse")),
            db_size_quota: num(v.get("dbSizeQuota")),
            errors: v
                .get("errors")
                .and_then(|e| e.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str())
                        .map(|x| crate::util::text::excerpt(x, 200))
                        .collect()
                })
                .unwrap_or_default(),
            downgrade_target: downgrade
                .filter(|d| d.get("enabled").and_then(|e| e.as_bool()) == Some(true))
                .map(|d| {
                    d.get("targetVersion")
                        .and_then(|t| t.as_str())
                        .unwrap_or("")
                        .to_string()
                }),
        })
    }

    /// etcd's downgrade API (3.6 on): `VALIDATE`, `ENABLE` or `CANCEL` a downgrade of the cluster
    /// to the minor `version`; the cluster version the member answers with.
    pub fn downgrade(&self, action: &str, version: &str) -> Result<String, Error> {
        let v = self.post(
            "/v3/maintenance/downgrade",
            &json!({"action": action, "version": version}),
        )?;
        Ok(v.get("version")
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .to_string())
    }

    /// The alarms raised in the cluster: (member ID, alarm).
    pub fn alarms(&self) -> Result<Vec<(u64, Alarm)>, Error> {
        let v = self.post("/v3/maintenance/alarm", &json!({"action": "GET"}))?;
        Ok(v.get("alarms")
            .and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .map(|x| {
                        let id = x.get("memberID").and_then(id_of).unwrap_or(0);
                        let name = x.get("alarm").and_then(|n| n.as_str()).unwrap_or("NONE");
                        (id, Alarm::parse(name))
                    })
                    .filter(|(_, a)| *a != Alarm::None)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Disarms `alarm` raised by `member`.
    pub fn disarm(&self, member: u64, alarm: &Alarm) -> Result<(), Error> {
        let alarm = alarm.to_string();
        self.post(
            "/v3/maintenance/alarm",
            &json!({"action": "DEACTIVATE", "memberID": member.to_string(), "alarm": alarm}),
        )
        .map(|_| ())
    }

    /// Compacts the key space up to `revision` (physically: the space is free to reuse once it
    /// returns). A revision compacted before is not an error.
    pub fn compact(&self, revision: u64) -> Result<(), Error> {
        match self.post(
            "/v3/kv/compaction",
            &json!({"revision": revision.to_string(), "physical": true}),
        ) {
            Err(e) if e.message.contains("has been compacted") => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Asks the member at `endpoint` to defragment its backend, waiting up to `wait`: it answers
    /// only when done (a second or more per GiB).
    pub fn defragment(&self, endpoint: &str, wait: Duration) -> Result<(), Error> {
        self.post_waiting(
            endpoint,
            "/v3/maintenance/defragment",
            &json!({}),
            Some(wait),
        )
        .map(|_| ())
    }

    /// Asks the leader at `endpoint` to hand leadership to `target`.
    pub fn move_leader(&self, endpoint: &str, target: u64) -> Result<(), Error> {
        self.post_to(
            endpoint,
            "/v3/maintenance/transfer-leadership",
            &json!({"targetID": target.to_string()}),
        )
        .map(|_| ())
    }
}

/// When the etcd process answering at `endpoint` was started (seconds since the epoch, 10 ms
/// resolution), from its own `/metrics`: `process_start_time_seconds`.
pub fn process_start(client: &reqwest::blocking::Client, endpoint: &str) -> Result<f64, Error> {
    let url = format!("{}/metrics", endpoint.trim_end_matches('/'));
    let text = get_text(client, &url)?;
    process_start_time(&text)
        .ok_or_else(|| Error::other(format!("{url}: no process_start_time_seconds")))
}

/// `process_start_time_seconds` in a Prometheus text exposition.
pub fn process_start_time(metrics: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let v = l.strip_prefix("process_start_time_seconds")?;
        // Not a longer name that starts the same, nor the # HELP / # TYPE lines.
        let v = v.strip_prefix(' ')?;
        v.trim().parse::<f64>().ok().filter(|t| t.is_finite())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_process_start_time_from_metrics() {
        let m = "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n\
                 # TYPE process_start_time_seconds gauge\n\
                 process_start_time_seconds_total 3\n\
                 process_start_time_seconds 1.76470123412e+09\n";
        assert_eq!(process_start_time(m), Some(1.76470123412e9));
        assert_eq!(process_start_time("process_start_time_seconds NaN\n"), None);
        assert_eq!(process_start_time("<html>"), None);
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
}
