//! The resolved seed: everything the later layers need, rendered, typed and checked.

use crate::util::http::Retry;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// `scheme://host:port` -> (host without brackets, port). None for anything else.
pub fn url_host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.trim().split_once("://")?.1;
    let hostport = rest.split('/').next()?;
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, p) = h.split_once("]:")?;
        (h, p)
    } else {
        hostport.rsplit_once(':')?
    };
    Some((host.to_string(), port.parse().ok()?))
}

/// `name=https://address:peer_port,...` in the seed's order, as the role's template builds it.
pub fn initial_cluster(members: &[Member], peer_port: u16) -> String {
    members
        .iter()
        .map(|m| format!("{}={}", m.name, m.url(peer_port)))
        .collect::<Vec<_>>()
        .join(",")
}

/// What `fetch` needs: the release and where it goes. Needs no interface, so an image build can fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseSpec {
    /// `etcd_version` as the seed wrote it (without a leading `v`): what URLs and records name.
    pub version: String,
    /// The same, resolved once: what every comparison uses.
    pub semver: crate::util::version::Version,
    pub architecture: String,
    pub allow_unsupported_arch: bool,
    pub download_url: String,
    pub download_checksum: String,
    pub download_dir: PathBuf,
    pub download_ca_file: Option<PathBuf>,
    pub retry: Retry,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinSpec {
    pub as_learner: bool,
    /// A member (by name) to remove first, only if it is not healthy.
    pub replace: Option<String>,
    /// How long to keep trying while the cluster is busy (another join, no leader, unreachable).
    pub timeout: Duration,
    /// How long the member to replace must stay unreachable before it is removed.
    pub replace_grace: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSpec {
    pub dir: PathBuf,
    pub interval: Duration,
    /// Snapshots to keep; 0 keeps all.
    pub keep: u32,
    pub offsite: Option<OffsiteSpec>,
}

/// `etcd_backup.offsite`: where every snapshot also goes, and how many stay there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsiteSpec {
    /// `https://host[:port]` (path-style), or AWS's regional endpoint for `s3://`.
    pub endpoint: String,
    pub bucket: String,
    /// Under the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
    pub region: String,
    /// An AWS shared-credentials file (root's alone), and the profile in it.
    pub credentials: PathBuf,
    pub profile: String,
    pub ca_file: Option<PathBuf>,
    /// age X25519 recipients' public keys: when any, only ciphertext leaves the node.
    pub recipients: Vec<[u8; 32]>,
    /// Newest snapshots kept offsite (never fewer than 1).
    pub keep: u32,
    /// Also the newest of each of the last N days (0: none).
    pub keep_daily: u32,
    /// How long one upload may take, retries of transient failures included.
    pub timeout: Duration,
}

/// `etcd_maintenance`: the timer that runs `etcd-bootstrap maintain`, and what that run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceSpec {
    /// The timer is installed (`enabled: false`: none; `maintain` by hand still uses the rest).
    pub enabled: bool,
    pub interval: std::time::Duration,
    /// Defragment once this share of the db file (percent) holds no data...
    pub fragmentation: u8,
    /// ...and the file is at least this large (bytes).
    pub min_db_size: u64,
    /// Compact to the current revision minus this before recovering from NOSPACE; 0: never.
    pub compact_keep_revisions: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSpec {
    /// A path on the target system, or a file:// or https:// URL.
    pub snapshot: String,
    pub sha256: String,
    /// Keep the private copy that was verified and restored (else it is removed once restored).
    pub keep: bool,
}

/// The day-2 parts of a seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day2 {
    /// Set when `initial-cluster-state` is `existing`: join a running cluster through its API.
    pub join: Option<JoinSpec>,
    pub backup: Option<BackupSpec>,
    pub restore: Option<RestoreSpec>,
    pub maintenance: MaintenanceSpec,
}

/// A backend quota, and whether it is etcd's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub bytes: u64,
    pub default: bool,
}

impl Quota {
    /// No quota: etcd enforces none when quota-backend-bytes is negative.
    pub const NONE: Quota = Quota {
        bytes: u64::MAX,
        default: false,
    };

    /// The quota a member says it runs with (`dbSizeQuota`, 3.6 on; 0 when it does not say),
    /// else the one the seed gives it.
    pub fn running(reported: u64, cfg: &Config) -> Quota {
        match reported {
            0 => cfg.quota(),
            bytes => Quota {
                bytes,
                default: false,
            },
        }
    }
}

impl std::fmt::Display for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == Quota::NONE {
            return f.write_str("no quota (quota-backend-bytes is negative: etcd enforces none)");
        }
        f.write_str(&crate::util::size::format_bytes(self.bytes))?;
        if self.default {
            f.write_str(" (etcd's default: quota-backend-bytes is 0)")?;
        }
        Ok(())
    }
}

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
    pub join: Option<JoinSpec>,
    pub backup: Option<BackupSpec>,
    pub restore: Option<RestoreSpec>,
    pub maintenance: MaintenanceSpec,
    /// `etcd_metrics_textfile_dir`: where the backup and maintenance runs leave their metrics for
    /// node_exporter's textfile collector (`None`: the seed set it empty).
    pub textfile_dir: Option<PathBuf>,
    /// How long a restart waits for its turn, and for this member to come back.
    pub restart_timeout: Duration,
    /// `etcd_allow_downgrade`: apply may take the cluster one minor back through etcd's
    /// downgrade API.
    pub allow_downgrade: bool,
}

