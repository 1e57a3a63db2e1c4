//! Ports: etcd can bind every address and port it listens on, unless etcd itself holds them already.

use super::Report;
use crate::seed::{url_host_port, Config};
use std::net::{IpAddr, TcpListener};

/// The process holding a TCP listener on `port` at `ip`, from /proc (pid, command name).
fn holder(ip: IpAddr, port: u16) -> Option<(u32, String)> {
    let want_port = format!("{port:04X}");
    let mut inodes = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let Some((addr_hex, port_hex)) = f[1].split_once(':') else {
                continue;
            };
            if port_hex != want_port {
                continue;
            }
            let any = addr_hex.chars().all(|c| c == '0');
            let matches = any || decode_addr(addr_hex) == Some(ip);
            if matches {
                inodes.push(format!("socket:[{}]", f[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for p in std::fs::read_dir("/proc").ok()?.filter_map(|e| e.ok()) {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.filter_map(|e| e.ok()) {
            if let Ok(t) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| t.as_os_str() == i.as_str()) {
                    let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
                    return Some((pid, comm.trim().to_string()));
                }
            }
        }
    }
    None
}

/// /proc/net/tcp addresses are the in-memory bytes printed as 32-bit words.
fn decode_addr(hex: &str) -> Option<IpAddr> {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(8)
        .flat_map(|i| {
            u32::from_str_radix(&hex[i..i + 8], 16)
                .map(|w| w.to_le_bytes().to_vec())
                .unwrap_or_default()
        })
        .collect();
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

pub fn check(r: &mut Report, cfg: &Config) {
    let mut seen = Vec::new();
    for key in ["listen-client-urls", "listen-peer-urls"] {
        for url in cfg.urls(key) {
            let Some((host, port)) = url_host_port(&url) else {
                r.error(
                    "ports",
                    format!("{key}: {url:?} is not a URL like https://10.8.0.1:2379"),
                );
                continue;
            };
            let Ok(ip) = host.parse::<IpAddr>() else {
                r.ok("ports", format!("{url} ({key}) names a host, not checked"));
                continue;
            };
            if seen.contains(&(ip, port)) {
                continue;
            }
            seen.push((ip, port));
            match TcpListener::bind((ip, port)) {
                Ok(_) => r.ok("ports", format!("{ip}:{port} is free ({key})")),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => match holder(ip, port) {
                    Some((pid, comm)) if comm == "etcd" => {
                        r.ok("ports", format!("{ip}:{port} is held by etcd (pid {pid}) ({key})"))
                    }
                    Some((pid, comm)) => r.error(
                        "ports",
                        format!("{ip}:{port} ({key}) is taken by {comm} (pid {pid}); stop it or change the port"),
                    ),
                    None => r.error(
                        "ports",
                        format!("{ip}:{port} ({key}) is already in use; stop what holds it or change the port"),
                    ),
                },
                Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => r.error(
                    "ports",
                    if ip == cfg.address {
                        format!(
                            "{key} has {url}, but no interface here has the address {ip} (this node's address); \
                             is {} up with it?",
                            cfg.interface
                        )
                    } else {
                        format!(
                            "{key} has {url}, but no interface here has the address {ip}; use this node's address \
                             ({} on {})",
                            cfg.address, cfg.interface
                        )
                    },
                ),
                Err(e) => r.error("ports", format!("cannot bind {ip}:{port} ({key}): {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_proc_net_addresses() {
        assert_eq!(decode_addr("0100007F"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(decode_addr("0100080A"), Some("10.8.0.1".parse().unwrap()));
        assert_eq!(
            decode_addr("00000000000000000000000001000000"),
            Some("::1".parse().unwrap())
        );
    }

    #[test]
    fn finds_the_holder_of_a_port() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (pid, _) = holder("127.0.0.1".parse().unwrap(), port).expect("our own listener");
        assert_eq!(pid, std::process::id());
    }
}
