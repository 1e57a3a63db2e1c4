//! Health: GET /health on members over TLS with the client certificate, like `etcdctl endpoint
//! health`, but needing only the seed and the conf dir (no etcdctl on the node).

use crate::seed::Config;
use crate::util::retry::{Backoff, Next, Policy};
use anyhow::{bail, Result};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EndpointHealth {
    pub endpoint: String,
    pub healthy: bool,
    pub took_ms: f64,
    pub error: Option<String>,
}

impl EndpointHealth {
    /// As `etcdctl endpoint health` prints it; what the member said is escaped.
    pub fn line(&self) -> String {
        if self.healthy {
            format!(
                "{} is healthy: successfully committed proposal: took = {}",
                self.endpoint,
                fmt_ms(self.took_ms)
            )
        } else {
            format!(
                "{} is unhealthy: {}",
                crate::util::text::printable(&self.endpoint),
                crate::util::text::printable(self.error.as_deref().unwrap_or("unknown"))
            )
        }
    }
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.3}s", ms / 1000.0)
    } else {
        format!("{ms:.1}ms")
    }
}

pub struct Checker {
    client: reqwest::blocking::Client,
    /// `?exclude=NOSPACE` when an alarm must not count as unhealthy (etcd 3.5 on; older members
    /// ignore it and answer unhealthy while the alarm is raised).
    query: String,
    /// The alarm excluded: etcd 3.5.0 and 3.5.1 exclude it for the first member that raised it
    /// only (etcd PR 13467), and answer "ALARM NOSPACE" when a second member raised it too, so
    /// that answer is read as healthy here as well.
    excluded: Option<String>,
}

impl Checker {
    pub fn new(cfg: &Config, root: &Path) -> Result<Checker> {
        Ok(Checker::from_client(super::client::tls_client(cfg, root)?))
    }

    pub fn from_client(client: reqwest::blocking::Client) -> Checker {
        Checker {
            client,
            query: String::new(),
            excluded: None,
        }
    }

    /// The same checks, not counting a raised `alarm` against a member.
    pub fn excluding(self, alarm: &str) -> Checker {
        Checker {
            query: format!("?exclude={alarm}"),
            excluded: Some(alarm.to_string()),
            ..self
        }
    }

    pub fn check(&self, endpoint: &str) -> EndpointHealth {
        let url = format!("{}/health{}", endpoint.trim_end_matches('/'), self.query);
        let start = Instant::now();
        let result = super::api::exchange(self.client.get(&url), &url, super::api::ANSWER)
            .map_err(|e| e.message)
            .map(|a| (r_status(&a.text), a.text));
        let took_ms = start.elapsed().as_secs_f64() * 1000.0;
        let only_excluded = |body: &str| {
            self.excluded.as_deref().is_some_and(|a| {
                serde_json::from_str::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v.get("reason")?.as_str().map(str::to_string))
                    .is_some_and(|r| r == format!("ALARM {a}"))
            })
        };
        let (healthy, error) = match result {
            Ok((Some(true), _)) => (true, None),
            Ok((Some(false), body)) if only_excluded(&body) => (true, None),
            Ok((Some(false), body)) => (false, Some(unhealthy_reason(&body))),
            Ok((None, body)) => (
                false,
                Some(format!(
                    "unexpected answer from {url}: {}",
                    crate::util::text::excerpt(body.trim(), 200)
                )),
            ),
            Err(e) => (false, Some(e)),
        };
        EndpointHealth {
            endpoint: endpoint.to_string(),
            healthy,
            took_ms,
            error,
        }
    }

    /// All endpoints at once: a dead member costs one timeout, not one per member.
    pub fn check_all(&self, endpoints: &[String]) -> Vec<EndpointHealth> {
        std::thread::scope(|s| {
            let handles: Vec<_> = endpoints
                .iter()
                .map(|e| s.spawn(move || self.check(e)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("health check thread"))
                .collect()
        })
    }

    /// Polls with backoff (50 ms, doubling, capped at 1 s) until all are healthy or `wait` passes.
    pub fn wait_all(&self, endpoints: &[String], wait: Duration) -> Vec<EndpointHealth> {
        let policy = Policy {
            backoff: Backoff {
                first: Duration::from_millis(50),
                max: Duration::from_secs(1),
                jitter: false,
            },
            attempts: None,
            within: wait,
            last_try_at_deadline: true,
        };
        let polled = policy.run(
            |_| {
                let statuses = self.check_all(endpoints);
                Ok(if statuses.iter().all(|s| s.healthy) {
                    Next::Done(statuses)
                } else {
                    Next::Again(statuses)
                })
            },
            |_, _, _| {},
        );
        match polled {
            Ok(Ok(all)) => all,
            Ok(Err(gave_up)) => gave_up.last,
            Err(_) => unreachable!("a health check reports, it never fails"),
        }
    }
}

