//! Changing etcd's version: only along the paths etcd's guides support (`etcd::guide`), judged
//! from every member's `/version` before anything is downloaded or installed. A minor downgrade
//! is an explicit act (`etcd_allow_downgrade`) done through etcd's downgrade API.

use crate::cluster::node::Node;
use crate::etcd::api::Api;
use crate::etcd::guide;
use crate::etcd::version::{ask_versions, Version, VersionAnswer};
use crate::util::error::Error;
use crate::util::text::printable;

/// etcd's upgrade guides, named in every refusal.
pub const GUIDE: &str = "https://etcd.io/docs/latest/upgrades/";

/// What the running cluster says: each member's server version and the cluster version.
#[derive(Debug, Clone)]
pub struct Running {
    pub members: Vec<(String, Version)>,
    pub cluster: Version,
    /// Every member answered: then the members' own versions are the whole truth, and a cluster
    /// version below all of them is one etcd has not decided yet (a new cluster says 3.0 for its
    /// first seconds).
    pub complete: bool,
    /// False when no member answered and this node's installed version stands in for them.
    pub answered: bool,
    /// The target of the downgrade a 3.6+ member says is enabled.
    pub downgrade: Option<Version>,
}

impl Running {
    /// The cluster version to judge by.
    fn effective_cluster(&self) -> Version {
        let lowest = self
            .members
            .iter()
            .map(|(_, v)| Version { patch: 0, ..*v })
            .min();
        match lowest {
            Some(low) if self.complete && low > self.cluster && self.downgrade.is_none() => low,
            _ => self.cluster,
        }
    }

    fn named(&self, pick: impl Fn(&Version) -> bool) -> Vec<String> {
        self.members
            .iter()
            .filter(|(_, v)| pick(v))
            .map(|(n, v)| format!("{} at {v}", printable(n)))
            .collect()
    }
}

/// How a version change is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A path etcd supports: the line for `check`.
    Allowed(String),
    /// One minor back, through etcd's downgrade API: `enabled` when the cluster already has the
    /// downgrade to `target` enabled, else apply validates and enables it before its binaries
    /// change.
    Downgrade {
        line: String,
        target: Version,
        enabled: bool,
    },
    /// The rule it breaks, with the guide to read.
    Refused(String),
}

impl Verdict {
    /// The line, or the refusal as an error (nothing changed, exit 1).
    pub fn into_result(self) -> anyhow::Result<String> {
        match self {
            Verdict::Allowed(line) | Verdict::Downgrade { line, .. } => Ok(line),
            Verdict::Refused(why) => Err(Error::other(why).into()),
        }
    }
}

/// Whether moving this member from `from` to `to` is a path etcd supports on `running`;
/// `allow_downgrade` is the seed's `etcd_allow_downgrade`.
pub fn judge(from: Version, to: Version, running: &Running, allow_downgrade: bool) -> Verdict {
    let refused = |why: String| Verdict::Refused(format!("{from} → {to} is refused: {why}"));
    if to.same_minor(&from) {
        return Verdict::Allowed(format!(
            "{from} → {to}: a patch {} within {}",
            if to >= from { "upgrade" } else { "downgrade" },
            to.minor_str()
        ));
    }
    let cluster = running.effective_cluster();
    if to.major != from.major {
        return refused(format!(
            "a change of major version (etcd supports one minor at a time); see {GUIDE}"
        ));
    }
    if to < from {
        return downgrade(from, to, running, cluster, allow_downgrade);
    }
    match upgrade(from, to, running, cluster) {
        Some(why) => refused(why),
        None => Verdict::Allowed(format!(
            "{from} → {to}: one minor, all members on {} at {} or later ({})",
            from.minor_str(),
            guide::upgrade_to(to).map_or(from, |s| s.floor),
            guide::upgrade_to(to).map_or(GUIDE, |s| s.source)
        )),
    }
}

