//! `etcd_settings` / `etcd_settings_user` (etcd's flags), `etcd_service_options` and the
//! certificate keys.

use super::Render;
use crate::seed::config::{initial_cluster, Member};
use crate::seed::defaults::{DEFAULT_CERTIFICATES, DEFAULT_SERVICE_OPTIONS, DEFAULT_SETTINGS};
use crate::seed::Seed;
use anyhow::Result;
use minijinja::Value;
use std::collections::BTreeMap;

/// A given etcd_settings replaces the defaults whole (as group_vars do in Ansible);
/// etcd_settings_user is merged over it key by key. `initial-cluster` is built from the members
/// unless the settings hold one or use DNS discovery.
pub(super) fn settings(
    seed: &Seed,
    r: &mut Render,
    members: &[Member],
    peer_port: u16,
) -> Result<BTreeMap<String, String>> {
    let base: Vec<(String, String)> = match &seed.raw.etcd_settings {
        Some(m) => m.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect(),
        None => DEFAULT_SETTINGS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let mut raw: BTreeMap<String, String> = base.into_iter().collect();
    if let Some(user) = &seed.raw.etcd_settings_user {
        for (k, v) in user {
            raw.insert(k.clone(), v.0.clone());
        }
    }
    let vals: BTreeMap<String, Value> = raw
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    r.set("etcd_settings", Value::from(vals));
    let mut settings = BTreeMap::new();
    for (k, v) in &raw {
        let key = k.trim().trim_start_matches("--").to_string();
        if key.is_empty()
            || key.contains(char::is_whitespace)
            || key.contains('=')
            || key.chars().any(|c| (c as u32) < 0x20 || c == '\x7f')
        {
            return Err(seed.error(&format!("etcd_settings.{k}"), k, "is not an etcd flag name"));
        }
        let val = r.render(&format!("etcd_settings.{k}"), v)?;
        settings.insert(key, val.trim().to_string());
    }
    let set = |k: &str| settings.get(k).is_some_and(|v: &String| !v.is_empty());
    if !set("discovery-srv") && !set("initial-cluster") {
        settings.insert(
            "initial-cluster".into(),
            initial_cluster(members, peer_port),
        );
    }
    Ok(settings)
}

pub(super) fn service_options(seed: &Seed, r: &Render) -> Result<Vec<String>> {
    let raw: Vec<String> = match &seed.raw.etcd_service_options {
        Some(v) => v.iter().map(|s| s.0.clone()).collect(),
        None => DEFAULT_SERVICE_OPTIONS
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let mut out = Vec::new();
    for (i, o) in raw.iter().enumerate() {
        let key = format!("etcd_service_options[{i}]");
        let line = r.render(&key, o)?.trim().to_string();
        if line.contains('\n') || (!line.is_empty() && !line.contains('=')) {
            return Err(seed.error(&key, o, "is not a systemd option line (Key=value)"));
        }
        if !line.is_empty() {
            out.push(line);
        }
    }
    Ok(out)
}

fn plain_file_name(name: &str) -> bool {
    crate::util::text::is_plain_name(name)
}

/// `etcd_certificates` (file names) and `etcd_certificate_data` (name -> PEM).
pub(super) fn certificates(
    seed: &Seed,
    r: &Render,
) -> Result<(Vec<String>, BTreeMap<String, String>)> {
    let names: Vec<String> = match &seed.raw.etcd_certificates {
        Some(v) => {
            let mut out = Vec::new();
            for (i, c) in v.iter().enumerate() {
                let key = format!("etcd_certificates[{i}]");
                let name = r.render(&key, &c.0)?;
                if !plain_file_name(&name) {
                    return Err(seed.error(
                        &key,
                        &c.0,
                        format!(
                            "is not {} (certificates are copied into etcd_conf_dir)",
                            crate::util::text::PLAIN_NAME
                        ),
                    ));
                }
                out.push(name);
            }
            out
        }
        None => DEFAULT_CERTIFICATES.iter().map(|s| s.to_string()).collect(),
    };
    let data = seed.raw.etcd_certificate_data.clone().unwrap_or_default();
    for name in data.keys() {
        if !plain_file_name(name) {
            return Err(seed.error(
                "etcd_certificate_data",
                name,
                format!("a key is not {}", crate::util::text::PLAIN_NAME),
            ));
        }
    }
    Ok((names, data))
}
