//! The seed as written: the Ansible role's variable names, every key optional.
//!
//! Values are kept as written (templates unrendered); `seed::resolve` applies defaults and renders them.

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

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawMember {
    pub name: Scalar,
    pub address: Scalar,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSeed {
    pub etcd_version: Option<Scalar>,
    pub etcd_architecture: Option<Scalar>,
    pub etcd_allow_unsupported_archs: Option<Scalar>,
    pub etcd_download_url: Option<Scalar>,
    pub etcd_download_url_checksum: Option<Scalar>,
    pub etcd_download_dir: Option<Scalar>,
    pub etcd_download_ca_file: Option<Scalar>,
    pub etcd_download_attempts: Option<Scalar>,
    pub etcd_download_max_time: Option<Scalar>,
    pub etcd_download_read_timeout: Option<Scalar>,
    pub etcd_bin_dir: Option<Scalar>,
    pub etcd_conf_dir: Option<Scalar>,
    pub etcd_data_dir: Option<Scalar>,
    pub etcd_user: Option<Scalar>,
    pub etcd_group: Option<Scalar>,
    pub etcd_interface: Option<Scalar>,
    pub etcd_address: Option<Scalar>,
    pub etcd_client_port: Option<Scalar>,
    pub etcd_peer_port: Option<Scalar>,
    pub etcd_service_name: Option<Scalar>,
    pub etcd_service_options: Option<Vec<Scalar>>,
    pub etcd_settings: Option<BTreeMap<String, Scalar>>,
    pub etcd_settings_user: Option<BTreeMap<String, Scalar>>,
    pub etcd_certificates: Option<Vec<Scalar>>,
    #[serde(alias = "k8s_ca_conf_directory")]
    pub etcd_ca_conf_directory: Option<Scalar>,
    pub etcd_certificate_data: Option<BTreeMap<String, String>>,
    pub etcd_members: Option<Vec<RawMember>>,
    pub etcd_join_as_learner: Option<Scalar>,
    pub etcd_replace_member: Option<Scalar>,
    pub etcd_join_timeout: Option<Scalar>,
    pub etcd_backup: Option<RawBackup>,
    pub etcd_restore: Option<RawRestore>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackup {
    pub dir: Option<Scalar>,
    pub interval: Option<Scalar>,
    pub keep: Option<Scalar>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRestore {
    pub snapshot: Scalar,
    pub sha256: Scalar,
}
