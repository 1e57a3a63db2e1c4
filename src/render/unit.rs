//! etcd's systemd unit.

use super::{flags, systemd_quote};
use crate::seed::Config;

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
    s.push_str(&format!(
        "ExecStart={}",
        super::systemd_word(&bin.display().to_string())
    ));
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
            '\\' => match chars.next() {
                Some('n') => cur.push('\n'),
                Some('r') => cur.push('\r'),
                Some('t') => cur.push('\t'),
                Some('u') => {
                    let hex: String = (0..4).filter_map(|_| chars.next()).collect();
                    if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        cur.push(c);
                    }
                }
                Some(n) => cur.push(n),
                None => {}
            },
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
