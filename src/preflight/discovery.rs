//! DNS discovery (`discovery-srv`): etcd builds its cluster from the SRV records of the domain, and
//! refuses to start unless one of their targets resolves to the peer URL it advertises; with TLS it
//! also expects the peer certificates to carry the domain. Both are checked here, against the same
//! name servers etcd will ask.

use super::{url_host_port, urls, Report};
use crate::seed::Config;
use std::net::IpAddr;
use std::path::Path;

pub fn check(r: &mut Report, cfg: &Config, root: &Path) {
    let Some(domain) = cfg
        .settings
        .get("discovery-srv")
        .map(|d| d.trim().trim_end_matches('.').to_string())
        .filter(|d| !d.is_empty())
    else {
        return;
    };
    let peer_urls = urls(cfg, "initial-advertise-peer-urls");
    let tls = peer_urls.iter().all(|u| u.starts_with("https://"));
    let suffix = cfg
        .settings
        .get("discovery-srv-name")
        .filter(|s| !s.is_empty())
        .map(|s| format!("-{s}"))
        .unwrap_or_default();
    let service = if tls {
        "_etcd-server-ssl"
    } else {
        "_etcd-server"
    };
    let name = format!("{service}{suffix}._tcp.{domain}");
    let servers = crate::dns::nameservers(root);
    let records = match crate::dns::srv(&servers, &name) {
        Ok(mut rs) => {
            rs.sort_by(|a, b| (a.priority, &a.target).cmp(&(b.priority, &b.target)));
            rs
        }
        Err(e) => {
            return r.warn(
                "dns",
                format!("cannot look up SRV {name} ({e:#}); etcd will look it up at start"),
            )
        }
    };
    if records.is_empty() {
        r.warn(
            "dns",
            format!(
                "no SRV records for {name} (asked {}): etcd cannot find its peers through discovery-srv {domain}",
                servers.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
            ),
        );
    } else {
        // What this member advertises: etcd matches the SRV targets' addresses and ports against it.
        let mine: Vec<(String, u16)> = peer_urls.iter().filter_map(|u| url_host_port(u)).collect();
        let mut found = Vec::new();
        let mut is_me = false;
        for rec in &records {
            let (addrs, shown) = match crate::dns::addresses(&servers, &rec.target) {
                Ok(a) if a.is_empty() => (a, vec!["no address".to_string()]),
                Ok(a) => {
                    let shown = a.iter().map(|x| x.to_string()).collect();
                    (a, shown)
                }
                Err(e) => (vec![], vec![format!("{e:#}")]),
            };
            found.push(format!("{}:{} ({})", rec.target, rec.port, shown.join(" ")));
            let name_is_me = rec.target.split('.').next() == Some(cfg.this_member.name.as_str());
            let addr_is_me = mine.iter().any(|(h, p)| {
                *p == rec.port
                    && (h == &rec.target || h.parse::<IpAddr>().is_ok_and(|ip| addrs.contains(&ip)))
            });
            is_me |= addr_is_me || (name_is_me && mine.is_empty());
        }
        if is_me {
            r.ok("dns", format!("SRV {name}: {}", found.join(", ")));
        } else {
            r.warn(
                "dns",
                format!(
                    "this node ({} at {}) is missing from SRV {name}: {}; etcd will refuse to start \
                     (\"cannot find local etcd member in SRV records\"); add a record for it",
                    cfg.this_member.name,
                    peer_urls.join(","),
                    found.join(", ")
                ),
            );
        }
    }
    if tls {
        match super::certs::dns_names(cfg, root, "peer-cert-file") {
            Ok((file, names)) if !names.iter().any(|n| n.eq_ignore_ascii_case(&domain)) => r.warn(
                "dns",
                format!(
                    "{file} does not name the discovery domain {domain} (its DNS names: {}); with \
                     discovery-srv etcd authenticates peers only when their certificate carries the domain \
                     in its subject alternative names",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            ),
            Ok((file, _)) => r.ok("dns", format!("{file} names the discovery domain {domain}")),
            Err(_) => {} // certs reports an unreadable certificate already
        }
    }
}
