//! Text that lands on the node: etcd's flags, the systemd unit, `etcdctl.env` (each day-2 feature
//! renders its own units, in its room under `day2/`).
//! Text only: nothing here reads or writes a file.

mod etcdctl_env;
mod unit;

#[cfg(test)]
pub use etcdctl_env::parse_env;
pub use etcdctl_env::{env_value, etcdctl_env};
pub use unit::{parse_exec_start, unit};

use std::collections::BTreeMap;

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
    systemd_quote_always(s)
}

/// A word for a unit line as it is when it holds only plain characters, else quoted: default
/// paths stay readable, and any other path is still one word, its `%` and `$` taken literally.
pub fn systemd_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@+=:,./-".contains(c));
    if plain {
        s.to_string()
    } else {
        systemd_quote_always(s)
    }
}

fn systemd_quote_always(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Any other control character as a C escape systemd reads back: none ends the line.
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
