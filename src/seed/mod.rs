//! The seed: parse (schema), read (source), render (template), and resolve into a `Config`.

pub mod schema;
pub mod source;
pub mod template;

use crate::error::InvalidSeed;
use crate::facts::Facts;
use anyhow::Result;
use minijinja::Value;
use schema::{RawSeed, Scalar};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

pub const DEFAULT_VERSION: &str = "3.6.14";

/// The role's defaults for the newest release line. `enable-v2` is gone (removed in 3.6) and
/// addresses come from `etcd_address_url`, which brackets IPv6 and honours `etcd_address`.
pub const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("name", "{{ etcd_member_name }}"),
    ("cert-file", "{{ etcd_conf_dir }}/cert-etcd-server.pem"),
    ("key-file", "{{ etcd_conf_dir }}/cert-etcd-server-key.pem"),
    ("trusted-ca-file", "{{ etcd_conf_dir }}/ca-etcd.pem"),
    ("peer-cert-file", "{{ etcd_conf_dir }}/cert-etcd-peer.pem"),
    ("peer-key-file", "{{ etcd_conf_dir }}/cert-etcd-peer-key.pem"),
    ("peer-trusted-ca-file", "{{ etcd_conf_dir }}/ca-etcd.pem"),
    ("advertise-client-urls", "https://{{ etcd_address_url }}:{{ etcd_client_port }}"),
    ("initial-advertise-peer-urls", "https://{{ etcd_address_url }}:{{ etcd_peer_port }}"),
    ("listen-peer-urls", "https://{{ etcd_address_url }}:{{ etcd_peer_port }}"),
    (
        "listen-client-urls",
        "https://{{ etcd_address_url }}:{{ etcd_client_port }},https://127.0.0.1:{{ etcd_client_port }}",
    ),
    ("peer-client-cert-auth", "true"),
    ("client-cert-auth", "true"),
    ("initial-cluster-token", "etcd-cluster-0"),
    ("initial-cluster-state", "new"),
    ("data-dir", "{{ etcd_data_dir }}"),
    ("wal-dir", ""),
    ("auto-compaction-retention", "0"),
    ("snapshot-count", "100000"),
    ("heartbeat-interval", "100"),
    ("election-timeout", "1000"),
    ("max-snapshots", "5"),
    ("max-wals", "5"),
    ("quota-backend-bytes", "0"),
    ("logger", "zap"),
    ("log-outputs", "systemd/journal"),
    ("discovery-srv", ""),
];

pub const DEFAULT_SERVICE_OPTIONS: &[&str] = &[
    "User={{ etcd_user }}",
    "Group={{ etcd_group }}",
    "Restart=on-failure",
    "RestartSec=5",
    "Type=notify",
    "ProtectHome=true",
    "PrivateTmp=true",
    "ProtectSystem=full",
    "ProtectKernelModules=true",
    "ProtectKernelTunables=true",
    "ProtectControlGroups=true",
    "CapabilityBoundingSet=~CAP_SYS_PTRACE",
];

/// The role's list minus `ca-etcd-key.pem`: a node never needs the CA's private key.
pub const DEFAULT_CERTIFICATES: &[&str] = &[
    "ca-etcd.pem",
    "cert-etcd-peer.pem",
    "cert-etcd-peer-key.pem",
    "cert-etcd-server.pem",
    "cert-etcd-server-key.pem",
];

const DEFAULT_SCALARS: &[(&str, &str)] = &[
    ("etcd_version", DEFAULT_VERSION),
    ("etcd_allow_unsupported_archs", "false"),
    (
        "etcd_download_url",
        "https://github.com/etcd-io/etcd/releases/download/v{{ etcd_version }}/etcd-v{{ etcd_version }}-linux-{{ etcd_architecture }}.tar.gz",
    ),
    (
        "etcd_download_url_checksum",
        "sha256:https://github.com/etcd-io/etcd/releases/download/v{{ etcd_version }}/SHA256SUMS",
    ),
    ("etcd_download_dir", "/opt/etcd"),
    ("etcd_download_ca_file", ""),
    ("etcd_download_attempts", "5"),
    ("etcd_download_max_time", "10m"),
    ("etcd_download_read_timeout", "60s"),
    ("etcd_bin_dir", "/usr/local/bin"),
    ("etcd_conf_dir", "/etc/etcd"),
    ("etcd_data_dir", "/var/lib/etcd"),
    ("etcd_user", "etcd"),
    ("etcd_group", "etcd"),
    ("etcd_interface", "wg0"),
    ("etcd_address", ""),
    ("etcd_client_port", "2379"),
    ("etcd_peer_port", "2380"),
    ("etcd_service_name", "etcd"),
    ("etcd_ca_conf_directory", "{{ '~/etcd-certificates' | expanduser }}"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub address: String,
}

impl Member {
    /// `https://<address>:<port>`: the member's peer URL with the peer port, client URL with the client port.
    pub fn url(&self, port: u16) -> String {
        format!("https://{}:{port}", url_host(&self.address))
    }
}

/// An address as it appears in a URL: IPv6 in brackets.
pub fn url_host(addr: &str) -> String {
    if addr.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{addr}]")
    } else {
        addr.to_string()
    }
}

