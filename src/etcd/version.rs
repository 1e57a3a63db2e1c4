//! What each member says of its version (`GET /version`), asked of all at once.

use super::api::get_text;
use crate::util::error::Error;
use serde_json::Value;

pub use crate::util::version::Version;

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
