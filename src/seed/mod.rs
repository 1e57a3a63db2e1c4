//! The seed: parse (schema), read (source), render (template), and resolve into a `Config`.
//!
//! A seed error (exit 2) names the file, line, column and key; it never quotes a value that could
//! be a secret.

pub mod certificates;
pub mod config;
pub mod defaults;
mod resolve;
pub mod schema;
mod size;
pub mod source;
pub mod template;
#[cfg(test)]
pub mod testing;

pub use config::{
    initial_cluster, url_host, url_host_port, BackupSpec, Config, Day2, JoinSpec, MaintenanceSpec,
    Member, OffsiteSpec, Quota, ReleaseSpec, RestoreSpec,
};
pub use defaults::{
    DEFAULT_CERTIFICATES, DEFAULT_SERVICE_OPTIONS, DEFAULT_SETTINGS, DEFAULT_VERSION,
};
pub use resolve::find_self;

use crate::util::error::Error;
use anyhow::Result;
use schema::RawSeed;

/// A parsed, not yet rendered seed, with its text kept for error locations.
#[derive(Debug)]
pub struct Seed {
    pub origin: String,
    text: String,
    raw: RawSeed,
}

impl Seed {
    pub fn parse(origin: &str, text: &str) -> Result<Seed> {
        let raw: RawSeed = if text.trim().is_empty() {
            RawSeed::default()
        } else {
            size::check(text).map_err(|e| Error::input(yaml_error(origin, text, &e)))?;
            serde_yaml::from_str::<Option<RawSeed>>(text)
                .map_err(|e| Error::input(yaml_error(origin, text, &e)))?
                .unwrap_or_default()
        };
        Ok(Seed {
            origin: origin.to_string(),
            text: text.to_string(),
            raw,
        })
    }

    /// The seed as written.
    pub fn raw(&self) -> &RawSeed {
        &self.raw
    }

    /// The seed's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Reads the seed from where the command line says, and parses it. A seed file that holds
    /// private keys but others can read is a warning (every command that reads a seed says it).
    pub fn load(arg: &source::SeedArg) -> Result<Seed> {
        let st = source::load(arg)?;
        let seed = Seed::parse(&st.origin, &st.text)?;
        warn_if_keys_readable(&st.origin, &st.text);
        Ok(seed)
    }

    /// The sha256 of the seed's text, recorded in the stamp.
    pub fn digest(&self) -> String {
        crate::util::io::Sha256::of(self.text.as_bytes()).to_string()
    }

    /// "line L column C" of the first place `needle` is written in the seed, for messages about values.
    /// Searched from the top-level key (`top`) on when the seed writes it, so a value that also
    /// appears earlier (a member's name) is found where it was given.
    fn locate(&self, needle: &str, key: &str, top: &str) -> String {
        let from = self
            .text
            .match_indices(&format!("{top}:"))
            .find(|(i, _)| *i == 0 || self.text[..*i].ends_with('\n'))
            .map(|(i, _)| i)
            .unwrap_or(0);
        let pos = self.text[from..]
            .find(needle)
            .map(|p| p + from)
            .or_else(|| self.text.find(needle))
            .filter(|_| !needle.is_empty())
            .or_else(|| self.text.find(&format!("{key}:")))
            .or_else(|| self.text.find(&format!("\"{key}\"")));
        match pos {
            Some(p) => {
                let before = &self.text[..p];
                let line = before.matches('\n').count() + 1;
                let col = p - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
                format!("seed {} line {line} column {col}", self.origin)
            }
            None => format!("seed {}", self.origin),
        }
    }

    fn error(&self, key: &str, raw: &str, msg: impl std::fmt::Display) -> anyhow::Error {
        let leaf = key.rsplit('.').next().unwrap_or(key);
        let top = key.split(['.', '[']).next().unwrap_or(key);
        // A key written in the seed (a setting's name) is shown only when it is a plain name.
        let shown = if key.chars().any(|c| (c as u32) < 0x20 || c == '\x7f') {
            format!("{top} (a key holding control characters)")
        } else {
            key.to_string()
        };
        anyhow::Error::new(Error::input(format!(
            "{}: {shown}: {msg}",
            self.locate(raw, leaf, top)
        )))
    }
}