/// Everything the later phases need, rendered, typed and checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub release: ReleaseSpec,
    pub bin_dir: PathBuf,
    pub conf_dir: PathBuf,
    pub data_dir: PathBuf,
    pub user: String,
    pub group: String,
    pub interface: String,
    pub address: IpAddr,
    pub client_port: u16,
    pub peer_port: u16,
    pub service_name: String,
    pub service_options: Vec<String>,
    /// `etcd_settings_user` merged over `etcd_settings`, rendered, with `initial-cluster` filled in.
    /// Empty values are kept here and dropped when flags are rendered.
    pub settings: BTreeMap<String, String>,
    pub certificates: Vec<String>,
    pub ca_conf_directory: PathBuf,
    pub certificate_data: BTreeMap<String, String>,
    pub members: Vec<Member>,
    pub this_member: Member,
    /// Set when `initial-cluster-state` is `existing`: join a running cluster through its API.
    pub join: Option<JoinSpec>,
    pub backup: Option<BackupSpec>,
    pub restore: Option<RestoreSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinSpec {
    pub as_learner: bool,
    /// A member (by name) to remove first, only if it is not healthy.
    pub replace: Option<String>,
    /// How long to keep trying while the cluster is busy (another join, no leader, unreachable).
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSpec {
    pub dir: PathBuf,
    pub interval: std::time::Duration,
    /// Snapshots to keep; 0 keeps all.
    pub keep: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSpec {
    /// A path on the target system, or a file:// or https:// URL.
    pub snapshot: String,
    pub sha256: String,
}

/// What `fetch` needs: the release and where it goes. Needs no interface, so an image build can fetch.
#[derive(Debug, Clone)]
pub struct ReleaseSpec {
    pub version: String,
    pub architecture: String,
    pub allow_unsupported_arch: bool,
    pub download_url: String,
    pub download_checksum: String,
    pub download_dir: PathBuf,
    pub download_ca_file: Option<PathBuf>,
    pub retry: crate::release::download::Retry,
}

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
            serde_yaml::from_str::<Option<RawSeed>>(text)
                .map_err(|e| InvalidSeed(yaml_error(origin, text, &e)))?
                .unwrap_or_default()
        };
        Ok(Seed {
            origin: origin.to_string(),
            text: text.to_string(),
            raw,
        })
    }

    pub fn load(arg: &source::SeedArg) -> Result<Seed> {
        let st = source::load(arg)?;
        Seed::parse(&st.origin, &st.text)
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
        anyhow::Error::new(InvalidSeed(format!(
            "{}: {key}: {msg}",
            self.locate(raw, leaf, top)
        )))
    }

    fn scalar_raw(&self) -> BTreeMap<&'static str, String> {
        let r = &self.raw;
        let given: [(&'static str, &Option<Scalar>); 20] = [
            ("etcd_download_read_timeout", &r.etcd_download_read_timeout),
            ("etcd_download_attempts", &r.etcd_download_attempts),
            ("etcd_download_max_time", &r.etcd_download_max_time),
            ("etcd_version", &r.etcd_version),
            (
                "etcd_allow_unsupported_archs",
                &r.etcd_allow_unsupported_archs,
            ),
            ("etcd_download_url", &r.etcd_download_url),
            ("etcd_download_url_checksum", &r.etcd_download_url_checksum),
            ("etcd_download_dir", &r.etcd_download_dir),
            ("etcd_download_ca_file", &r.etcd_download_ca_file),
            ("etcd_bin_dir", &r.etcd_bin_dir),
            ("etcd_conf_dir", &r.etcd_conf_dir),
            ("etcd_data_dir", &r.etcd_data_dir),
            ("etcd_user", &r.etcd_user),
            ("etcd_group", &r.etcd_group),
            ("etcd_interface", &r.etcd_interface),
            ("etcd_address", &r.etcd_address),
            ("etcd_client_port", &r.etcd_client_port),
            ("etcd_peer_port", &r.etcd_peer_port),
            ("etcd_service_name", &r.etcd_service_name),
            ("etcd_ca_conf_directory", &r.etcd_ca_conf_directory),
        ];
        let mut out: BTreeMap<&'static str, String> = DEFAULT_SCALARS
            .iter()
            .map(|(k, v)| (*k, v.to_string()))
            .collect();
        for (k, v) in given {
            if let Some(v) = v {
                out.insert(k, v.0.clone());
            }
        }
        out
    }

    /// Renders the top-level scalar variables until none changes: they may refer to each other in any
    /// order (`etcd_download_url` uses `etcd_version`), as Ansible's lazy variables do.
    fn render_scalars(
        &self,
        env: &minijinja::Environment<'static>,
        facts: &Facts,
        fact_vals: &BTreeMap<String, Value>,
    ) -> Result<BTreeMap<&'static str, String>> {
        let raw = self.scalar_raw();
        let mut cur = raw.clone();
        cur.insert(
            "etcd_architecture",
            self.raw
                .etcd_architecture
                .as_ref()
                .map(|s| s.0.clone())
                .unwrap_or_else(|| crate::facts::etcd_architecture(&facts.machine).to_string()),
        );
        for _ in 0..10 {
            let mut vars = fact_vals.clone();
            for (k, v) in &cur {
                vars.insert((*k).to_string(), Value::from(v.clone()));
            }
            let ctx = template::context(facts, vars);
            let mut changed = false;
            let mut next = cur.clone();
            for (k, v) in &cur {
                if template::is_template(v) {
                    let out = env.render_str(v, &ctx).map_err(|e| {
                        self.error(
                            k,
                            raw.get(k).map(|s| s.as_str()).unwrap_or(v),
                            explain(env, v, &ctx, &e),
                        )
                    })?;
                    if &out != v {
                        changed = true;
                    }
                    next.insert(k, out);
                }
            }
            cur = next;
            if !cur.values().any(|v| template::is_template(v)) {
                return Ok(cur);
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
        Err(anyhow::Error::new(InvalidSeed(format!(
            "seed {}: the templates of {} never settle; do they refer to each other in a circle?",
            self.origin,
            stuck.join(", ")
        ))))
    }

    /// The interface to read and, when the seed pins one, the address to use instead.
    /// Needs only the facts that exist before any interface is up.
    pub fn interface_and_override(&self, facts: &Facts) -> Result<(String, Option<IpAddr>)> {
        let env = template::environment(&facts.home.to_string_lossy());
        let scalars = self.render_scalars(&env, facts, &template::fact_values(facts, None))?;
        let iface = scalars["etcd_interface"].clone();
        let addr = scalars["etcd_address"].trim();
        let addr = if addr.is_empty() {
            None
        } else {
            Some(addr.parse::<IpAddr>().map_err(|_| {
                self.error(
                    "etcd_address",
                    addr,
                    format!("{addr:?} is not an IP address"),
                )
            })?)
        };
        Ok((iface, addr))
    }

    /// The release part of the seed, rendered with the facts that exist before any interface is up.
    pub fn release(&self, facts: &Facts) -> Result<ReleaseSpec> {
        let env = template::environment(&facts.home.to_string_lossy());
        let s = self.render_scalars(&env, facts, &template::fact_values(facts, None))?;
        self.release_from(&s)
    }

    fn release_from(&self, s: &BTreeMap<&'static str, String>) -> Result<ReleaseSpec> {
        let allow = &s["etcd_allow_unsupported_archs"];
        let allow_unsupported_arch = parse_bool(allow).ok_or_else(|| {
            self.error(
                "etcd_allow_unsupported_archs",
                allow,
                "must be true or false",
            )
        })?;
        for key in ["etcd_version", "etcd_architecture"] {
            self.plain_word(s, key)?;
        }
        let ca_file = s["etcd_download_ca_file"].trim();
        let attempts = s["etcd_download_attempts"].trim();
        let attempts = match attempts.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return Err(self.error(
                    "etcd_download_attempts",
                    attempts,
                    "must be a number from 1 to 100",
                ))
            }
        };
        let max_time = s["etcd_download_max_time"].trim();
        let max_time = crate::duration::parse(max_time)
            .map_err(|e| self.error("etcd_download_max_time", max_time, e))?;
        let rt = s["etcd_download_read_timeout"].trim();
        let read_timeout = crate::duration::parse(rt)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                self.error(
                    "etcd_download_read_timeout",
                    rt,
                    "must be a duration like 60s",
                )
            })?;
        Ok(ReleaseSpec {
            retry: crate::release::download::Retry {
                attempts,
                max_time,
                read_timeout,
            },
            version: s["etcd_version"].trim_start_matches('v').to_string(),
            architecture: s["etcd_architecture"].clone(),
            allow_unsupported_arch,
            download_url: s["etcd_download_url"].trim().to_string(),
            download_checksum: s["etcd_download_url_checksum"].trim().to_string(),
            download_dir: self.abs(s, "etcd_download_dir")?,
            download_ca_file: if ca_file.is_empty() {
                None
            } else {
                Some(self.abs(s, "etcd_download_ca_file")?)
            },
        })
    }

    fn abs(&self, s: &BTreeMap<&'static str, String>, key: &str) -> Result<PathBuf> {
        let v = &s[key];
        if !v.starts_with('/') {
            return Err(self.error(key, v, format!("{v:?} must be an absolute path")));
        }
        Ok(PathBuf::from(v))
    }

    fn plain_word(&self, s: &BTreeMap<&'static str, String>, key: &str) -> Result<()> {
        let v = &s[key];
        if v.is_empty()
            || !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
        {
            return Err(self.error(
                key,
                v,
                format!("{v:?} must be a plain word (letters, digits, . _ - @)"),
            ));
        }
        Ok(())
    }

    /// Applies defaults, renders every template with the facts, and checks types.
    pub fn resolve(&self, facts: &Facts, address: IpAddr) -> Result<Config> {
        let env = template::environment(&facts.home.to_string_lossy());
        let mut fact_vals = template::fact_values(facts, Some(address));
        let s = self.render_scalars(&env, facts, &fact_vals)?;
        for (k, v) in &s {
            fact_vals.insert((*k).to_string(), Value::from(v.clone()));
        }
        // A node without an inventory may still know its address when the interface has none of the
        // role's `ipv4` shape; etcd_address is always the address in use.
        fact_vals.insert("etcd_address".into(), Value::from(address.to_string()));

        let render = |key: &str, raw: &str, vars: &BTreeMap<String, Value>| -> Result<String> {
            if !template::is_template(raw) {
                return Ok(raw.to_string());
            }
            let ctx = template::context(facts, vars.clone());
            env.render_str(raw, &ctx)
                .map_err(|e| self.error(key, raw, explain(&env, raw, &ctx, &e)))
        };

        // Members first: which one this node is decides `etcd_member_name` for the settings.
        let mut members = Vec::new();
        for (i, m) in self
            .raw
            .etcd_members
            .clone()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let name = render(&format!("etcd_members[{i}].name"), &m.name.0, &fact_vals)?;
            let addr = render(
                &format!("etcd_members[{i}].address"),
                &m.address.0,
                &fact_vals,
            )?;
            if name.trim().is_empty() || addr.trim().is_empty() {
                return Err(self.error(
                    &format!("etcd_members[{i}]"),
                    &m.name.0,
                    "every member needs a non-empty name and address",
                ));
            }
            members.push(Member {
                name: name.trim().to_string(),
                address: addr
                    .trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
            });
        }
        check_unique(&members).map_err(|m| self.error("etcd_members", "etcd_members", m))?;
        if members.is_empty() {
            members.push(Member {
                name: facts.hostname.clone(),
                address: address.to_string(),
            });
        }
        let this_member = find_self(&members, facts, address).map_err(|m| {
            anyhow::Error::new(InvalidSeed(format!(
                "{}: etcd_members: {m}",
                self.locate("etcd_members", "etcd_members", "etcd_members")
            )))
        })?;
        fact_vals.insert(
            "etcd_member_name".into(),
            Value::from(this_member.name.clone()),
        );
        let member_list: Vec<Value> = members
            .iter()
            .map(|m| {
                let mut mm = BTreeMap::new();
                mm.insert("name".to_string(), Value::from(m.name.clone()));
                mm.insert("address".to_string(), Value::from(m.address.clone()));
                Value::from(mm)
            })
            .collect();
        fact_vals.insert("etcd_members".into(), Value::from(member_list));

        let client_port = parse_port(&s["etcd_client_port"])
            .map_err(|m| self.error("etcd_client_port", &s["etcd_client_port"], m))?;
        let peer_port = parse_port(&s["etcd_peer_port"])
            .map_err(|m| self.error("etcd_peer_port", &s["etcd_peer_port"], m))?;

        // Settings: a given etcd_settings replaces the defaults whole (as group_vars do in Ansible);
        // etcd_settings_user is merged over it key by key.
        let base: Vec<(String, String)> = match &self.raw.etcd_settings {
            Some(m) => m.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect(),
            None => DEFAULT_SETTINGS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let mut settings_raw: BTreeMap<String, String> = base.into_iter().collect();
        if let Some(user) = &self.raw.etcd_settings_user {
            for (k, v) in user {
                settings_raw.insert(k.clone(), v.0.clone());
            }
        }
        let mut settings_vals = BTreeMap::new();
        for (k, v) in &settings_raw {
            settings_vals.insert(k.clone(), Value::from(v.clone()));
        }
        fact_vals.insert("etcd_settings".into(), Value::from(settings_vals));
        let mut settings = BTreeMap::new();
        for (k, v) in &settings_raw {
            let key = k.trim().trim_start_matches("--").to_string();
            if key.is_empty() || key.contains(char::is_whitespace) || key.contains('=') {
                return Err(self.error(
                    &format!("etcd_settings.{k}"),
                    k,
                    "is not an etcd flag name",
                ));
            }
            let val = render(&format!("etcd_settings.{k}"), v, &fact_vals)?;
            settings.insert(key, val.trim().to_string());
        }
        let discovery = settings
            .get("discovery-srv")
            .map(|v| !v.is_empty())
            .unwrap_or(false);
        let has_cluster = settings
            .get("initial-cluster")
            .map(|v| !v.is_empty())
            .unwrap_or(false);
        if !discovery && !has_cluster {
            settings.insert(
                "initial-cluster".into(),
                initial_cluster(&members, peer_port),
            );
        }

        let options_raw: Vec<String> = match &self.raw.etcd_service_options {
            Some(v) => v.iter().map(|s| s.0.clone()).collect(),
            None => DEFAULT_SERVICE_OPTIONS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        let mut service_options = Vec::new();
        for (i, o) in options_raw.iter().enumerate() {
            let out = render(&format!("etcd_service_options[{i}]"), o, &fact_vals)?;
            let out = out.trim().to_string();
            if out.contains('\n') || (!out.is_empty() && !out.contains('=')) {
                return Err(self.error(
                    &format!("etcd_service_options[{i}]"),
                    o,
                    format!("{out:?} is not a systemd option line (Key=value)"),
                ));
            }
            if !out.is_empty() {
                service_options.push(out);
            }
        }

        let certificates: Vec<String> = match &self.raw.etcd_certificates {
            Some(v) => {
                let mut out = Vec::new();
                for (i, c) in v.iter().enumerate() {
                    let name = render(&format!("etcd_certificates[{i}]"), &c.0, &fact_vals)?;
                    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                        return Err(self.error(
                            &format!("etcd_certificates[{i}]"),
                            &c.0,
                            format!("{name:?} must be a plain file name (certificates are copied into etcd_conf_dir)"),
                        ));
                    }
                    out.push(name);
                }
                out
            }
            None => DEFAULT_CERTIFICATES.iter().map(|s| s.to_string()).collect(),
        };
        let certificate_data = self.raw.etcd_certificate_data.clone().unwrap_or_default();
        for name in certificate_data.keys() {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return Err(self.error(
                    "etcd_certificate_data",
                    name,
                    format!("{name:?} must be a plain file name"),
                ));
            }
        }

        for key in ["etcd_user", "etcd_group", "etcd_service_name"] {
            self.plain_word(&s, key)?;
        }
        let day2 = self.day2(&settings, &|k: &str, raw: &str| render(k, raw, &fact_vals))?;
        Ok(Config {
            release: self.release_from(&s)?,
            bin_dir: self.abs(&s, "etcd_bin_dir")?,
            conf_dir: self.abs(&s, "etcd_conf_dir")?,
            data_dir: self.abs(&s, "etcd_data_dir")?,
            user: s["etcd_user"].clone(),
            group: s["etcd_group"].clone(),
            interface: s["etcd_interface"].clone(),
            address,
            client_port,
            peer_port,
            service_name: s["etcd_service_name"]
                .trim_end_matches(".service")
                .to_string(),
            service_options,
            settings,
            certificates,
            ca_conf_directory: self.abs(&s, "etcd_ca_conf_directory")?,
            certificate_data,
            members,
            this_member,
            join: day2.0,
            backup: day2.1,
            restore: day2.2,
        })
    }

    /// The day-2 keys: join (from `initial-cluster-state: existing`), backup and restore.
    #[allow(clippy::type_complexity)]
    fn day2(
        &self,
        settings: &BTreeMap<String, String>,
        render: &dyn Fn(&str, &str) -> Result<String>,
    ) -> Result<(Option<JoinSpec>, Option<BackupSpec>, Option<RestoreSpec>)> {
        let r = &self.raw;
        let get = |key: &str, v: &Option<Scalar>, default: &str| -> Result<(String, String)> {
            let raw = v
                .as_ref()
                .map(|s| s.0.clone())
                .unwrap_or(default.to_string());
            Ok((render(key, &raw)?.trim().to_string(), raw))
        };
        let state = settings
            .get("initial-cluster-state")
            .map(|s| s.trim())
            .unwrap_or("new");
        let (learner, learner_raw) = get("etcd_join_as_learner", &r.etcd_join_as_learner, "false")?;
        let as_learner = parse_bool(&learner).ok_or_else(|| {
            self.error(
                "etcd_join_as_learner",
                &learner_raw,
                "must be true or false",
            )
        })?;
        let (replace, replace_raw) = get("etcd_replace_member", &r.etcd_replace_member, "")?;
        let (timeout, timeout_raw) = get("etcd_join_timeout", &r.etcd_join_timeout, "10m")?;
        let timeout = crate::duration::parse(&timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                self.error(
                    "etcd_join_timeout",
                    &timeout_raw,
                    "must be a duration like 10m",
                )
            })?;
        let join = match state {
            "existing" => Some(JoinSpec {
                as_learner,
                replace: Some(replace).filter(|s| !s.is_empty()),
                timeout,
            }),
            "new" => {
                if !replace.is_empty() {
                    return Err(self.error(
                        "etcd_replace_member",
                        &replace_raw,
                        "replacing a member joins a running cluster: set etcd_settings_user: {initial-cluster-state: existing}",
                    ));
                }
                None
            }
            other => {
                return Err(self.error(
                    "initial-cluster-state",
                    other,
                    format!("{other:?} must be new or existing"),
                ))
            }
        };
        let backup = match &r.etcd_backup {
            None => None,
            Some(b) => {
                let (dir, dir_raw) = get("etcd_backup.dir", &b.dir, "/var/backups/etcd")?;
                if !dir.starts_with('/') {
                    return Err(self.error(
                        "etcd_backup.dir",
                        &dir_raw,
                        format!("{dir:?} must be an absolute path"),
                    ));
                }
                let (iv, iv_raw) = get("etcd_backup.interval", &b.interval, "1h")?;
                let interval = crate::duration::parse(&iv)
                    .ok()
                    .filter(|d| d.as_secs() >= 60)
                    .ok_or_else(|| {
                        self.error(
                            "etcd_backup.interval",
                            &iv_raw,
                            "must be a duration of at least 1m, like 1h",
                        )
                    })?;
                let (keep, keep_raw) = get("etcd_backup.keep", &b.keep, "24")?;
                let keep = keep.parse::<u32>().map_err(|_| {
                    self.error(
                        "etcd_backup.keep",
                        &keep_raw,
                        "must be a number (0 keeps every snapshot)",
                    )
                })?;
                Some(BackupSpec {
                    dir: PathBuf::from(dir),
                    interval,
                    keep,
                })
            }
        };
        let restore = match &r.etcd_restore {
            None => None,
            Some(x) => {
                let snapshot = render("etcd_restore.snapshot", &x.snapshot.0)?
                    .trim()
                    .to_string();
                let sha = render("etcd_restore.sha256", &x.sha256.0)?
                    .trim()
                    .to_ascii_lowercase();
                if !(snapshot.starts_with('/')
                    || snapshot.starts_with("file://")
                    || snapshot.starts_with("https://")
                    || snapshot.starts_with("http://"))
                {
                    return Err(self.error(
                        "etcd_restore.snapshot",
                        &x.snapshot.0,
                        format!("{snapshot:?} must be an absolute path or a file://, https:// URL"),
                    ));
                }
                if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(self.error(
                        "etcd_restore.sha256",
                        &x.sha256.0,
                        "must be the snapshot's sha256 (64 hex digits); `etcd-bootstrap backup` prints it",
                    ));
                }
                if join.is_some() {
                    return Err(self.error(
                        "etcd_restore",
                        "etcd_restore",
                        "a restore starts a new cluster from the snapshot: initial-cluster-state must be new (every member restores the same snapshot)",
                    ));
                }
                Some(RestoreSpec {
                    snapshot,
                    sha256: sha,
                })
            }
        };
        Ok((join, backup, restore))
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" | "" => Some(false),
        _ => None,
    }
}

