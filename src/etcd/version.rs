//! What each member says of its version (`GET /version`), asked of all at once.

use super::api::get_text;
use crate::util::error::Error;
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// An etcd release version: major.minor.patch (a leading `v`, a pre-release or build suffix
/// dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl FromStr for Version {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let t = s.trim().trim_start_matches('v');
        let core = t.split(['-', '+']).next().unwrap_or(t);
        let mut it = core.split('.').map(|p| p.parse::<u32>());
        match (it.next(), it.next(), it.next()) {
            (Some(Ok(major)), Some(Ok(minor)), patch) => Ok(Version {
                major,
                minor,
                patch: patch.and_then(|p| p.ok()).unwrap_or(0),
            }),
            _ => Err(Error::input(format!(
                "{} is not an etcd version",
                crate::util::text::excerpt(s, 40)
            ))),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Version {
    pub fn minor_str(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
    pub fn next_minor(&self) -> Version {
        Version {
            major: self.major,
            minor: self.minor + 1,
            patch: 0,
        }
    }
    pub fn same_minor(&self, o: &Version) -> bool {
        self.major == o.major && self.minor == o.minor
    }
}

/// `GET /version`: (server version, cluster version) of the member at `endpoint`.
pub fn version(
    client: &reqwest::blocking::Client,
    endpoint: &str,
) -> Result<(String, String), Error> {
    let url = format!("{}/version", endpoint.trim_end_matches('/'));
    let text = get_text(client, &url)?;
    let v: Value = serde_json::from_str(&text).map_err(|_| {
        Error::other(format!(
            "{url}: not JSON: {}",
            crate::util::text::excerpt(&text, 200)
        ))
    })?;
    let get = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    Ok((get("etcdserver"), get("etcdcluster")))
}

/// A member's answer at `/version`: its name, then (server version, cluster version) or why not.
pub type VersionAnswer = (String, Result<(String, String), Error>);

/// `/version` of every (name, client URL), asked at once: a dead member costs one timeout.
pub fn ask_versions(
    client: &reqwest::blocking::Client,
    targets: &[(String, String)],
) -> Vec<VersionAnswer> {
    std::thread::scope(|s| {
        let handles: Vec<_> = targets
            .iter()
            .map(|(name, url)| s.spawn(move || (name.clone(), version(client, url))))
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}
