//! Facts about this node, gathered once and passed down (tests build them directly).

use anyhow::{bail, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
}

impl Interface {
    /// The address etcd should use: the first IPv4, else the first global IPv6
    /// (a link-local address would need a zone in every URL, which etcd cannot take).
    pub fn primary_address(&self) -> Option<IpAddr> {
        if let Some(v4) = self.ipv4.first() {
            return Some(IpAddr::V4(*v4));
        }
        self.ipv6
            .iter()
            .find(|a| (a.segments()[0] & 0xffc0) != 0xfe80)
            .map(|a| IpAddr::V6(*a))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Short host name (`ansible_hostname`).
    pub hostname: String,
    /// The kernel's node name as set (`ansible_fqdn`, `ansible_nodename`).
    pub nodename: String,
    /// `uname -m` style machine name.
    pub machine: String,
    pub interfaces: Vec<Interface>,
    /// `$HOME` of the user running the tool, for the `expanduser` filter.
    pub home: PathBuf,
}

impl Facts {
    pub fn gather() -> Facts {
        let nodename = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".to_string());
        let hostname = nodename.split('.').next().unwrap_or(&nodename).to_string();
        let interfaces = netdev::get_interfaces()
            .into_iter()
            .map(|i| Interface {
                name: i.name.clone(),
                ipv4: i.ipv4.iter().map(|n| n.addr()).collect(),
                ipv6: i.ipv6.iter().map(|n| n.addr()).collect(),
            })
            .collect();
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"));
        Facts {
            hostname,
            nodename,
            machine: std::env::consts::ARCH.to_string(),
            interfaces,
            home,
        }
    }

    /// The facts another node would gather: named `name`, `address` on `iface` (for rendering a
    /// cluster file as each member will, e.g. to issue its certificates).
    pub fn of_member(name: &str, iface: &str, address: IpAddr) -> Facts {
        let here = Facts::gather();
        let (ipv4, ipv6) = match address {
            IpAddr::V4(a) => (vec![a], vec![]),
            IpAddr::V6(a) => (vec![], vec![a]),
        };
        Facts {
            hostname: name.split('.').next().unwrap_or(name).to_string(),
            nodename: name.to_string(),
            machine: here.machine,
            interfaces: vec![Interface {
                name: iface.to_string(),
                ipv4,
                ipv6,
            }],
            home: here.home,
        }
    }

    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    fn interface_summary(&self) -> String {
        let mut parts: Vec<String> = self
            .interfaces
            .iter()
            .map(|i| {
                let addrs: Vec<String> = i
                    .ipv4
                    .iter()
                    .map(|a| a.to_string())
                    .chain(i.ipv6.iter().map(|a| a.to_string()))
                    .collect();
                if addrs.is_empty() {
                    format!("{} (no address)", i.name)
                } else {
                    format!("{} ({})", i.name, addrs.join(", "))
                }
            })
            .collect();
        if parts.is_empty() {
            parts.push("none".into());
        }
        parts.join("; ")
    }
}

/// The etcd release's architecture name for this machine (`etcd_architecture`'s default).
pub fn etcd_architecture(machine: &str) -> &str {
    match machine {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" | "powerpc64le" | "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    }
}

/// What is expected to bring `iface` up, in words: wg-quick for a WireGuard-style name (and
/// whether its config exists under `root`), else the network configuration.
pub fn who_brings_up(iface: &str, root: &Path) -> String {
    if iface.starts_with("wg") {
        let conf = format!("/etc/wireguard/{iface}.conf");
        let there = if crate::util::fs::under(root, Path::new(&conf)).is_file() {
            "present"
        } else {
            "missing"
        };
        format!("wg-quick@{iface}.service from {conf} ({there})")
    } else {
        "the network configuration (systemd-networkd, ifupdown or cloud-init's network-config)"
            .to_string()
    }
}

/// Gathers facts until `iface` exists and carries an address, or `timeout` passes.
/// At first boot the interface often comes up a moment after us; waiting here beats failing.
/// While it waits it says so every 10 s, naming what should bring the interface up.
pub fn wait_for_interface(iface: &str, timeout: Duration, root: &Path) -> Result<(Facts, IpAddr)> {
    let start = Instant::now();
    let mut said = None::<Instant>;
    let who = who_brings_up(iface, root);
    loop {
        let facts = Facts::gather();
        if let Some(addr) = facts.interface(iface).and_then(|i| i.primary_address()) {
            return Ok((facts, addr));
        }
        let state = match facts.interface(iface) {
            Some(_) => format!("interface {iface} exists but has no usable address"),
            None => format!("interface {iface} does not exist"),
        };
        if start.elapsed() >= timeout {
            let waited = if timeout.is_zero() {
                String::new()
            } else {
                format!(" after waiting {}s", timeout.as_secs_f64())
            };
            bail!(
                "{state}{waited} (interfaces here: {}); it should be brought up by {who}; \
                 or set etcd_interface to the right interface, or etcd_address to the address to use",
                facts.interface_summary()
            );
        }
        match said {
            None => log::info!(
                "waiting up to {timeout:?} for interface {iface} to carry an address (from {who})"
            ),
            Some(t) if t.elapsed() >= Duration::from_secs(10) => log::info!(
                "still waiting for interface {iface} ({:.0?} of {timeout:?}): {state}; expected from {who}",
                start.elapsed()
            ),
            Some(_) => {}
        }
        if said.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            said = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_prefers_ipv4_and_skips_link_local() {
        let mut i = Interface {
            name: "wg0".into(),
            ipv4: vec![],
            ipv6: vec!["fe80::1".parse().unwrap(), "fd00::2".parse().unwrap()],
        };
        assert_eq!(i.primary_address(), Some("fd00::2".parse().unwrap()));
        i.ipv4.push("10.8.0.1".parse().unwrap());
        assert_eq!(i.primary_address(), Some("10.8.0.1".parse().unwrap()));
        i.ipv4.clear();
        i.ipv6.remove(1);
        assert_eq!(i.primary_address(), None);
    }

    #[test]
    fn missing_interface_times_out_with_a_clear_message() {
        let err = wait_for_interface("does-not-exist0", Duration::from_millis(10), Path::new("/"))
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("interface does-not-exist0 does not exist"),
            "{msg}"
        );
        assert!(msg.contains("etcd_address"), "{msg}");
    }
}
