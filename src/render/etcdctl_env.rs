//! `etcdctl.env`: what etcdctl (and this tool's `backup`) need to reach this member.

use crate::seed::Config;

/// `etcdctl.env`: `set -a; . /etc/etcd/etcdctl.env` and `etcdctl endpoint health` needs no flags.
pub fn etcdctl_env(cfg: &Config) -> String {
    let (cert, key) = cfg.client_cert_and_key();
    let ca = cfg.trusted_ca();
    let endpoints = cfg
        .settings
        .get("advertise-client-urls")
        .filter(|v| !v.is_empty())
        .cloned()
        .unwrap_or_else(|| cfg.this_member.url(cfg.client_port));
    format!(
        "# Written by etcd-bootstrap. Use: set -a; . {}/etcdctl.env; set +a; etcdctl endpoint health\n\
         ETCDCTL_API=3\n\
         ETCDCTL_ENDPOINTS={endpoints}\n\
         ETCDCTL_CACERT={ca}\n\
         ETCDCTL_CERT={}\n\
         ETCDCTL_KEY={}\n",
        cfg.conf_dir.display(),
        cert.display(),
        key.display(),
        ca = ca.display()
    )
}
