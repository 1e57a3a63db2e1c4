//! The seed as written: the Ansible role's variable names, every key optional.
//!
//! Values are kept as written (templates unrendered); `seed::resolve` applies defaults and renders
//! them. Every scalar key is listed once, in `schema!` below, with when it is rendered and its
//! default: the struct serde reads, the default table and the lookup by name all come from that list.

use super::defaults::DEFAULT_VERSION;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// A YAML scalar taken as text: Ansible treats `2379`, `"2379"` and `true` alike once templated,
/// and pasted group_vars use all of these forms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            // `wal-dir:` with nothing after it means "no value", like the role's `""`.
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(String::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// When a scalar is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Before this node's address is known: the variables may refer to each other in any order,
    /// and `fetch` (an image build) needs no more than these.
    Early,
    /// With every fact, this node's member name included (the day-2 keys).
    Late,
}

/// A scalar key of the seed: its name, when it is rendered and its default (as written in a seed).
#[derive(Debug, Clone, Copy)]
pub struct ScalarKey {
    pub name: &'static str,
    pub when: When,
    pub default: &'static str,
}

/// The default of `etcd_architecture`: this machine's, from the facts.
pub const FROM_FACTS: &str = "";

macro_rules! schema {
    (
        scalars { $( $(#[$sm:meta])* $skey:ident : $when:ident = $default:expr, )* }
        others { $( $(#[$om:meta])* $okey:ident : $oty:ty, )* }
    ) => {
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawSeed {
            $( $(#[$sm])* pub $skey: Option<Scalar>, )*
            $( $(#[$om])* pub $okey: Option<$oty>, )*
        }

        /// Every scalar key, once.
        pub const SCALARS: &[ScalarKey] = &[
            $( ScalarKey { name: stringify!($skey), when: When::$when, default: $default }, )*
        ];

        impl RawSeed {
            /// The value of scalar key `name` as written, if the seed gives it.
            pub fn scalar(&self, name: &str) -> Option<&Scalar> {
                match name {
                    $( stringify!($skey) => self.$skey.as_ref(), )*
                    _ => None,
                }
            }
        }
    };
}

schema! {
    scalars {
        etcd_version: Early = DEFAULT_VERSION,
        etcd_architecture: Early = FROM_FACTS,
        etcd_allow_unsupported_archs: Early = "false",
        etcd_download_url: Early = "https://github.com/etcd-io/etcd/releases/download/v{{ etcd_version }}/etcd-v{{ etcd_version }}-linux-{{ etcd_architecture }}.tar.gz",
        etcd_download_url_checksum: Early = "sha256:https://github.com/etcd-io/etcd/releases/download/v{{ etcd_version }}/SHA256SUMS",
        etcd_download_dir: Early = "/opt/etcd",
        etcd_download_ca_file: Early = "",
        etcd_download_attempts: Early = "5",
        etcd_download_max_time: Early = "10m",
        etcd_download_read_timeout: Early = "60s",
        etcd_bin_dir: Early = "/usr/local/bin",
        etcd_conf_dir: Early = "/etc/etcd",
        etcd_data_dir: Early = "/var/lib/etcd",
        etcd_user: Early = "etcd",
        etcd_group: Early = "etcd",
        etcd_interface: Early = "wg0",
        etcd_address: Early = "",
        etcd_client_port: Early = "2379",
        etcd_peer_port: Early = "2380",
        etcd_service_name: Early = "etcd",
        etcd_metrics_textfile_dir: Early = "/var/lib/prometheus/node-exporter",
        #[serde(alias = "k8s_ca_conf_directory")]
        etcd_ca_conf_directory: Early = "{{ '~/etcd-certificates' | expanduser }}",
        etcd_join_as_learner: Late = "false",
        etcd_replace_member: Late = "",
        etcd_join_timeout: Late = "10m",
        etcd_replace_grace: Late = "60s",
        etcd_restart_timeout: Late = "10m",
        etcd_allow_downgrade: Late = "false",
    }
    others {
        etcd_service_options: Vec<Scalar>,
        etcd_settings: BTreeMap<String, Scalar>,
        etcd_settings_user: BTreeMap<String, Scalar>,
        etcd_certificates: Vec<Scalar>,
        etcd_certificate_data: BTreeMap<String, String>,
        etcd_members: Vec<RawMember>,
        etcd_backup: RawBackup,
        etcd_restore: RawRestore,
        etcd_maintenance: RawMaintenance,
    }
}

impl RawSeed {
    /// The value of scalar key `name` as written, else its default.
    pub fn scalar_or_default(&self, name: &str) -> String {
        match self.scalar(name) {
            Some(s) => s.0.clone(),
            None => SCALARS
                .iter()
                .find(|k| k.name == name)
                .map(|k| k.default.to_string())
                .unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawMember {
    pub name: Scalar,
    pub address: Scalar,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackup {
    pub dir: Option<Scalar>,
    pub interval: Option<Scalar>,
    pub keep: Option<Scalar>,
    pub offsite: Option<RawOffsite>,
}

/// `etcd_backup.offsite`: an S3-compatible store every snapshot is also uploaded to.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOffsite {
    pub url: Option<Scalar>,
    pub region: Option<Scalar>,
    pub credentials: Option<Scalar>,
    pub profile: Option<Scalar>,
    pub ca_file: Option<Scalar>,
    pub recipients: Option<Vec<Scalar>>,
    pub keep: Option<Scalar>,
    pub keep_daily: Option<Scalar>,
    pub timeout: Option<Scalar>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenance {
    pub enabled: Option<Scalar>,
    pub interval: Option<Scalar>,
    pub fragmentation: Option<Scalar>,
    pub min_db_size: Option<Scalar>,
    pub compact_keep_revisions: Option<Scalar>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRestore {
    pub snapshot: Scalar,
    pub sha256: Scalar,
    pub keep: Option<Scalar>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scalar_key_is_read_and_found_by_name() {
        let yaml: String = SCALARS
            .iter()
            .map(|k| format!("{}: \"v-{}\"\n", k.name, k.name))
            .collect();
        let raw: RawSeed = serde_yaml::from_str(&yaml).unwrap();
        for k in SCALARS {
            assert_eq!(raw.scalar(k.name).unwrap().0, format!("v-{}", k.name));
        }
        let none = RawSeed::default();
        assert_eq!(none.scalar_or_default("etcd_client_port"), "2379");
        assert_eq!(none.scalar("etcd_settings"), None);
    }
}
