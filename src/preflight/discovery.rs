//! DNS discovery (`discovery-srv`): etcd builds its cluster from the SRV records of the domain, and
//! refuses to start unless one of their targets resolves to the peer URL it advertises; with TLS it
//! also expects the peer certificates to carry the domain. Both are checked here, against the same
//! name servers etcd will ask.

use super::Report;
use crate::host::dns::{Resolver, Srv};
use crate::seed::{url_host_port, Config};
use std::net::IpAddr;
use std::path::Path;

pub fn check(r: &mut Report, cfg: &Config, root: &Path) {
    let Some(domain) = cfg.discovery_srv() else {
        return;
    };
    let peer_urls = cfg.urls("initial-advertise-peer-urls");
    let tls = peer_urls.iter().all(|u| u.starts_with("https://"));
    let suffix = cfg
        .setting("discovery-srv-name")
        .map(|s| format!("-{s}"))
        .unwrap_or_default();
    let service = if tls {
        "_etcd-server-ssl"
    } else {
        "_etcd-server"
    };
    let name = format!("{service}{suffix}._tcp.{domain}");
    match Resolver::for_root(root).and_then(|dns| Ok((dns.srv(&name)?, dns))) {
        Ok((records, dns)) => srv_records(r, cfg, &dns, &name, &domain, records),
        Err(e) => {
            return r.warn(
                "dns",
                format!("cannot look up SRV {name} ({e:#}); etcd will look it up at start"),
            )
        }
    }
    if tls {
        peer_certificate(r, cfg, root, &domain);
    }
}

/// Whether this node is among the SRV records' targets, as etcd will match them.
fn srv_records(
    r: &mut Report,
    cfg: &Config,
    dns: &Resolver,
    name: &str,
    domain: &str,
    mut records: Vec<Srv>,
) {
    if records.is_empty() {
        let asked: Vec<String> = dns.servers.iter().map(|s| s.to_string()).collect();
        return r.warn(
            "dns",
            format!(
                "no SRV records for {name} (asked {}): etcd cannot find its peers through discovery-srv {domain}",
                asked.join(", ")
            ),
        );
    }
    records.sort_by(|a, b| (a.priority, &a.target).cmp(&(b.priority, &b.target)));
    let peer_urls = cfg.urls("initial-advertise-peer-urls");
    // What this member advertises: etcd matches the SRV targets' addresses and ports against it.
    let mine: Vec<(String, u16)> = peer_urls.iter().filter_map(|u| url_host_port(u)).collect();
    let mut found = Vec::new();
    let mut is_me = false;
    for rec in &records {
        let (addrs, shown) = match dns.addresses(&rec.target) {
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

/// With discovery-srv etcd authenticates peers only when their certificate carries the domain.
fn peer_certificate(r: &mut Report, cfg: &Config, root: &Path, domain: &str) {
    match super::certs::dns_names(cfg, root, "peer-cert-file") {
        Ok((file, names)) if !names.iter().any(|n| n.eq_ignore_ascii_case(domain)) => r.warn(
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
