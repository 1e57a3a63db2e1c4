//! The TLS client for etcd's client port, with the CA, client certificate and key that
//! `etcdctl.env` names.

use crate::seed::{certificates, Config};
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Duration;

/// A TLS client for etcd's client port, its files read under `root`. The seed's certificates are
/// used first: a node that joins talks to the cluster before it installs them.
pub fn tls_client(cfg: &Config, root: &Path) -> Result<reqwest::blocking::Client> {
    client(cfg, root, false)
}

/// A TLS client with the certificates installed on this node first (the seed's only where none
/// is installed): what a scheduled job uses, which acts on what apply installed.
pub fn tls_client_installed(cfg: &Config, root: &Path) -> Result<reqwest::blocking::Client> {
    client(cfg, root, true)
}

fn client(cfg: &Config, root: &Path, installed_first: bool) -> Result<reqwest::blocking::Client> {
    crate::util::seam::count(crate::util::seam::CLUSTER_CLIENT);
    let ca = cfg.trusted_ca();
    let (cert, key) = cfg.client_cert_and_key();
    let listed = certificates::read(cfg, root).unwrap_or_default();
    let read = |p: &Path, what: &str| -> Result<Vec<u8>> {
        let on_disk = crate::util::fs::under(root, p);
        if installed_first && on_disk.is_file() {
            return std::fs::read(&on_disk)
                .with_context(|| format!("reading the {what} {}", on_disk.display()));
        }
        certificates::installed_or_listed(cfg, root, &listed, p)
            .map(|(_, b)| b)
            .with_context(|| format!("reading the {what} (has apply run?)"))
    };
    let ca_pem = read(&ca, "CA certificate")?;
    let mut identity = read(&cert, "client certificate")?;
    identity.push(b'\n');
    identity.extend(read(&key, "client key")?);
    // Straight to the members: never through a proxy (https_proxy is for downloads), never
    // redirected elsewhere.
    let mut b = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .tls_built_in_root_certs(false)
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5));
    for c in reqwest::Certificate::from_pem_bundle(&ca_pem)
        .with_context(|| format!("{} holds no usable PEM certificate", ca.display()))?
    {
        b = b.add_root_certificate(c);
    }
    let id = reqwest::Identity::from_pem(&identity).with_context(|| {
        format!(
            "loading the client certificate {} and key {}",
            cert.display(),
            key.display()
        )
    })?;
    b.identity(id).build().context("building the TLS client")
}
