//! What each member's certificates must say, read from the cluster file: the seed rendered for each
//! member as that member will render it, so every name or address its settings use is covered.

use crate::facts::Facts;
use crate::seed::{url_host_port, Config, Seed};
use anyhow::{anyhow, bail, Context, Result};
use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;

/// One certificate to issue: its common name, subject alternative names and key usages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub cn: String,
    pub ips: Vec<IpAddr>,
    pub dns: Vec<String>,
    pub server_auth: bool,
    pub client_auth: bool,
}

impl Leaf {
    fn new(cn: &str, server_auth: bool) -> Leaf {
        Leaf {
            cn: cn.to_string(),
            ips: vec![],
            dns: vec![],
            server_auth,
            client_auth: true,
        }
    }

    /// Adds `host` (an IP address, or a host name) to the SANs; Err when it is neither: a
    /// certificate names only hosts, never a wildcard or anything path-like.
    fn add(&mut self, host: &str) -> Result<(), ()> {
        match host.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => {}
            Ok(ip) => {
                if !self.ips.contains(&ip) {
                    self.ips.push(ip)
                }
            }
            Err(_) => {
                let h = host.to_ascii_lowercase();
                if !is_host_name(&h) {
                    return Err(());
                }
                if !self.dns.contains(&h) {
                    self.dns.push(h)
                }
            }
        }
        Ok(())
    }

    /// Every SAN, as text (IPs first).
    pub fn sans(&self) -> Vec<String> {
        self.ips
            .iter()
            .map(|i| i.to_string())
            .chain(self.dns.iter().cloned())
            .collect()
    }
}

/// A DNS host name: dot-separated labels of letters, digits and inner hyphens, 1-63 bytes each,
/// 253 in all. No wildcard, no underscore, nothing path-like.
pub fn is_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The file names a member's node expects (from its settings), in its own dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    pub cas: Vec<String>,
    pub server: (String, String),
    pub peer: (String, String),
}

#[derive(Debug, Clone)]
pub struct MemberSpec {
    pub name: String,
    pub address: IpAddr,
    pub server: Leaf,
    pub peer: Leaf,
    pub files: Files,
}

#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub members: Vec<MemberSpec>,
    /// For administrators and for `health`/`backup`: clientAuth only.
    pub client: Leaf,
    /// Its (certificate, key) file names: the seed's `*client*.pem`, else `cert-etcd-client.pem`.
    pub client_files: (String, String),
}

fn base(cfg: &Config, setting: &str, member: &str) -> Result<String> {
    let p = cfg.path_setting(setting).ok_or_else(|| {
        anyhow!(
            "member {member}: the settings have no {setting}; pki issues TLS certificates for it"
        )
    })?;
    Ok(Path::new(&p)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default())
}

