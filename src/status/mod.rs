//! `status`: what this node has and what its cluster says, on one screen. Every part is gathered
//! read-only from the seed, the conf dir, the state dir and the members' API; each part is also a
//! report line, so "all is well" is one rule: no line is a warning or an error.

use crate::cluster::{restart, upgrade};

mod backup;
mod database;
mod offsite;
use crate::cert::{self, Expiry};
use crate::cluster::node::Node;
use crate::etcd::api::Api;
use crate::etcd::health::Checker;
use crate::etcd::version::ask_versions;
use crate::seed::Config;
use crate::state::{self, Stamp};
use crate::util::report::Report;
use crate::util::time::{unix, unix_now, utc};
use backup::backup;
use database::{database, maintenance};
pub use database::{Database, LastMaintenance};
pub use offsite::LastOffsite;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A certificate closer than this to its end is a warning.

#[derive(Debug, Serialize)]
pub struct Applied {
    pub at: String,
    pub seed_sha256: String,
}

#[derive(Debug, Serialize)]
pub struct This {
    pub name: String,
    pub id: String,
    pub learner: bool,
    pub leader: bool,
}

#[derive(Debug, Serialize)]
pub struct MemberState {
    pub name: String,
    pub endpoint: String,
    pub healthy: bool,
    pub version: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CertExpiry {
    pub path: PathBuf,
    pub not_after: String,
    pub days_left: i64,
}

#[derive(Debug, Serialize)]
pub struct BackupAge {
    pub dir: PathBuf,
    pub newest: Option<PathBuf>,
    pub age_secs: Option<u64>,
    pub interval_secs: u64,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub installed_version: Option<String>,
    pub seed_version: String,
    pub applied: Option<Applied>,
    pub member: Option<This>,
    pub members: Vec<MemberState>,
    pub cluster_version: Option<String>,
    pub certificates: Vec<CertExpiry>,
    pub backup: Option<BackupAge>,
    pub offsite: Option<LastOffsite>,
    pub database: Option<Database>,
    pub maintenance: Option<LastMaintenance>,
    pub pending: Vec<String>,
    /// The same, as report lines: what `--output text` prints.
    pub checks: Report,
}

impl Status {
    pub fn well(&self) -> bool {
        self.checks.errors().is_empty() && self.checks.warnings().is_empty()
    }
}

/// Gathers everything; never fails: what cannot be read is a line that says why.
pub fn gather(node: &Node) -> Status {
    let (cfg, root) = (node.cfg, node.root);
    let mut r = Report::default();
    let stamp = node.stamp();
    let applied = applied(root, cfg, stamp, &mut r);
    // One client for every question to the cluster.
    let api = match node.client() {
        Ok(c) => Some(Api::new(c, cfg.client_urls())),
        Err(e) => {
            r.error("member", format!("cannot talk to the cluster: {e:#}"));
            None
        }
    };
    let (member, members, cluster_version) = match &api {
        Some(api) => cluster(cfg, api, &mut r),
        None => (None, vec![], None),
    };
    let certificates = certificates(cfg, root, &mut r);
    let backup = backup(cfg, root, &mut r);
    let offsite = offsite::offsite(cfg, root, api.as_ref(), &mut r);
    let database = api.as_ref().and_then(|api| database(cfg, api, &mut r));
    crate::preflight::quota::check(&mut r, cfg, root);
    let maintenance = maintenance(cfg, root, &mut r);
    let mut pending = Vec::new();
    if let Some(why) = restart::pending(root) {
        r.warn(
            "pending",
            format!(
                "a restart of {} is pending ({why}): run apply",
                cfg.unit_name()
            ),
        );
        pending.push(format!("restart: {why}"));
    }
    if member.as_ref().is_some_and(|m| m.learner) {
        r.warn(
            "pending",
            "this member is a learner: promotion is pending (run apply)",
        );
        pending.push("promotion".into());
    }
    Status {
        installed_version: stamp.map(|s| s.etcd_version.clone()),
        seed_version: cfg.release.version.clone(),
        applied,
        member,
        members,
        cluster_version,
        certificates,
        backup,
        offsite,
        database,
        maintenance,
        pending,
        checks: r,
    }
}

fn applied(root: &Path, cfg: &Config, stamp: Option<&Stamp>, r: &mut Report) -> Option<Applied> {
    let Some(stamp) = stamp else {
        r.error(
            "applied",
            "etcd-bootstrap has not applied a seed on this node (no stamp)",
        );
        return None;
    };
    let (have, want) = (&stamp.etcd_version, &cfg.release.version);
    if have == want {
        r.ok("etcd", format!("{have} installed, as the seed says"));
    } else {
        r.warn(
            "etcd",
            format!("{have} installed, the seed says {want}: run apply"),
        );
    }
    let at = std::fs::metadata(state::path(root, state::STAMP))
        .and_then(|m| m.modified())
        .map(|t| utc(unix(t)))
        .unwrap_or_else(|_| "unknown".into());
    r.ok(
        "applied",
        format!("{at} with seed sha256 {}", stamp.seed_sha256),
    );
    Some(Applied {
        at,
        seed_sha256: stamp.seed_sha256.clone(),
    })
}

/// This member (from its own status and the member list), every member's health and version, and
/// the cluster version.
fn cluster(
    cfg: &Config,
    api: &Api,
    r: &mut Report,
) -> (Option<This>, Vec<MemberState>, Option<String>) {
    let mine = cfg.this_member.url(cfg.client_port);
    let list = api.list().ok();
    let me = this(api, &mine, list.as_deref(), cfg, r);
    // The cluster's own list names the members; the seed's stands in when nobody answers.
    let targets: Vec<(String, String)> = match &list {
        Some(l) if !l.is_empty() => l
            .iter()
            .map(|m| {
                // A member's name and URLs are what it says: shown escaped, asked only at a
                // plain https URL.
                let name = if m.started() {
                    crate::util::text::printable(&m.name).into_owned()
                } else {
                    format!("{:x}", m.id)
                };
                let url = m
                    .client_urls
                    .iter()
                    .find(|u| crate::etcd::member::is_member_url(u))
                    .cloned()
                    .unwrap_or_default();
                (name, url)
            })
            .collect(),
        _ => cfg
            .members
            .iter()
            .map(|m| (m.name.clone(), m.url(cfg.client_port)))
            .collect(),
    };
    let (members, cluster_version) = member_states(&api.client, &targets);
    for m in &members {
        let at = format!("{} at {}", m.name, m.endpoint);
        match (&m.error, &m.version) {
            (None, v) => r.ok(
                "members",
                format!("{at} is healthy, etcd {}", v.as_deref().unwrap_or("?")),
            ),
            (Some(e), _) => r.error("members", format!("{at} is unhealthy: {e}")),
        }
    }
    match &cluster_version {
        Some(v) => r.ok("cluster", format!("cluster version {v}")),
        None => r.error("cluster", "no member told the cluster version"),
    }
    (me, members, cluster_version)
}

fn this(
    api: &Api,
    mine: &str,
    list: Option<&[crate::etcd::member::ApiMember]>,
    cfg: &Config,
    r: &mut Report,
) -> Option<This> {
    let name = &cfg.this_member.name;
    let st = match api.status_of(mine) {
        Ok(st) => st,
        Err(e) => {
            r.error("member", format!("{name} does not answer at {mine}: {e}"));
            return None;
        }
    };
    let learner = list
        .and_then(|l| l.iter().find(|m| m.id == st.member_id))
        .is_some_and(|m| m.learner);
    let leader = st.leader == st.member_id;
    let role = match (learner, leader) {
        (true, _) => "learner",
        (false, true) => "voter, leader",
        (false, false) => "voter",
    };
    r.ok("member", format!("{name} (ID {:x}), {role}", st.member_id));
    Some(This {
        name: name.clone(),
        id: format!("{:x}", st.member_id),
        learner,
        leader,
    })
}

/// Every member's health and server version, and the cluster version, asked at once.
fn member_states(
    client: &reqwest::blocking::Client,
    targets: &[(String, String)],
) -> (Vec<MemberState>, Option<String>) {
    let urls: Vec<String> = targets.iter().map(|t| t.1.clone()).collect();
    let (health, versions) = std::thread::scope(|s| {
        let h = s.spawn(|| Checker::from_client(client.clone()).check_all(&urls));
        let v = ask_versions(client, targets);
        (h.join().unwrap_or_default(), v)
    });
    let cluster = upgrade::Running::from_answers(&versions).map(|r| r.cluster.to_string());
    let states = targets
        .iter()
        .zip(health)
        .zip(versions)
        .map(|(((name, url), h), (_, v))| MemberState {
            name: name.clone(),
            endpoint: url.clone(),
            healthy: h.healthy,
            version: v.ok().map(|(server, _)| server).filter(|s| !s.is_empty()),
            error: match (h.healthy, url.is_empty()) {
                (true, _) => None,
                (false, true) => Some("added to the cluster but never started".into()),
                (false, false) => h.error.or(Some("unhealthy".into())),
            },
        })
        .collect();
    (states, cluster)
}

/// The installed certificates etcd and etcdctl use, each with its end date (a bundle's earliest).
fn certificates(cfg: &Config, root: &Path, r: &mut Report) -> Vec<CertExpiry> {
    let mut paths: Vec<PathBuf> = [
        "cert-file",
        "peer-cert-file",
        "trusted-ca-file",
        "peer-trusted-ca-file",
    ]
    .iter()
    .filter_map(|k| cfg.path_setting(k))
    .collect();
    paths.push(cfg.client_cert_and_key().0);
    let mut seen = Vec::new();
    let mut out = Vec::new();
    let now = unix_now();
    for p in paths {
        if seen.contains(&p) {
            continue;
        }
        seen.push(p.clone());
        let pem = std::fs::read(crate::util::fs::under(root, &p));
        let not_after = match pem
            .map_err(|e| e.to_string())
            .and_then(|pem| cert::not_after(&pem).map_err(|e| e.to_string()))
        {
            Ok(t) => t,
            Err(e) => {
                r.error("certs", format!("{}: {e}", p.display()));
                continue;
            }
        };
        let days_left = (not_after - now).div_euclid(86400);
        let when = utc(not_after);
        match cert::expiry(not_after, now) {
            Expiry::Expired => r.error("certs", format!("{} expired on {when}", p.display())),
            Expiry::Soon { days } => r.warn(
                "certs",
                cert::ends_soon(&p.display().to_string(), not_after, days),
            ),
            Expiry::Fine | Expiry::NotYet => r.ok(
                "certs",
                format!("{} expires on {when}, in {days_left} days", p.display()),
            ),
        }
        out.push(CertExpiry {
            path: p,
            not_after: when,
            days_left,
        });
    }
    out
}

#[cfg(test)]
mod mock_tests;
