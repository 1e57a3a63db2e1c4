//! The early scalar keys: rendered before anything else, in any order of reference, as Ansible's
//! lazy variables are; then typed (paths, ports, durations, the release).

use super::{parse_bool, Render};
use crate::seed::config::ReleaseSpec;
use crate::seed::schema::{When, FROM_FACTS, SCALARS};
use crate::seed::{template, Seed};
use crate::util::error::Error;
use crate::util::http::Retry;
use crate::util::time::parse_duration;
use anyhow::Result;
use minijinja::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

/// The early scalars, rendered.
pub(super) struct Scalars(BTreeMap<&'static str, String>);

impl Scalars {
    pub(super) fn get(&self, key: &str) -> &str {
        self.0.get(key).map(|s| s.as_str()).unwrap_or("")
    }
    pub(super) fn iter(&self) -> impl Iterator<Item = (&&'static str, &String)> {
        self.0.iter()
    }
}

/// Renders the early scalars until none changes: they may refer to each other in any order
/// (`etcd_download_url` uses `etcd_version`).
pub(super) fn render(r: &Render) -> Result<Scalars> {
    let seed = r.seed;
    let raw: BTreeMap<&'static str, String> = SCALARS
        .iter()
        .filter(|k| k.when == When::Early)
        .map(|k| {
            let v = match seed.raw.scalar(k.name) {
                Some(s) => s.0.clone(),
                None if k.default == FROM_FACTS && k.name == "etcd_architecture" => {
                    crate::facts::etcd_architecture(&r.facts.machine).to_string()
                }
                None => k.default.to_string(),
            };
            (k.name, v)
        })
        .collect();
    let mut cur = raw.clone();
    for _ in 0..10 {
        let mut vars = r.vars.clone();
        for (k, v) in &cur {
            vars.insert((*k).to_string(), Value::from(v.clone()));
        }
        let ctx = template::context(r.facts, vars);
        let mut changed = false;
        let mut next = cur.clone();
        for (k, v) in &cur {
            if template::is_template(v) {
                let out = r
                    .env
                    .render_str(v, &ctx)
                    .map_err(|e| seed.error(k, &raw[k], template::explain(&r.env, v, &ctx, &e)))?;
                changed |= &out != v;
                next.insert(k, out);
            }
        }
        cur = next;
        if !cur.values().any(|v| template::is_template(v)) {
            for (k, v) in cur.iter_mut() {
                super::no_control(seed, k, &raw[k], v)?;
                *v = v.trim().to_string();
            }
            return Ok(Scalars(cur));
        }
        if !changed {
            break;
        }
    }
    let stuck: Vec<&str> = cur
        .iter()
        .filter(|(_, v)| template::is_template(v))
        .map(|(k, _)| *k)
        .collect();
    Err(anyhow::Error::new(Error::input(format!(
        "seed {}: the templates of {} never settle; do they refer to each other in a circle?",
        seed.origin,
        stuck.join(", ")
    ))))
}

/// `etcd_address`, when the seed pins one.
pub(super) fn address(seed: &Seed, s: &Scalars) -> Result<Option<IpAddr>> {
    let addr = s.get("etcd_address").trim();
    if addr.is_empty() {
        return Ok(None);
    }
    addr.parse::<IpAddr>()
        .map(Some)
        .map_err(|_| seed.error("etcd_address", addr, "is not an IP address"))
}

pub(super) fn abs(seed: &Seed, s: &Scalars, key: &str) -> Result<PathBuf> {
    let v = s.get(key);
    if !v.starts_with('/') {
        return Err(seed.error(key, v, "must be an absolute path"));
    }
    Ok(PathBuf::from(v))
}

/// The interface name: what Linux allows in one (IFNAMSIZ, no slash or space), as it goes into a
/// unit name (`wg-quick@<name>.service`) and a path.
pub(super) fn interface(seed: &Seed, s: &Scalars) -> Result<String> {
    let v = s.get("etcd_interface");
    let ok = !v.is_empty()
        && v.len() <= 15
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@:".contains(c));
    if !ok {
        return Err(seed.error(
            "etcd_interface",
            v,
            "must be an interface name (up to 15 letters, digits, . _ - @ :)",
        ));
    }
    Ok(v.to_string())
}

pub(super) fn plain_word(seed: &Seed, s: &Scalars, key: &str) -> Result<()> {
    let v = s.get(key);
    if v.is_empty()
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
    {
        return Err(seed.error(key, v, "must be a plain word (letters, digits, . _ - @)"));
    }
    Ok(())
}

fn parse_port(v: &str) -> Option<u16> {
    v.trim().parse::<u16>().ok().filter(|p| *p > 0)
}

/// (client port, peer port).
pub(super) fn ports(seed: &Seed, s: &Scalars) -> Result<(u16, u16)> {
    let port = |key: &str| {
        parse_port(s.get(key))
            .ok_or_else(|| seed.error(key, s.get(key), "is not a port number (1-65535)"))
    };
    Ok((port("etcd_client_port")?, port("etcd_peer_port")?))
}

fn retry(seed: &Seed, s: &Scalars) -> Result<Retry> {
    let attempts = s.get("etcd_download_attempts").trim();
    let attempts = match attempts.parse::<u32>() {
        Ok(n) if (1..=100).contains(&n) => n,
        _ => {
            return Err(seed.error(
                "etcd_download_attempts",
                attempts,
                "must be a number from 1 to 100",
            ))
        }
    };
    let max_time = s.get("etcd_download_max_time").trim();
    let max_time = parse_duration(max_time).map_err(|_| {
        seed.error(
            "etcd_download_max_time",
            max_time,
            "must be a duration like 10m",
        )
    })?;
    let rt = s.get("etcd_download_read_timeout").trim();
    let read_timeout = parse_duration(rt)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            seed.error(
                "etcd_download_read_timeout",
                rt,
                "must be a duration like 60s",
            )
        })?;
    Ok(Retry {
        attempts,
        max_time,
        read_timeout,
        ..Retry::default()
    })
}

pub(super) fn release(seed: &Seed, s: &Scalars) -> Result<ReleaseSpec> {
    let allow = s.get("etcd_allow_unsupported_archs");
    let allow_unsupported_arch = parse_bool(allow).ok_or_else(|| {
        seed.error(
            "etcd_allow_unsupported_archs",
            allow,
            "must be true or false",
        )
    })?;
    for key in ["etcd_version", "etcd_architecture"] {
        plain_word(seed, s, key)?;
    }
    let ca_file = s.get("etcd_download_ca_file").trim();
    let version = s.get("etcd_version").trim_start_matches('v').to_string();
    let semver = version.parse().map_err(|_| {
        seed.error(
            "etcd_version",
            s.get("etcd_version"),
            "is not an etcd version (major.minor.patch, such as 3.5.17)",
        )
    })?;
    Ok(ReleaseSpec {
        retry: retry(seed, s)?,
        version,
        semver,
        architecture: s.get("etcd_architecture").to_string(),
        allow_unsupported_arch,
        download_url: s.get("etcd_download_url").trim().to_string(),
        download_checksum: s.get("etcd_download_url_checksum").trim().to_string(),
        download_dir: abs(seed, s, "etcd_download_dir")?,
        download_ca_file: if ca_file.is_empty() {
            None
        } else {
            Some(abs(seed, s, "etcd_download_ca_file")?)
        },
    })
}
