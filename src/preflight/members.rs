//! Members: this node is one, `initial-cluster` names it with the URL it advertises, and the size
//! can survive a failure.

use super::Report;
use crate::seed::Config;

pub fn check(r: &mut Report, cfg: &Config) {
    let me = &cfg.this_member;
    r.ok(
        "members",
        format!(
            "this node is {} ({}) of {} member(s)",
            me.name,
            me.address,
            cfg.members.len()
        ),
    );
    let name = cfg.settings.get("name").cloned().unwrap_or_default();
    if name.is_empty() {
        r.input_error(
            "members",
            "etcd_settings.name is empty; etcd needs this member's name",
        );
        return;
    }
    let discovery = cfg.setting("discovery-srv").is_some();
    if let Some(ic) = cfg.setting("initial-cluster") {
        initial_cluster(r, cfg, &name, ic);
    } else if !discovery {
        r.input_error(
            "members",
            "neither initial-cluster nor discovery-srv is set; etcd cannot find its peers",
        );
    }
    size(r, cfg.members.len());
}

/// `initial-cluster` names this member (`name`) at the URL it advertises.
fn initial_cluster(r: &mut Report, cfg: &Config, name: &str, ic: &str) {
    let me = &cfg.this_member;
    let entries: Vec<(&str, &str)> = ic
        .split(',')
        .filter_map(|p| p.split_once('=').map(|(n, u)| (n.trim(), u.trim())))
        .collect();
    let mine: Vec<&str> = entries
        .iter()
        .filter(|(n, _)| *n == name)
        .map(|(_, u)| *u)
        .collect();
    let advertised = cfg.urls("initial-advertise-peer-urls");
    if mine.is_empty() {
        let names: Vec<&str> = entries.iter().map(|(n, _)| *n).collect();
        r.input_error(
            "members",
            format!(
                "name is {name:?}, but initial-cluster only names {}; this node is member {:?} of etcd_members, \
                 so set name to \"{{{{ etcd_member_name }}}}\" (the default) or fix etcd_members",
                names.join(", "),
                me.name
            ),
        );
    } else if !advertised.is_empty() && advertised.iter().any(|a| !mine.contains(&a.as_str())) {
        r.input_error(
            "members",
            format!(
                "initial-cluster has {name}={} but this member advertises {} (initial-advertise-peer-urls); \
                 the other members would look for it at the wrong address",
                mine.join(","),
                advertised.join(",")
            ),
        );
    } else {
        r.ok(
            "members",
            format!("initial-cluster names {name} at {}", mine.join(",")),
        );
    }
}

/// 2 or an even number of members buys nothing over one fewer.
fn size(r: &mut Report, n: usize) {
    if n == 2 {
        r.warn(
            "members",
            "2 members cannot lose either one (quorum is 2): a 2-member cluster is less available than 1; use 3",
        );
    } else if n >= 4 && n.is_multiple_of(2) {
        r.warn(
            "members",
            format!(
                "{n} members tolerate {} failure(s), no more than {}: use an odd count",
                (n - 1) / 2,
                n - 1
            ),
        );
    }
}