/// The rule of etcd's upgrade guide that moving up `from` → `to` on `running` breaks, if any.
fn upgrade(from: Version, to: Version, running: &Running, cluster: Version) -> Option<String> {
    if to.minor > from.minor + 1 {
        return Some(format!(
            "it skips {} (upgrade one minor at a time); see {GUIDE}",
            from.next_minor().minor_str()
        ));
    }
    if let Some(target) = running.downgrade {
        return Some(format!(
            "etcd's downgrade to {} is enabled on this cluster: finish it (every member on {}), or              cancel it (`etcdctl downgrade cancel`) and put the downgraded members back on {} first",
            target.minor_str(),
            target.minor_str(),
            from.minor_str()
        ));
    }
    if to.major == cluster.major && to.minor < cluster.minor {
        return Some(format!(
            "a downgrade below the cluster version {}; see {GUIDE}",
            cluster.minor_str()
        ));
    }
    let behind = running.named(|v| v.major == to.major && v.minor + 1 < to.minor);
    if !behind.is_empty() {
        return Some(format!(
            "members still run an older minor ({}): upgrade every member to {} first; see {GUIDE}",
            behind.join(", "),
            from.minor_str()
        ));
    }
    if to.minor > cluster.minor + 1 {
        return Some(format!(
            "the cluster version is still {} (a member that did not answer may run it): upgrade \
             every member to {} first; see {GUIDE}",
            cluster.minor_str(),
            from.minor_str()
        ));
    }
    let Some(step) = guide::upgrade_to(to) else {
        return Some(format!(
            "this etcd-bootstrap knows etcd's upgrade guides up to {} only; use a newer etcd-bootstrap \
             for {}; see {GUIDE}",
            guide::UPGRADES
                .last()
                .map_or(String::new(), |s| format!("{}.{}", s.to.0, s.to.1)),
            to.minor_str()
        ));
    };
    let low = running.named(|v| v.same_minor(&from) && *v < step.floor);
    if low.is_empty() {
        return None;
    }
    let names: Vec<String> = running
        .members
        .iter()
        .filter(|(_, v)| v.same_minor(&from) && *v < step.floor)
        .map(|(n, _)| printable(n).into_owned())
        .collect();
    Some(format!(
        "{} needs every member at {} or later first ({}; {}): set etcd_version: \"{}\" in the seed \
         and run `etcd-bootstrap apply` on {} (a patch upgrade, one member at a time), then \
         etcd_version: \"{to}\"",
        to.minor_str(),
        step.floor,
        low.join(", "),
        step.source,
        step.floor,
        names.join(", ")
    ))
}

/// Moving down one minor: only through etcd's downgrade API, only when the seed allows it.
fn downgrade(
    from: Version,
    to: Version,
    running: &Running,
    cluster: Version,
    allow: bool,
) -> Verdict {
    let refused = |why: String| Verdict::Refused(format!("{from} → {to} is refused: {why}"));
    if to.minor + 1 != from.minor {
        return refused(format!(
            "a downgrade across more than one minor (etcd downgrades one minor at a time); see {GUIDE}"
        ));
    }
    let Some(source) = guide::downgrade_from(from) else {
        return refused(format!(
            "a downgrade below the cluster version {} (etcd {} has no downgrade API; etcd's guide \
             replaces binaries by hand: https://etcd.io/docs/v3.5/downgrades/downgrade_3_5/)",
            cluster.minor_str(),
            from.minor_str()
        ));
    };
    if !allow {
        return refused(format!(
            "a downgrade to {}: etcd supports it through its downgrade API ({source}), and apply \
             does it only when the seed says etcd_allow_downgrade: true (take a snapshot first)",
            to.minor_str()
        ));
    }
    if !running.answered {
        return refused(format!(
            "a downgrade needs etcd's downgrade API on the running cluster, and no member answered \
             ({source})"
        ));
    }
    let target = Version { patch: 0, ..to };
    let older = running.named(|v| v.major == to.major && v.minor < to.minor);
    if !older.is_empty() {
        return refused(format!(
            "members run a minor older than {} ({})",
            to.minor_str(),
            older.join(", ")
        ));
    }
    let enabled = match running.downgrade {
        Some(t) if t.same_minor(&to) => true,
        Some(t) => {
            return refused(format!(
                "etcd's downgrade to {} is enabled on this cluster, not to {}",
                t.minor_str(),
                to.minor_str()
            ))
        }
        None if cluster.same_minor(&from) => false,
        None => {
            return refused(format!(
                "the cluster version is {} and no downgrade is enabled: etcd's downgrade goes from \
                 {} to {} ({source})",
                cluster.minor_str(),
                from.minor_str(),
                to.minor_str()
            ))
        }
    };
    Verdict::Downgrade {
        line: format!(
            "{from} → {to}: a downgrade through etcd's downgrade API ({}; {source})",
            if enabled {
                format!("enabled, cluster at {}", cluster.minor_str())
            } else {
                "apply validates and enables it before this member's binaries change".to_string()
            }
        ),
        target,
        enabled,
    }
}

