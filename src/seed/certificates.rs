//! The certificates a seed names, read from where it says: `etcd_certificate_data` (inline PEM)
//! or files in `etcd_ca_conf_directory` under the root.

use super::config::Config;
use crate::util::fs;
use anyhow::{bail, Result};
use std::path::Path;

/// (file name, PEM bytes) of every certificate and key the seed lists, in its order.
pub fn read(cfg: &Config, root: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut names: Vec<String> = cfg.certificates.clone();
    for n in cfg.certificate_data.keys() {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    let src_dir = fs::under(root, &cfg.ca_conf_directory);
    let mut out = Vec::new();
    for name in names {
        let bytes = match cfg.certificate_data.get(&name) {
            Some(pem) => pem.as_bytes().to_vec(),
            None => {
                let p = src_dir.join(&name);
                std::fs::read(&p).map_err(|e| {
                    anyhow::anyhow!(
                        "certificate {name} (listed in etcd_certificates): cannot read {}: {e}; put it in \
                         etcd_ca_conf_directory ({}) or give its PEM text in etcd_certificate_data",
                        p.display(),
                        cfg.ca_conf_directory.display()
                    )
                })?
            }
        };
        if !bytes.windows(10).any(|w| w == b"-----BEGIN") {
            bail!("certificate {name}: not PEM text (no -----BEGIN line); etcd needs PEM files");
        }
        out.push((name, bytes));
    }
    Ok(out)
}

/// A key file: named like one, or holding a private key.
pub fn is_private_key(name: &str, pem: &[u8]) -> bool {
    name.ends_with("-key.pem")
        || name.ends_with(".key")
        || pem.windows(11).any(|w| w == b"PRIVATE KEY")
}

/// The bytes a target path will hold once installed: from the seed's sources when it is one of the
/// listed certificates in the conf dir, else what is on disk under the root. (name, bytes).
pub fn installed_or_listed(
    cfg: &Config,
    root: &Path,
    listed: &[(String, Vec<u8>)],
    target: &Path,
) -> std::result::Result<(String, Vec<u8>), crate::util::error::Error> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if target.parent() == Some(cfg.conf_dir.as_path()) {
        if let Some((_, b)) = listed.iter().find(|(n, _)| *n == name) {
            return Ok((name, b.clone()));
        }
    }
    let at = fs::under(root, target);
    std::fs::read(&at).map(|b| (name.clone(), b)).map_err(|e| {
        crate::util::error::Error::other(format!(
            "{name}: cannot read {} ({e}); list it in etcd_certificates (from etcd_ca_conf_directory) or \
             etcd_certificate_data",
            at.display()
        ))
    })
}