/// serde's message with the place it happened. yaml_serde knows the place of syntax and type errors,
/// but not of unknown keys (serde reports those after the key was read): find those in the text.
fn yaml_error(origin: &str, text: &str, e: &serde_yaml::Error) -> String {
    let msg = e.to_string();
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

/// A template error in words; for an undefined value, the names that are not defined.
fn explain(
    env: &minijinja::Environment<'static>,
    src: &str,
    ctx: &Value,
    e: &minijinja::Error,
) -> String {
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        if let Ok(t) = env.template_from_str(src) {
            let mut missing: Vec<String> = t
                .undeclared_variables(false)
                .into_iter()
                .filter(|n| ctx.get_attr(n).map(|v| v.is_undefined()).unwrap_or(true))
                .collect();
            missing.sort();
            if !missing.is_empty() {
                return format!(
                    "template error: undefined variable {} in {src:?}; it is neither a seed variable nor a fact \
                     (facts: ansible_hostname, inventory_hostname, ansible_fqdn, ansible_<iface>, ansible_facts, \
                     hostvars, etcd_member_name, etcd_address, etcd_address_url)",
                    missing.join(", ")
                );
            }
        }
        return format!("template error: undefined value in {src:?} (an attribute or key that does not exist): {e}");
    }
    template_error(e)
}