impl Running {
    /// The members that told their version, and the lowest cluster version any told (None when
    /// no member answered: no running cluster).
    pub fn from_answers(answers: &[VersionAnswer]) -> Option<Running> {
        let mut members = Vec::new();
        let mut cluster: Option<Version> = None;
        for (name, a) in answers {
            let Ok((server, cv)) = a else { continue };
            if let Ok(v) = server.parse::<Version>() {
                members.push((name.clone(), v));
            }
            if let Ok(c) = cv.parse::<Version>() {
                cluster = Some(cluster.map_or(c, |old: Version| old.min(c)));
            }
        }
        match (members.is_empty(), cluster) {
            (false, Some(cluster)) => Some(Running {
                complete: answers.iter().all(|(_, a)| a.is_ok()),
                answered: true,
                downgrade: None,
                members,
                cluster,
            }),
            _ => None,
        }
    }
}

/// Every member's versions, asked at once; and, from a member on 3.6 or later (the first to
/// answer), whether a downgrade is enabled.
pub fn running(node: &Node) -> anyhow::Result<Option<Running>> {
    let (cfg, client) = (node.cfg, node.client()?);
    let targets: Vec<(String, String)> = cfg
        .members
        .iter()
        .map(|m| (m.name.clone(), m.url(cfg.client_port)))
        .collect();
    let Some(mut r) = Running::from_answers(&ask_versions(&client, &targets)) else {
        return Ok(None);
    };
    let api = Api::new(client, Vec::new());
    let with_api: Vec<&str> = targets
        .iter()
        .filter(|(n, _)| {
            r.members
                .iter()
                .any(|(m, v)| m == n && (v.major, v.minor) >= (3, 6))
        })
        .map(|(_, url)| url.as_str())
        .collect();
    for url in with_api {
        if let Ok(st) = api.status_of(url) {
            r.downgrade = st.downgrade_target.and_then(|t| t.parse().ok());
            break;
        }
    }
    Ok(Some(r))
}

/// This node's version change, judged: None when the seed names the installed version (or nothing
/// was installed yet); else the line for `check`, or the refusal. When no member answers, the path
/// is judged from this node's installed version alone (which still refuses a skip or a downgrade
/// across minors).
pub fn path(node: &Node) -> anyhow::Result<Option<Verdict>> {
    let cfg = node.cfg;
    let Some(stamp) = node.stamp() else {
        return Ok(None);
    };
    let (old, new) = (stamp.etcd_version.as_str(), cfg.release.version.as_str());
    if old.is_empty() || old == new {
        return Ok(None);
    }
    let (from, to) = match old.parse::<Version>() {
        Ok(f) => (f, cfg.release.semver),
        Err(e) => {
            return Ok(Some(Verdict::Refused(format!(
                "{old} → {new} cannot be judged: {e}; see {GUIDE}"
            ))))
        }
    };
    let cluster = match running(node) {
        Ok(Some(r)) => r,
        answer => {
            let why = answer
                .err()
                .map(|e| format!(" ({e:#})"))
                .unwrap_or_default();
            log::warn!(
                "no member answered /version{why}: the upgrade path is judged from the installed {from} alone"
            );
            Running {
                members: vec![(cfg.this_member.name.clone(), from)],
                cluster: Version { patch: 0, ..from },
                complete: true,
                answered: false,
                downgrade: None,
            }
        }
    };
    Ok(Some(judge(from, to, &cluster, cfg.allow_downgrade)))
}

#[cfg(test)]
mod tests;
