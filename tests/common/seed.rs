//! The one seed builder.

use super::*;

/// The name of cluster node `i` (0-based) and its wg0 address.
pub fn member(i: usize) -> (String, String) {
    (format!("etcd-node{}", i + 1), format!("10.8.0.{}", i + 1))
}

/// The certificates every test seed lists (from `etcd_ca_conf_directory: /srv/pki`).
pub const CERTIFICATES: &str = "[ca-etcd.pem, cert-etcd-server.pem, cert-etcd-server-key.pem, \
     cert-etcd-peer.pem, cert-etcd-peer-key.pem, cert-etcd-client.pem, cert-etcd-client-key.pem]";

/// The one seed builder: the PKI lines, `etcd_settings_user` (log to stderr, then `settings`),
/// `etcd_members`, the release, then `extra`.
#[derive(Clone, Default)]
pub struct SeedText {
    pub members: Vec<(String, String)>,
    pub settings: Vec<String>,
    pub release: String,
    pub extra: String,
}

impl SeedText {
    pub fn new(release: &str) -> SeedText {
        SeedText {
            release: release.to_string(),
            ..SeedText::default()
        }
    }
    pub fn member(mut self, name: &str, addr: &str) -> SeedText {
        self.members.push((name.into(), addr.into()));
        self
    }
    /// Cluster nodes `idx` (0-based): `etcd-node{i+1}` at `10.8.0.{i+1}`.
    pub fn nodes(mut self, idx: &[usize]) -> SeedText {
        self.members.extend(idx.iter().map(|&i| member(i)));
        self
    }
    /// Lines under etcd_settings_user (each `key: value`).
    pub fn settings(mut self, lines: &str) -> SeedText {
        self.settings.extend(
            lines
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty()),
        );
        self
    }
    pub fn extra(mut self, lines: &str) -> SeedText {
        self.extra.push_str(lines);
        self
    }
    pub fn text(&self) -> String {
        let mut s = format!(
            "etcd_ca_conf_directory: /srv/pki\netcd_certificates: {CERTIFICATES}\n\
             etcd_settings_user:\n  log-outputs: stderr\n"
        );
        for l in &self.settings {
            s.push_str(&format!("  {l}\n"));
        }
        s.push_str("etcd_members:\n");
        for (n, a) in &self.members {
            s.push_str(&format!("  - {{name: {n}, address: {a}}}\n"));
        }
        s.push_str(&self.release);
        s.push_str(&self.extra);
        s
    }
    pub fn write(&self, path: &Path) -> PathBuf {
        fs::write(path, self.text()).unwrap();
        path.to_path_buf()
    }
}
