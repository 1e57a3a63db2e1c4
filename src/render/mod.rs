//! Text that lands on the node: etcd's flags, the systemd unit, and `etcdctl.env`.

use crate::seed::Config;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A flag etcd will get: `--name=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    pub value: String,
}

/// The settings as flags, sorted by name; a setting whose value is empty renders no flag
/// (the role's `"wal-dir": ""` means "not set").
pub fn flags(settings: &BTreeMap<String, String>) -> Vec<Flag> {
    settings
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| Flag {
            name: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// Quotes a word for an `ExecStart=` line: inside double quotes systemd takes `\\`, `\"` as escapes
/// and expands `%` specifiers and `$` variables, so those are doubled or escaped.
pub fn systemd_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn unit_path(cfg: &Config) -> PathBuf {
    PathBuf::from(format!("/etc/systemd/system/{}.service", cfg.service_name))
}

fn has_option(options: &[String], key: &str) -> bool {
    options.iter().any(|o| {
        o.split_once('=')
            .map(|(k, _)| k.trim() == key)
            .unwrap_or(false)
    })
}

/// The unit file: the role's service options, `Type=notify` and `TimeoutStartSec=0` unless the seed set
/// them (the first member of a new cluster waits for quorum, which can take as long as the other
/// nodes take to boot), ordering after the network and WireGuard, and one flag per line.
pub fn unit(cfg: &Config) -> String {
    let mut s = String::new();
    s.push_str("# Written by etcd-bootstrap from its seed; edit the seed, not this file.\n");
    s.push_str("[Unit]\n");
    s.push_str("Description=etcd key-value store\n");
    s.push_str("Documentation=https://etcd.io/docs/\n");
    s.push_str("Wants=network-online.target\n");
    s.push_str(&format!(
        "After=network-online.target wg-quick@{}.service\n",
        cfg.interface
    ));
    s.push_str("\n[Service]\n");
    for o in &cfg.service_options {
        s.push_str(o);
        s.push('\n');
    }
    if !has_option(&cfg.service_options, "Type") {
        s.push_str("Type=notify\n");
    }
    if !has_option(&cfg.service_options, "TimeoutStartSec") {
        s.push_str("TimeoutStartSec=0\n");
    }
    if cfg.release.allow_unsupported_arch {
        s.push_str(&format!(
            "Environment=ETCD_UNSUPPORTED_ARCH={}\n",
            cfg.release.architecture
        ));
    }
    let bin = cfg.bin_dir.join("etcd");
    s.push_str(&format!("ExecStart={}", bin.display()));
    for f in flags(&cfg.settings) {
        s.push_str(&format!(" \\\n  --{}={}", f.name, systemd_quote(&f.value)));
    }
    s.push_str("\n\n[Install]\nWantedBy=multi-user.target\n");
    s
}

/// Splits an `ExecStart=` value the way systemd does for the quoting `unit` produces
/// (line continuations, double quotes, `\\` `\"` escapes, `%%` and `$$`).
pub fn parse_exec_start(unit_text: &str) -> Option<Vec<String>> {
    let mut joined = String::new();
    let mut in_exec = false;
    for line in unit_text.lines() {
        if !in_exec {
            if let Some(rest) = line.strip_prefix("ExecStart=") {
                in_exec = true;
                joined.push_str(rest);
            } else {
                continue;
            }
        } else {
            joined.push_str(line);
        }
        if joined.ends_with('\\') {
            joined.pop();
            joined.push(' ');
        } else {
            break;
        }
    }
    if !in_exec {
        return None;
    }
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut quoted = false;
    let mut chars = joined.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                has = true;
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(if n == 'n' { '\n' } else { n });
                }
            }
            '%' | '$' if chars.peek() == Some(&c) => {
                chars.next();
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if has || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => cur.push(c),
        }
    }
    if has || !cur.is_empty() {
        words.push(cur);
    }
    Some(words)
}

/// Client certificate for etcdctl: one named like a client certificate if the seed ships one,
/// else the server certificate (the role's PKI signs it for client auth too).
pub fn client_cert_and_key(cfg: &Config) -> (PathBuf, PathBuf) {
    let names: Vec<&String> = cfg
        .certificates
        .iter()
        .chain(cfg.certificate_data.keys())
        .collect();
    if let Some(cert) = names
        .iter()
        .find(|n| n.contains("client") && n.ends_with(".pem") && !n.ends_with("-key.pem"))
    {
        let key = format!("{}-key.pem", cert.trim_end_matches(".pem"));
        if names.iter().any(|n| **n == key) {
            return (cfg.conf_dir.join(cert.as_str()), cfg.conf_dir.join(key));
        }
    }
    let cert = cfg
        .settings
        .get("cert-file")
        .map(PathBuf::from)
        .unwrap_or_else(|| cfg.conf_dir.join("cert-etcd-server.pem"));
    let key = cfg
        .settings
        .get("key-file")
        .map(PathBuf::from)
        .unwrap_or_else(|| cfg.conf_dir.join("cert-etcd-server-key.pem"));
    (cert, key)
}

/// `etcdctl.env`: `set -a; . /etc/etcd/etcdctl.env` and `etcdctl endpoint health` needs no flags.
pub fn etcdctl_env(cfg: &Config) -> String {
    let (cert, key) = client_cert_and_key(cfg);
    let ca = cfg
        .settings
        .get("trusted-ca-file")
        .cloned()
        .unwrap_or_else(|| cfg.conf_dir.join("ca-etcd.pem").display().to_string());
    let endpoints = cfg
        .settings
        .get("advertise-client-urls")
        .filter(|v| !v.is_empty())
        .cloned()
        .unwrap_or_else(|| cfg.this_member.url(cfg.client_port));
    format!(
        "# Written by etcd-bootstrap. Use: set -a; . {}/etcdctl.env; set +a; etcdctl endpoint health\n\
         ETCDCTL_API=3\n\
         ETCDCTL_ENDPOINTS={endpoints}\n\
         ETCDCTL_CACERT={ca}\n\
         ETCDCTL_CERT={}\n\
         ETCDCTL_KEY={}\n",
        cfg.conf_dir.display(),
        cert.display(),
        key.display()
    )
}

#[cfg(test)]
mod tests;