fn template_error(e: &minijinja::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    format!("template error: {msg}")
}

fn parse_port(v: &str) -> std::result::Result<u16, String> {
    match v.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{v:?} is not a port number (1-65535)")),
    }
}

/// `name=https://address:peer_port,...` in the seed's order, as the role's template builds it.
pub fn initial_cluster(members: &[Member], peer_port: u16) -> String {
    members
        .iter()
        .map(|m| format!("{}={}", m.name, m.url(peer_port)))
        .collect::<Vec<_>>()
        .join(",")
}

fn check_unique(members: &[Member]) -> std::result::Result<(), String> {
    for (i, a) in members.iter().enumerate() {
        for b in &members[i + 1..] {
            if a.name == b.name {
                return Err(format!(
                    "member name {:?} is listed twice; names must be unique",
                    a.name
                ));
            }
            if same_address(&a.address, &b.address) {
                return Err(format!(
                    "address {} is listed for both {} and {}; addresses must be unique",
                    a.address, a.name, b.name
                ));
            }
        }
    }
    Ok(())
}

fn same_address(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// This node is the member with its address, else the member named like its host.
pub fn find_self(
    members: &[Member],
    facts: &Facts,
    address: IpAddr,
) -> std::result::Result<Member, String> {
    if let Some(m) = members
        .iter()
        .find(|m| same_address(&m.address, &address.to_string()))
    {
        return Ok(m.clone());
    }
    if let Some(m) = members
        .iter()
        .find(|m| m.name == facts.hostname || m.name == facts.nodename)
    {
        return Ok(m.clone());
    }
    let listed: Vec<String> = members
        .iter()
        .map(|m| format!("{} ({})", m.name, m.address))
        .collect();
    Err(format!(
        "this node is not a member: its address is {address} and its hostname {}, but the members are {}; \
         add this node to etcd_members, or fix etcd_interface/etcd_address",
        facts.hostname,
        listed.join(", ")
    ))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
