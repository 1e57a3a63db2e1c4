//! The member model of etcd's v3 API as the gateway writes it, and what the tool accepts of it:
//! everything a member sends is input (names and URLs are checked before they are used).

use crate::util::error::Error;
use serde_json::Value;

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
    pub fn fit_for_unit(&self) -> Result<(), Error> {
        if !self.name.is_empty() && !crate::util::text::is_plain_name(&self.name) {
            return Err(Error::other(format!(
                "member {:x} has a name that is not {}",
                self.id,
                crate::util::text::PLAIN_NAME
            )));
        }
        if self.peer_urls.is_empty() || !self.peer_urls.iter().all(|u| is_member_url(u)) {
            return Err(Error::other(format!(
                "member {:x} has a peer URL that is not https://HOST:PORT",
                self.id
            )));
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

/// An alarm etcd raises, by the name its API gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alarm {
    /// No alarm (etcd's `NONE`: an entry that says nothing).
    None,
    /// The backend reached its quota: the cluster refuses writes.
    Nospace,
    /// A member's data is corrupt.
    Corrupt,
    /// A name this tool does not know (escaped, cut to 40 characters).
    Other(String),
}

impl Alarm {
    pub fn parse(name: &str) -> Alarm {
        match name {
            "NONE" => Alarm::None,
            "NOSPACE" => Alarm::Nospace,
            "CORRUPT" => Alarm::Corrupt,
            other => Alarm::Other(crate::util::text::excerpt(other, 40)),
        }
    }
}

impl std::fmt::Display for Alarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Alarm::None => "NONE",
            Alarm::Nospace => "NOSPACE",
            Alarm::Corrupt => "CORRUPT",
            Alarm::Other(n) => n,
        })
    }
}

/// The most members a member list may hold.
pub const MAX_MEMBERS: usize = 64;

/// The member list of an answer. Fails closed: an answer without etcd's header, without members
/// (a cluster has at least one) or with an entry that is no member is an error, never an empty
/// or shorter list (which would read as "alone").
pub fn parse_members(v: &Value) -> Result<Vec<ApiMember>, Error> {
    let bad = |why: &str| {
        Err(Error::other(format!(
            "the member list is not etcd's: {why}"
        )))
    };
    if !v.get("header").is_some_and(Value::is_object) {
        return bad("no header");
    }
    let Some(entries) = v.get("members").and_then(|m| m.as_array()) else {
        return bad("no members");
    };
    if entries.is_empty() {
        return bad("no members");
    }
    // Each member is asked at once, on a thread of its own: a list no cluster has (etcd warns
    // past 7 voters) is a member sending anything, not a cluster to ask.
    if entries.len() > MAX_MEMBERS {
        return bad(&format!(
            "{} members (more than {MAX_MEMBERS})",
            entries.len()
        ));
    }
    let members: Option<Vec<ApiMember>> = entries.iter().map(parse_member).collect();
    match members {
        Some(m) => Ok(m),
        None => bad("an entry without a member ID"),
    }
}

/// What `/v3/maintenance/status` says of the member that answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    pub member_id: u64,
    pub leader: u64,
    pub raft_index: u64,
    /// The store's revision as this member answered (its header).
    pub revision: u64,
    pub version: String,
    pub is_learner: bool,
    /// The backend file's size, and how much of it holds data (3.4 on).
    pub db_size: u64,
    pub db_size_in_use: u64,
    /// The member's `--quota-backend-bytes` as it runs (3.6 on; 0 when it does not say).
    pub db_size_quota: u64,
    /// Alarms and errors the member reports (`NOSPACE`, `CORRUPT`, ...).
    pub errors: Vec<String>,
    /// The target of an enabled downgrade (3.6 on).
    pub downgrade_target: Option<String>,
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
    fn reads_the_gateway_json() {
        let v: Value = serde_json::from_str(
            r#"{"header":{"cluster_id":"1"},"members":[{"ID":"10276657743932975437","name":"n1",
            "peerURLs":["https://10.8.0.1:2380"],"clientURLs":["https://10.8.0.1:2379"]},
            {"ID":"42","peerURLs":["https://10.8.0.4:2380"],"isLearner":true}]}"#,
        )
        .unwrap();
        let ms = parse_members(&v).unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].id, 10276657743932975437);
        assert!(ms[0].started() && !ms[0].learner);
        assert!(!ms[1].started() && ms[1].learner);
    }

    #[test]
    fn a_member_list_that_is_not_etcd_s_is_an_error_never_empty() {
        for bad in [
            "{}",
            r#"{"header":{}}"#,
            r#"{"header":{},"members":[]}"#,
            r#"{"header":{},"members":{}}"#,
            r#"{"members":[{"ID":"1","name":"n1"}]}"#,
            r#"{"header":{},"members":[{"ID":"1","name":"n1"},{"name":"x"}]}"#,
            "null",
        ] {
            let v: Value = serde_json::from_str(bad).unwrap();
            assert!(parse_members(&v).is_err(), "{bad}");
        }
        let many: Vec<Value> = (1..=65)
            .map(|i| serde_json::json!({"ID": i.to_string(), "name": format!("n{i}")}))
            .collect();
        let v = serde_json::json!({"header": {}, "members": many});
        assert!(parse_members(&v).is_err(), "65 members");
    }

    #[test]
    fn a_member_is_described_escaped_and_judged_fit_for_a_unit() {
        let m = ApiMember {
            id: 0x2a,
            name: "n\u{1b}[2J".into(),
            peer_urls: vec!["https://10.8.0.1:2380".into()],
            client_urls: vec![],
            learner: true,
        };
        assert_eq!(
            m.describe(),
            "n\\u{1b}[2J 2a at https://10.8.0.1:2380 (learner)"
        );
        assert!(m.fit_for_unit().is_err());
        let ok = ApiMember {
            name: "n1".into(),
            ..m.clone()
        };
        assert!(ok.fit_for_unit().is_ok());
        let unstarted = ApiMember {
            name: String::new(),
            ..m
        };
        assert!(unstarted.fit_for_unit().is_ok() && !unstarted.started());
    }
}