/// A seed that carries private keys must be readable by root alone.
fn warn_if_keys_readable(src: &str, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    if !text.contains("PRIVATE KEY") {
        return;
    }
    if let Ok(m) = std::fs::metadata(src) {
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            log::warn!(
                "seed {src} holds private keys but is readable by other users (mode {mode:04o}); chmod 0600 {src}"
            );
        }
    }
}

/// serde's message with the place it happened. yaml_serde knows the place of syntax and type errors,
/// but not of unknown keys (serde reports those after the key was read): find those in the text.
/// serde's message without the values it quotes: a mistyped value may be a private key, and the
/// message goes to stderr, the journal and the console.
fn scrub(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut chars = msg.chars().peekable();
    while let Some(c) = chars.next() {
        // Field names (`unknown field \`x\``, `duplicate field`) are keys, not values: kept.
        if c == '`' && out.ends_with("field ") {
            out.push(c);
            for d in chars.by_ref() {
                out.push(d);
                if d == '`' {
                    break;
                }
            }
            continue;
        }
        if c == '"' || c == '`' {
            let mut escaped = false;
            for d in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if d == '\\' {
                    escaped = true;
                } else if d == c {
                    break;
                }
            }
            if out.ends_with(' ') {
                out.pop();
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn yaml_error(origin: &str, text: &str, e: &serde_yaml::Error) -> String {
    let raw = e.to_string();
    let unknown = raw
        .split_once("unknown field `")
        .and_then(|(_, r)| r.split_once('`'))
        .map(|(k, _)| k.to_string());
    // An unknown key is named (it is a key, not a value); everything else loses its values.
    let msg = match &unknown {
        Some(_) => raw.clone(),
        None => scrub(&raw),
    };
    let unknown = msg
        .strip_prefix("unknown field `")
        .and_then(|r| r.split_once('`'))
        .map(|(k, _)| k.to_string());
    let hint = |key: &str| {
        let short = msg.split(", expected").next().unwrap_or(&msg).to_string();
        if key.starts_with("etcd_") || key.starts_with("k8s_") {
            format!("{short}; check its spelling against the seed reference in the README")
        } else {
            format!("{short}; a seed holds only etcd variables (remove other group_vars)")
        }
    };
    if let Some(loc) = e.location() {
        let msg = match &unknown {
            Some(k) => hint(k),
            None => msg
                .strip_suffix(&format!(" at line {} column {}", loc.line(), loc.column()))
                .unwrap_or(&msg)
                .to_string(),
        };
        return format!(
            "seed {origin} line {} column {}: {msg}",
            loc.line(),
            loc.column()
        );
    }
    if let Some(key) = unknown {
        for (i, line) in text.lines().enumerate() {
            let t = line.trim_start().trim_start_matches("- ");
            let bare = t.trim_start_matches(['"', '\'']);
            if bare.starts_with(&key)
                && bare[key.len()..]
                    .trim_start_matches(['"', '\''])
                    .trim_start()
                    .starts_with(':')
            {
                let col = line.len() - t.len() + 1;
                return format!("seed {origin} line {} column {col}: {}", i + 1, hint(&key));
            }
        }
    }
    format!("seed {origin}: {msg}")
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod scrub_tests {
    #[test]
    fn quoted_values_leave_serde_messages() {
        assert_eq!(
            super::scrub(
                r#"etcd_members: invalid type: string "-----BEGIN \" KEY", expected a sequence"#
            ),
            "etcd_members: invalid type: string, expected a sequence"
        );
        assert_eq!(
            super::scrub("invalid value: integer `5`, expected x"),
            "invalid value: integer, expected x"
        );
    }
}

#[cfg(test)]
mod fuzz;
