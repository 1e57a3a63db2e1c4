//! etcd's v3 JSON API (the gateway etcd serves on its client port: `/v3/cluster/member/list`,
//! `/v3/lease/grant`, ...) over TLS with the client certificate, and the member model it returns.
//! The node needs no etcdctl and no control machine for membership changes.

use anyhow::Result;
use serde_json::{json, Value};

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
    /// The member in words, safe to print whatever it sent (control characters escaped).
    pub fn describe(&self) -> String {
        let name = if self.started() {
            self.name.as_str()
        } else {
            "(not started)"
        };
        let text = format!(
            "{name} {:x} at {}{}",
            self.id,
            self.peer_urls.join(","),
            if self.learner { " (learner)" } else { "" }
        );
        crate::util::text::printable(&text).into_owned()
    }

    /// Whether its name and peer URLs may be written into a unit (`--initial-cluster`): a name is
    /// empty (not started) or one plain name, and every peer URL is `https://HOST:PORT`.
    pub fn fit_for_unit(&self) -> Result<(), String> {
        if !self.name.is_empty() && !crate::util::text::is_plain_name(&self.name) {
            return Err(format!(
                "member {:x} has a name that is not {}",
                self.id,
                crate::util::text::PLAIN_NAME
            ));
        }
        if self.peer_urls.is_empty() || !self.peer_urls.iter().all(|u| is_member_url(u)) {
            return Err(format!(
                "member {:x} has a peer URL that is not https://HOST:PORT",
                self.id
            ));
        }
        Ok(())
    }
}

/// Whether `url`, as a member advertised it, is one the tool may ask: `https://HOST:PORT` with a
/// host of letters, digits, `.`, `-`, `:` (IPv6 in brackets), a numeric port, nothing else (no
/// user, path, query or control character: it came from the cluster, and may land in a unit).
pub fn is_member_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => return false,
    };
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !v6.is_empty()
            && v6
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    };
    host_ok && !port.is_empty() && port.len() <= 5 && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// A uint64 as the gateway writes it: a JSON string (protobuf's JSON mapping), or a number.
