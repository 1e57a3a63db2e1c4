//! A minor downgrade through etcd's own API, as its guides do it: `validate` the target, `enable`
//! the downgrade (the cluster then speaks the older minor's protocol and migrates its storage),
//! only then the binaries, one member at a time in the restart turn; etcd ends the downgrade by
//! itself once every member runs the target minor.

use super::node::Node;
use crate::etcd::api::Api;
use crate::etcd::version::Version;
use crate::util::error::Error;
use anyhow::{anyhow, Result};

/// Validates and enables the downgrade to `target`'s minor through any member (all still run the
/// newer minor: the cluster version says so). Another member's apply may have enabled it a moment
/// ago: that is the same act.
pub fn enable(node: &Node, target: Version) -> Result<()> {
    let api = Api::new(node.client()?, node.cfg.client_urls());
    let minor = target.minor_str();
    let refused = |step: &str, e: Error| {
        anyhow!(
            "etcd refused to {step} the downgrade to {minor}: {e}; nothing was changed (see \
             https://etcd.io/docs/latest/downgrades/downgrading-etcd/)"
        )
    };
    let cluster = api
        .downgrade("VALIDATE", &minor)
        .map_err(|e| refused("validate", e))?;
    log::info!("downgrade to {minor} validated (cluster version {cluster})");
    match api.downgrade("ENABLE", &minor) {
        Ok(cluster) => {
            log::info!(
                "downgrade to {minor} enabled: the cluster now runs the {minor} protocol (cluster version {cluster}); \
                 each member's binaries follow in its restart turn"
            );
            Ok(())
        }
        Err(e) if already_enabled(&api, target) => {
            log::info!("downgrade to {minor} was already enabled ({e})");
            Ok(())
        }
        Err(e) => Err(refused("enable", e)),
    }
}

fn already_enabled(api: &Api, target: Version) -> bool {
    api.endpoints
        .iter()
        .find_map(|e| api.status_of(e).ok())
        .and_then(|st| st.downgrade_target)
        .and_then(|t| t.parse::<Version>().ok())
        .is_some_and(|t| t.same_minor(&target))
}

/// After this member's restart: whether every member now runs the target minor and the cluster
/// says so (etcd then ends the downgrade), or who is still to go.
pub fn report(node: &Node, target: Version) {
    match super::upgrade::running(node) {
        Ok(Some(r)) => {
            let left: Vec<String> = r
                .members
                .iter()
                .filter(|(_, v)| !v.same_minor(&target))
                .map(|(n, v)| format!("{} at {v}", crate::util::text::printable(n)))
                .collect();
            if left.is_empty() && r.complete && r.cluster.same_minor(&target) {
                log::info!(
                    "downgrade complete: every member runs {}, and so does the cluster (version {})",
                    target.minor_str(),
                    r.cluster
                );
            } else {
                log::info!(
                    "downgrade to {} goes on: {} still to move (apply this seed on each, one at a time)",
                    target.minor_str(),
                    if left.is_empty() {
                        "a member that did not answer".to_string()
                    } else {
                        left.join(", ")
                    }
                );
            }
        }
        _ => log::warn!(
            "no member answered /version after the restart: the downgrade's progress is unknown"
        ),
    }
}