fn r_status(body: &str) -> Option<bool> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    match v.get("health")? {
        serde_json::Value::String(s) => Some(s == "true"),
        serde_json::Value::Bool(b) => Some(*b),
        _ => None,
    }
}

fn unhealthy_reason(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_string))
        .filter(|r| !r.is_empty())
        .map(|r| {
            format!(
                "health check failed: {}",
                crate::util::text::excerpt(&r, 200)
            )
        })
        .unwrap_or_else(|| {
            format!(
                "health check failed: {}",
                crate::util::text::excerpt(body.trim(), 200)
            )
        })
}

pub fn parse_endpoints(s: &str) -> Result<Vec<String>> {
    let eps: Vec<String> = s
        .split(',')
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    for e in &eps {
        if !e.starts_with("https://") {
            bail!(crate::util::error::Error::input(format!(
                "--endpoints: {e:?} is not an https:// URL (etcd-bootstrap always talks TLS to etcd)"
            )));
        }
    }
    if eps.is_empty() {
        bail!(crate::util::error::Error::input("--endpoints is empty"));
    }
    Ok(eps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_read_like_etcdctl() {
        let ok = EndpointHealth {
            endpoint: "https://10.8.0.1:2379".into(),
            healthy: true,
            took_ms: 9.43,
            error: None,
        };
        assert_eq!(
            ok.line(),
            "https://10.8.0.1:2379 is healthy: successfully committed proposal: took = 9.4ms"
        );
        let bad = EndpointHealth {
            healthy: false,
            error: Some("connection refused".into()),
            ..ok
        };
        assert_eq!(
            bad.line(),
            "https://10.8.0.1:2379 is unhealthy: connection refused"
        );
    }

    #[test]
    fn reads_etcd_health_bodies() {
        assert_eq!(r_status(r#"{"health":"true","reason":""}"#), Some(true));
        assert_eq!(
            r_status(r#"{"health":"false","reason":"RAFT NO LEADER"}"#),
            Some(false)
        );
        assert_eq!(r_status("<html>"), None);
        assert_eq!(
            unhealthy_reason(r#"{"health":"false","reason":"RAFT NO LEADER"}"#),
            "health check failed: RAFT NO LEADER"
        );
    }

    /// etcd 3.5.0/3.5.1 answer "ALARM NOSPACE" despite `?exclude=NOSPACE` when two members raised
    /// it: with the alarm excluded, that answer is healthy; any other reason is not.
    #[test]
    fn an_excluded_alarm_is_healthy_even_when_etcd_still_names_it() {
        use crate::util::testserver::{Response, Server};
        use std::sync::Arc;
        for (reason, healthy) in [
            ("ALARM NOSPACE", true),
            ("ALARM CORRUPT", false),
            ("RAFT NO LEADER", false),
        ] {
            let body = format!(r#"{{"health":"false","reason":"{reason}"}}"#);
            let s = Server::start(
                "127.0.0.1:0",
                None,
                Arc::new(move |_| Response::new(503, body.clone())),
            )
            .unwrap();
            let client = reqwest::blocking::Client::new();
            let h = Checker::from_client(client).excluding("NOSPACE");
            assert_eq!(h.check(&s.url("http")).healthy, healthy, "{reason}");
        }
    }

    #[test]
    fn endpoints_must_be_https() {
        assert_eq!(
            parse_endpoints("https://a:2379, https://b:2379").unwrap(),
            vec!["https://a:2379", "https://b:2379"]
        );
        assert!(parse_endpoints("http://a:2379").is_err());
        assert!(parse_endpoints(" , ").is_err());
    }
}
