//! Changing etcd's version: only along the paths etcd supports, judged from every member's
//! `/version` before anything is downloaded or installed.

use crate::etcd::version::{ask_versions, VersionAnswer};
use crate::seed::Config;
use crate::util::error::Error;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// etcd's upgrade guide, named in every refusal.
pub const GUIDE: &str = "https://etcd.io/docs/latest/upgrades/";

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
    fn minor_str(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
    fn next_minor(&self) -> Version {
        Version {
            major: self.major,
            minor: self.minor + 1,
            patch: 0,
        }
    }
    fn same_minor(&self, o: &Version) -> bool {
        self.major == o.major && self.minor == o.minor
    }
}

/// The versions every member must run before any member moves to a minor: (that minor, the
/// minimum, where upstream says so). One table, so the next checklist is one line.
pub const MINIMUMS: &[((u32, u32), Version, &str)] = &[(
    (3, 6),
    Version {
        major: 3,
        minor: 5,
        patch: 26,
    },
    "https://etcd.io/docs/v3.6/upgrades/upgrade_3_6/",
)];

/// What the running cluster says: each member's server version and the cluster version.
#[derive(Debug, Clone)]
pub struct Running {
    pub members: Vec<(String, Version)>,
    pub cluster: Version,
    /// Every member answered: then the members' own versions are the whole truth, and a cluster
    /// version below all of them is one etcd has not decided yet (a new cluster says 3.0 for its
    /// first seconds).
    pub complete: bool,
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
            Some(low) if self.complete && low > self.cluster => low,
            _ => self.cluster,
        }
    }
}

/// How a version change is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A path etcd supports: the line for `check`.
    Allowed(String),
    /// The rule it breaks, with the guide to read.
    Refused(String),
}

impl Verdict {
    /// The line, or the refusal as an error (nothing changed, exit 1).
    pub fn into_result(self) -> anyhow::Result<String> {
        match self {
            Verdict::Allowed(line) => Ok(line),
            Verdict::Refused(why) => Err(Error::other(why).into()),
        }
    }
}

/// Whether moving this member from `from` to `to` is a path etcd supports on `running`.
pub fn judge(from: Version, to: Version, running: &Running) -> Verdict {
    match rule_broken(from, to, running) {
        Some(why) => Verdict::Refused(format!("{from} → {to} is refused: {why}; see {GUIDE}")),
        None if to.same_minor(&from) => Verdict::Allowed(format!(
            "{from} → {to}: a patch {} within {}",
            if to >= from { "upgrade" } else { "downgrade" },
            to.minor_str()
        )),
        None => Verdict::Allowed(format!(
            "{from} → {to}: one minor, all members on {}",
            running.effective_cluster().minor_str()
        )),
    }
}

/// The rule of etcd's upgrade guide that moving `from` → `to` on `running` breaks, if any.
fn rule_broken(from: Version, to: Version, running: &Running) -> Option<String> {
    let cluster = running.effective_cluster();
    let refuse = Some;
    if to.same_minor(&from) {
        return None;
    }
    if to.major != from.major || (to.major == cluster.major && to.minor < cluster.minor) {
        return refuse(format!(
            "a downgrade below the cluster version {} (etcd does not support it)",
            cluster.minor_str()
        ));
    }
    if to < from {
        return refuse("a downgrade to an older minor (etcd does not support it)".into());
    }
    if to.minor > from.minor + 1 {
        return refuse(format!(
            "it skips {} (upgrade one minor at a time)",
            from.next_minor().minor_str()
        ));
    }
    let behind: Vec<String> = running
        .members
        .iter()
        .filter(|(_, v)| v.major == cluster.major && v.minor < to.minor - 1)
        .map(|(n, v)| format!("{n} at {v}"))
        .collect();
    if !behind.is_empty() {
        return refuse(format!(
            "members still run an older minor ({}): upgrade every member to {} first",
            behind.join(", "),
            from.minor_str()
        ));
    }
    if to.minor > cluster.minor + 1 {
        return refuse(format!(
            "the cluster version is still {} (a member that did not answer may run it): upgrade \
             every member to {} first",
            cluster.minor_str(),
            from.minor_str()
        ));
    }
    for ((maj, min), need, source) in MINIMUMS {
        if to.major == *maj && to.minor == *min {
            let low: Vec<String> = running
                .members
                .iter()
                .filter(|(_, v)| v < need)
                .map(|(n, v)| format!("{n} at {v}"))
                .collect();
            if !low.is_empty() {
                return refuse(format!(
                    "{} needs every member at {need} or later first ({}; {source})",
                    to.minor_str(),
                    low.join(", ")
                ));
            }
        }
    }
    None
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
                members,
                cluster,
            }),
            _ => None,
        }
    }
}