pub fn id_of(v: &Value) -> Option<u64> {
    match v {
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

impl std::error::Error for CallError {}

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

/// The most a member's answer may hold: every answer the tool reads is far smaller (a member
/// list, a status, `/metrics`), and a member can send anything.
pub const MAX_BODY: u64 = 8 << 20;

/// A response body as text, refused past `MAX_BODY` rather than read without end.
pub fn body_text(resp: reqwest::blocking::Response, url: &str) -> Result<String, String> {
    use std::io::Read;
    let mut buf = Vec::new();
    resp.take(MAX_BODY + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{url}: reading the answer: {e}"))?;
    if buf.len() as u64 > MAX_BODY {
        return Err(format!("{url}: the answer is larger than {MAX_BODY} bytes"));
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
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

    /// POSTs to one endpoint.
    pub fn post_to(&self, endpoint: &str, path: &str, body: &Value) -> Result<Value, CallError> {
        let url = format!("{}{path}", endpoint.trim_end_matches('/'));
        let resp = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .map_err(|e| CallError {
                busy: true,
                message: format!("{url}: {}", crate::util::error::chain_text(&e)),
            })?;
        let status = resp.status();
        let text = body_text(resp, &url).map_err(|message| CallError {
            busy: true,
            message,
        })?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(v);
        }
        let message = v
            .get("message")
            .or_else(|| v.get("error"))
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| crate::util::text::excerpt(text.trim(), 200));
        let message = crate::util::text::printable(&message).into_owned();
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
            let i = (self.first.load(std::sync::atomic::Ordering::Relaxed) + k) % n;
            match self.post_to(&self.endpoints[i], path, body) {
                Ok(v) => {
                    self.first.store(i, std::sync::atomic::Ordering::Relaxed);
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

    /// A lease of `ttl` seconds; its ID.
    pub fn grant(&self, ttl: u64) -> Result<u64, CallError> {
        let grant = self.post("/v3/lease/grant", &json!({ "TTL": ttl }))?;
        grant.get("ID").and_then(id_of).ok_or_else(|| CallError {
            busy: false,
            message: format!("lease grant answered without an ID: {grant}"),
        })
    }

    pub fn revoke(&self, lease: u64) -> Result<(), CallError> {
        self.post("/v3/lease/revoke", &json!({"ID": lease.to_string()}))
            .map(|_| ())
    }

    /// The value of `key` (None when there is none), as text.
    pub fn get(&self, key: &str) -> Result<Option<String>, CallError> {
        let r = self.post("/v3/kv/range", &json!({ "key": b64(key) }))?;
        Ok(r.get("kvs")
            .and_then(|k| k.as_array())
            .and_then(|k| k.first())
            .map(|kv| {
                let v = kv.get("value").and_then(|v| v.as_str()).unwrap_or("");
                String::from_utf8_lossy(&unb64(v).unwrap_or_default()).into_owned()
            }))
    }

    /// Puts `key` = `value` under `lease` only if the key does not exist: whether it did.
    pub fn create(&self, key: &str, value: &str, lease: u64) -> Result<bool, CallError> {
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
    ) -> Result<(ApiMember, Vec<ApiMember>), CallError> {
        let r = self.post(
            "/v3/cluster/member/add",
            &json!({"peerURLs": peer_urls, "isLearner": learner}),
        )?;
        let added = r
            .get("member")
            .and_then(parse_member)
            .ok_or_else(|| CallError {
                busy: false,
                message: format!("member/add answered without the new member: {r}"),
            })?;
        Ok((added, parse_members(&r)))
    }

    pub fn remove(&self, id: u64) -> Result<(), CallError> {
        self.post("/v3/cluster/member/remove", &json!({"ID": id.to_string()}))
            .map(|_| ())
    }

    pub fn promote(&self, id: u64) -> Result<(), CallError> {
        self.post("/v3/cluster/member/promote", &json!({"ID": id.to_string()}))
            .map(|_| ())
    }
}

/// What `/v3/maintenance/status` says of the member that answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    pub member_id: u64,
    pub leader: u64,
    pub raft_index: u64,
    pub version: String,
    pub is_learner: bool,
}

/// `GET /version`: (server version, cluster version) of the member at `endpoint`.
pub fn version(
    client: &reqwest::blocking::Client,
    endpoint: &str,
) -> Result<(String, String), String> {
    let url = format!("{}/version", endpoint.trim_end_matches('/'));
    let resp = client
        .get(&url)
        .send()
        .map_err(|e| format!("{url}: {}", crate::util::error::chain_text(&e)))?;
    let text = body_text(resp, &url)?;
    let v: Value = serde_json::from_str(&text).map_err(|_| {
        format!(
            "{url}: not JSON: {}",
            crate::util::text::excerpt(&text, 200)
        )
    })?;
    let get = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    Ok((get("etcdserver"), get("etcdcluster")))
}

impl Api {
    /// `/v3/maintenance/status` of the member at `endpoint`.
    pub fn status_of(&self, endpoint: &str) -> Result<MemberStatus, CallError> {
        let v = self.post_to(endpoint, "/v3/maintenance/status", &json!({}))?;
        let num = |x: Option<&Value>| x.and_then(id_of).unwrap_or(0);
        Ok(MemberStatus {
            member_id: num(v.get("header").and_then(|h| h.get("member_id"))),
            leader: num(v.get("leader")),
            raft_index: num(v.get("raftIndex")),
            version: v
                .get("version")
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_string(),
            is_learner: v
                .get("isLearner")
                .and_then(|b| b.as_bool())
                .unwrap_or(false),
        })
    }

    /// Asks the leader at `endpoint` to hand leadership to `target`.
    pub fn move_leader(&self, endpoint: &str, target: u64) -> Result<(), CallError> {
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
pub fn process_start(client: &reqwest::blocking::Client, endpoint: &str) -> Result<f64, String> {
    let url = format!("{}/metrics", endpoint.trim_end_matches('/'));
    let resp = client
        .get(&url)
        .send()
        .map_err(|e| format!("{url}: {}", crate::util::error::chain_text(&e)))?;
    if !resp.status().is_success() {
        return Err(format!("{url}: {}", resp.status()));
    }
    let text = body_text(resp, &url)?;
    process_start_time(&text).ok_or_else(|| format!("{url}: no process_start_time_seconds"))
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
    fn member_urls_are_plain_https_host_and_port() {
        for ok in [
            "https://10.8.0.1:2379",
            "https://etcd-node1.example.com:2379/",
            "https://[fd00::1]:2379",
        ] {
            assert!(is_member_url(ok), "{ok}");
        }
        for bad in [
            "http://10.8.0.1:2379",
            "https://10.8.0.1",
            "https://10.8.0.1:0",
            "https://10.8.0.1:99999",
            "https://user@10.8.0.1:2379",
            "https://10.8.0.1:2379/x",
            "https://10.8.0.1\r:2379",
            "https://10.8.0.1:2379\n--foo=bar",
            "https://[]:2379",
            "file:///etc/passwd",
        ] {
            assert!(!is_member_url(bad), "{bad:?}");
        }
    }

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