impl Config {
    /// This config with `added` settings over its own: what the day-2 steps settled (a join's
    /// `initial-cluster`). The config itself is never changed after it is resolved.
    pub fn with_settings(&self, added: &[(String, String)]) -> Config {
        let mut c = self.clone();
        for (k, v) in added {
            c.settings.insert(k.clone(), v.clone());
        }
        c
    }

    /// A setting's value, when set and not empty.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .get(key)
            .map(|v| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A setting that names a file, when set.
    pub fn path_setting(&self, key: &str) -> Option<PathBuf> {
        self.setting(key).map(PathBuf::from)
    }

    /// The URLs of a comma-separated setting.
    pub fn urls(&self, key: &str) -> Vec<String> {
        self.settings
            .get(key)
            .map(|v| {
                v.split(',')
                    .map(|u| u.trim().to_string())
                    .filter(|u| !u.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The peer URLs this member advertises (its own URL when the settings name none).
    pub fn my_peer_urls(&self) -> Vec<String> {
        let urls = self.urls("initial-advertise-peer-urls");
        if urls.is_empty() {
            vec![self.this_member.url(self.peer_port)]
        } else {
            urls
        }
    }

    /// `initial-cluster-state`: `new` unless the settings say otherwise.
    pub fn cluster_state(&self) -> &str {
        self.settings
            .get("initial-cluster-state")
            .map(|s| s.trim())
            .unwrap_or("new")
    }

    pub fn discovery_srv(&self) -> Option<String> {
        self.setting("discovery-srv")
            .map(|d| d.trim().trim_end_matches('.').to_string())
            .filter(|d| !d.is_empty())
    }

    /// Every member's client URL.
    pub fn client_urls(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| m.url(self.client_port))
            .collect()
    }

    /// The CA that etcd's clients trust.
    pub fn trusted_ca(&self) -> PathBuf {
        self.path_setting("trusted-ca-file")
            .unwrap_or_else(|| self.conf_dir.join("ca-etcd.pem"))
    }

    /// Client certificate for etcdctl and this tool: one named like a client certificate if the
    /// seed ships one, else the server certificate (the role's PKI signs it for client auth too).
    pub fn client_cert_and_key(&self) -> (PathBuf, PathBuf) {
        let names: Vec<&String> = self
            .certificates
            .iter()
            .chain(self.certificate_data.keys())
            .collect();
        if let Some(cert) = names
            .iter()
            .find(|n| n.contains("client") && n.ends_with(".pem") && !n.ends_with("-key.pem"))
        {
            let key = format!("{}-key.pem", cert.trim_end_matches(".pem"));
            if names.iter().any(|n| **n == key) {
                return (self.conf_dir.join(cert.as_str()), self.conf_dir.join(key));
            }
        }
        let cert = self
            .settings
            .get("cert-file")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.conf_dir.join("cert-etcd-server.pem"));
        let key = self
            .settings
            .get("key-file")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.conf_dir.join("cert-etcd-server-key.pem"));
        (cert, key)
    }

    /// The systemd unit's path on the target system.
    pub fn unit_path(&self) -> PathBuf {
        Path::new(crate::state::UNIT_DIR).join(self.unit_name())
    }

    pub fn unit_name(&self) -> String {
        format!("{}.service", self.service_name)
    }

    /// The backup service and timer names.
    pub fn maintenance_unit_names(&self) -> (String, String) {
        (
            format!("{}-maintain.service", self.service_name),
            format!("{}-maintain.timer", self.service_name),
        )
    }

    /// The backend quota the seed gives etcd, read as etcd reads the flag (a Go int64: no units):
    /// unset or 0 is etcd's 2 GiB; negative is no quota at all (`Quota::NONE`); over 8 GiB etcd
    /// warns and uses it. A value etcd cannot read is the flags check's to refuse; here it is the
    /// default.
    pub fn quota(&self) -> Quota {
        const ETCD_DEFAULT: u64 = 2 << 30;
        match self
            .setting("quota-backend-bytes")
            .and_then(crate::util::size::go_int64)
        {
            Some(n) if n < 0 => Quota::NONE,
            Some(n) if n > 0 => Quota {
                bytes: n as u64,
                default: false,
            },
            _ => Quota {
                bytes: ETCD_DEFAULT,
                default: true,
            },
        }
    }

    pub fn backup_unit_names(&self) -> (String, String) {
        (
            format!("{}-backup.service", self.service_name),
            format!("{}-backup.timer", self.service_name),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_url_hosts() {
        assert_eq!(
            url_host_port("https://10.8.0.1:2379"),
            Some(("10.8.0.1".into(), 2379))
        );
        assert_eq!(
            url_host_port("https://[fd00::1]:2380"),
            Some(("fd00::1".into(), 2380))
        );
        assert_eq!(
            url_host_port("https://etcd.example.org:2379/"),
            Some(("etcd.example.org".into(), 2379))
        );
        assert_eq!(url_host_port("10.8.0.1"), None);
    }
}