/// Every member's versions, asked at once.
pub fn running(cfg: &Config, root: &Path) -> anyhow::Result<Option<Running>> {
    let client = crate::etcd::client::tls_client(cfg, root)?;
    let targets: Vec<(String, String)> = cfg
        .members
        .iter()
        .map(|m| (m.name.clone(), m.url(cfg.client_port)))
        .collect();
    Ok(Running::from_answers(&ask_versions(&client, &targets)))
}

/// This node's version change, judged: None when the seed names the installed version (or nothing
/// was installed yet); else the line for `check`, or the refusal. When no member answers, the path
/// is judged from this node's installed version alone (which still refuses a skip or a downgrade
/// across minors).
pub fn path(cfg: &Config, root: &Path) -> anyhow::Result<Option<Verdict>> {
    let Some(stamp) = crate::state::Stamp::load(root) else {
        return Ok(None);
    };
    let (old, new) = (stamp.etcd_version.as_str(), cfg.release.version.as_str());
    if old.is_empty() || old == new {
        return Ok(None);
    }
    let (from, to) = match (old.parse::<Version>(), new.parse::<Version>()) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => {
            return Ok(Some(Verdict::Refused(format!(
                "{old} → {new} cannot be judged: {e}; see {GUIDE}"
            ))))
        }
    };
    let cluster = match running(cfg, root) {
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
            }
        }
    };
    Ok(Some(judge(from, to, &cluster)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    fn cluster(c: &str, members: &[&str]) -> Running {
        Running {
            complete: true,
            cluster: v(c),
            members: members
                .iter()
                .enumerate()
                .map(|(i, m)| (format!("n{}", i + 1), v(m)))
                .collect(),
        }
    }

    #[test]
    fn a_cluster_version_not_decided_yet_or_held_back_by_a_silent_member() {
        // A new cluster says 3.0 until its leader has asked every member.
        let new = cluster("3.0.0", &["3.4.23", "3.4.23", "3.4.23"]);
        assert!(judge(v("3.4.23"), v("3.5.1"), &new).into_result().is_ok());
        // One member did not answer and the cluster version is 3.3: it may still run 3.3.
        let held = Running {
            complete: false,
            ..cluster("3.3.0", &["3.4.23", "3.4.23"])
        };
        let e = judge(v("3.4.23"), v("3.5.1"), &held)
            .into_result()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "the cluster version is still 3.3 (a member that did not answer may run it)"
            ),
            "{e}"
        );
    }

    #[test]
    fn versions_parse_as_etcd_writes_them() {
        assert_eq!(v("v3.5.1"), v("3.5.1"));
        assert_eq!(v("3.5.0"), v("3.5"));
        assert!(v("3.5.26") > v("3.5.4"));
        assert!("three".parse::<Version>().is_err());
    }

    #[test]
    fn the_paths_etcd_supports_and_the_ones_it_does_not() {
        let on34 = cluster("3.4.0", &["3.4.23", "3.4.23", "3.4.23"]);
        let ok = judge(v("3.4.23"), v("3.5.1"), &on34).into_result().unwrap();
        assert_eq!(ok, "3.4.23 → 3.5.1: one minor, all members on 3.4");
        let e = judge(v("3.4.23"), v("3.6.14"), &on34)
            .into_result()
            .unwrap_err()
            .to_string();
        assert!(e.contains("it skips 3.5") && e.contains(GUIDE), "{e}");
        let on35 = cluster("3.5.0", &["3.5.1", "3.5.1", "3.5.1"]);
        let e = judge(v("3.5.1"), v("3.4.23"), &on35)
            .into_result()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a downgrade below the cluster version 3.5"),
            "{e}"
        );
        assert!(judge(v("3.5.4"), v("3.5.1"), &on35)
            .into_result()
            .unwrap()
            .contains("patch downgrade"));
        assert!(judge(v("3.5.1"), v("3.5.4"), &on35)
            .into_result()
            .unwrap()
            .contains("patch upgrade"));
        let e = judge(v("3.5.1"), v("3.6.14"), &on35)
            .into_result()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("3.6 needs every member at 3.5.26 or later first"),
            "{e}"
        );
        let ready = cluster("3.5.0", &["3.5.26", "3.5.26", "3.6.14"]);
        assert!(judge(v("3.5.26"), v("3.6.14"), &ready)
            .into_result()
            .is_ok());
        // Mid-upgrade from 3.4: a member already on 3.5 may not move on to 3.6.
        let mixed = cluster("3.4.0", &["3.4.23", "3.5.1", "3.5.1"]);
        assert!(judge(v("3.4.23"), v("3.5.1"), &mixed).into_result().is_ok());
        let e = judge(v("3.5.1"), v("3.6.14"), &mixed)
            .into_result()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("members still run an older minor (n1 at 3.4.23)"),
            "{e}"
        );
    }
}