/// A member's address as an IP: itself, or what its name resolves to.
fn address_of(i: usize, name: &str, address: &str) -> Result<IpAddr> {
    let a = address.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = a.parse::<IpAddr>() {
        return Ok(ip);
    }
    (a, 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .map(|s| s.ip())
        .ok_or_else(|| {
            anyhow!(crate::util::error::Error::input(format!(
                "etcd_members[{i}] ({name}): its address is not an IP address and does not resolve; \
                 give the member's IP address"
            )))
        })
}

fn not_a_host(member: &str, key: &str) -> anyhow::Error {
    anyhow::Error::new(crate::util::error::Error::input(format!(
        "member {member}: a host in {key} is neither an IP address nor a host name (letters, digits \
         and '-' between dots; no wildcard): a certificate covers only real hosts"
    )))
}

fn member(seed: &Seed, iface: &str, name: &str, address: IpAddr) -> Result<MemberSpec> {
    let facts = Facts::of_member(name, iface, address);
    let cfg = seed
        .resolve(&facts, address)
        .with_context(|| format!("rendering the seed as member {name} will"))?;
    let mut server = Leaf::new(name, true);
    let mut peer = Leaf::new(name, true);
    let _ = server.add(&address.to_string());
    let _ = peer.add(&address.to_string());
    for (leaf, keys) in [
        (&mut server, ["advertise-client-urls", "listen-client-urls"]),
        (
            &mut peer,
            ["initial-advertise-peer-urls", "listen-peer-urls"],
        ),
    ] {
        for key in keys {
            for u in cfg.urls(key) {
                if let Some((h, _)) = url_host_port(&u) {
                    leaf.add(&h).map_err(|()| not_a_host(name, key))?;
                }
            }
        }
    }
    for h in ["127.0.0.1", "::1", "localhost"] {
        let _ = server.add(h);
    }
    // The member's name is a SAN only where it is a host name as well (`node_1` is not).
    let _ = server.add(name);
    let _ = peer.add(name);
    // With DNS discovery etcd accepts only peers whose certificate names the domain.
    if let Some(domain) = cfg.discovery_srv() {
        peer.add(&domain)
            .map_err(|()| not_a_host(name, "discovery-srv"))?;
    }
    let mut cas = vec![base(&cfg, "trusted-ca-file", name)?];
    let peer_ca = base(&cfg, "peer-trusted-ca-file", name)?;
    if !cas.contains(&peer_ca) {
        cas.push(peer_ca);
    }
    Ok(MemberSpec {
        name: name.to_string(),
        address,
        server,
        peer,
        files: Files {
            cas,
            server: (
                base(&cfg, "cert-file", name)?,
                base(&cfg, "key-file", name)?,
            ),
            peer: (
                base(&cfg, "peer-cert-file", name)?,
                base(&cfg, "peer-key-file", name)?,
            ),
        },
    })
}

/// The certificates every member of the seed's `etcd_members` needs.
pub fn from_seed(seed: &Seed) -> Result<ClusterSpec> {
    let raw = seed.raw().etcd_members.clone().unwrap_or_default();
    if raw.is_empty() {
        bail!(crate::util::error::Error::input(format!(
            "seed {}: etcd_members is empty; pki issues certificates for the members it lists",
            seed.origin
        )));
    }
    let (iface, _) = seed.interface_and_override(&Facts::gather())?;
    let mut members = Vec::new();
    for (i, m) in raw.iter().enumerate() {
        let (name, address) = (m.name.0.trim(), m.address.0.trim());
        if name.contains("{{") || address.contains("{{") {
            bail!(crate::util::error::Error::input(format!(
                "seed {}: etcd_members[{i}]: pki needs the members' names and addresses written out, not templates",
                seed.origin
            )));
        }
        // Checked before the name is shown or used for a dir.
        if !crate::util::text::is_plain_name(name) {
            bail!(crate::util::error::Error::input(format!(
                "seed {}: etcd_members[{i}].name is not {}",
                seed.origin,
                crate::util::text::PLAIN_NAME
            )));
        }
        let ip = address_of(i, name, address)?;
        members.push(member(seed, &iface, name, ip)?);
    }
    let first = seed.resolve(
        &Facts::of_member(&members[0].name, &iface, members[0].address),
        members[0].address,
    )?;
    let names: Vec<&String> = first
        .certificates
        .iter()
        .chain(first.certificate_data.keys())
        .collect();
    let client_files = names
        .iter()
        .find(|n| n.contains("client") && n.ends_with(".pem") && !n.ends_with("-key.pem"))
        .map(|c| {
            let key = format!("{}-key.pem", c.trim_end_matches(".pem"));
            (c.to_string(), key)
        })
        .unwrap_or((
            "cert-etcd-client.pem".into(),
            "cert-etcd-client-key.pem".into(),
        ));
    let mut client = Leaf::new("etcd-client", false);
    client.client_auth = true;
    Ok(ClusterSpec {
        members,
        client,
        client_files,
    })
}
