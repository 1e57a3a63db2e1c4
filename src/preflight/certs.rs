//! Certificates, read as X.509 before etcd ever sees them: coverage of every address clients and
//! peers use, the chain to the trusted CA, key/certificate pairing, key usages, validity, and no CA
//! private key on the node.

use super::Report;
use crate::seed::{certificates, url_host_port, Config};
use crate::util::time;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use x509_parser::prelude::*;

/// An address a certificate must cover, and why (for the message).
struct Need {
    host: String,
    why: String,
}

/// One certificate to check: the server's or the peer's, with its key and the CA it must chain to.
struct Role {
    role: &'static str,
    cert: PathBuf,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
    needs: Vec<Need>,
    /// Peers connect to each other as clients too.
    client_auth: bool,
}

/// The certificate files as they will be installed, and the clock to judge them by.
struct Files<'a> {
    cfg: &'a Config,
    root: &'a Path,
    listed: Vec<(String, Vec<u8>)>,
    now: i64,
}

impl Files<'_> {
    fn get(&self, target: &Path) -> Result<(String, Vec<u8>), String> {
        certificates::installed_or_listed(self.cfg, self.root, &self.listed, target)
    }
}

pub fn covers(sans_ip: &[IpAddr], sans_dns: &[String], host: &str) -> bool {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return sans_ip.contains(&ip);
    }
    let host = host.to_ascii_lowercase();
    sans_dns.iter().any(|d| {
        let d = d.to_ascii_lowercase();
        match d.strip_prefix("*.") {
            Some(suffix) => host
                .split_once('.')
                .map(|(first, rest)| !first.is_empty() && rest == suffix)
                .unwrap_or(false),
            None => d == host,
        }
    })
}

fn fmt_time(t: &ASN1Time) -> String {
    time::utc(t.timestamp())
}

/// The IP and DNS subject alternative names of a certificate.
pub fn sans(cert: &X509Certificate) -> (Vec<IpAddr>, Vec<String>) {
    let mut ips = Vec::new();
    let mut dns = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for g in &san.value.general_names {
            match g {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap())),
                    16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap())),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    (ips, dns)
}

/// The DNS names in the subject alternative names of the certificate a setting names, as it will
/// be installed (e.g. `peer-cert-file`).
pub fn dns_names(
    cfg: &Config,
    root: &Path,
    setting: &str,
) -> Result<(String, Vec<String>), String> {
    let listed = certificates::read(cfg, root).map_err(|e| format!("{e:#}"))?;
    let path = cfg
        .path_setting(setting)
        .ok_or_else(|| format!("{setting} is not set"))?;
    let (name, pem) = certificates::installed_or_listed(cfg, root, &listed, &path)?;
    let der = CertificateDer::pem_slice_iter(&pem)
        .find_map(|c| c.ok())
        .ok_or_else(|| format!("{name} holds no PEM certificate"))?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| format!("{name}: {e}"))?;
    Ok((name, sans(&cert).1))
}

/// Whether `leaf` (with `intermediates`) chains to one of `cas` for the given usage, checked at a
/// moment just after `not_before` (seconds): a chain problem is told apart from a clock problem.
pub fn verify_chain(
    leaf: &CertificateDer,
    intermediates: &[CertificateDer],
    cas: &[CertificateDer],
    not_before: i64,
    server_auth: bool,
) -> Result<(), String> {
    let anchors: Vec<_> = cas
        .iter()
        .filter_map(|c| {
            webpki::anchor_from_trusted_cert(c)
                .ok()
                .map(|a| a.to_owned())
        })
        .collect();
    if anchors.is_empty() {
        return Err("no usable CA certificate".into());
    }
    let at = UnixTime::since_unix_epoch(Duration::from_secs((not_before.max(0) as u64) + 1));
    let usage = if server_auth {
        webpki::KeyUsage::server_auth()
    } else {
        webpki::KeyUsage::client_auth()
    };
    let ee = webpki::EndEntityCert::try_from(leaf).map_err(|e| format!("{e}"))?;
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        intermediates,
        at,
        usage,
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| format!("{e}"))
}

/// Whether the PEM private key's public half equals `spki` (DER SubjectPublicKeyInfo).
pub fn key_matches(key_pem: &[u8], spki: &[u8]) -> Result<bool, String> {
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("not a PEM private key ({e})"))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("unsupported private key ({e})"))?;
    match signing.public_key() {
        Some(pk) => Ok(pk.as_ref() == spki),
        None => Err("cannot derive the public key of this key type".into()),
    }
}

/// The checks of one role, each adding its errors to the report and counting them.
struct Check<'a, 'r> {
    files: &'a Files<'a>,
    r: &'r mut Report,
    role: &'a Role,
    name: String,
    errors: usize,
}

impl Check<'_, '_> {
    fn error(&mut self, msg: String) {
        self.errors += 1;
        self.r.error("certs", msg);
    }

    /// Subject alternative names: what etcd's clients and peers will verify against. Returns how
    /// the certificate's coverage reads in a message.
    fn coverage(&mut self, cert: &X509Certificate) -> String {
        let (ips, dns) = sans(cert);
        let held: Vec<String> = ips
            .iter()
            .map(|i| i.to_string())
            .chain(dns.iter().cloned())
            .collect();
        let held_text = if held.is_empty() {
            "it has no subject alternative names (the CN is not used by etcd's TLS)".to_string()
        } else {
            format!("it covers {}", held.join(", "))
        };
        for n in &self.role.needs {
            if !covers(&ips, &dns, &n.host) {
                let msg = format!(
                    "{} does not cover {} ({}); {held_text}",
                    self.name, n.host, n.why
                );
                self.error(msg);
            }
        }
        held_text
    }

    /// Key usages: peers are both servers and clients. Returns whether serverAuth is allowed.
    fn usages(&mut self, cert: &X509Certificate) -> bool {
        let (server_auth, client_auth) = match cert.extended_key_usage() {
            Ok(Some(eku)) => (
                eku.value.server_auth || eku.value.any,
                eku.value.client_auth || eku.value.any,
            ),
            _ => (true, true),
        };
        let name = self.name.clone();
        if !server_auth {
            self.error(format!(
                "{name} does not allow serverAuth (extended key usage); the {} certificate must",
                self.role.role
            ));
        }
        if self.role.client_auth && !client_auth {
            self.error(format!(
                "{name} does not allow clientAuth (extended key usage); etcd peers connect to each other as clients too"
            ));
        }
        server_auth
    }

    /// Validity, with the clock in mind: at first boot before NTP the clock may be far behind.
    fn validity(&mut self, cert: &X509Certificate) {
        let (now, name) = (self.files.now, self.name.clone());
        let v = cert.validity();
        if now < v.not_before.timestamp() {
            self.error(format!(
                "{name} is not valid yet: valid from {}, but this machine's clock says {}; if the clock is wrong \
                 (first boot before NTP) order etcd-bootstrap after time-sync.target, else reissue the certificate",
                fmt_time(&v.not_before),
                time::utc(now)
            ));
        } else if now > v.not_after.timestamp() {
            self.error(format!(
                "{name} expired on {}; reissue it",
                fmt_time(&v.not_after)
            ));
        } else if v.not_after.timestamp() - now < 14 * 86400 {
            self.r.warn(
                "certs",
                format!("{name} expires soon, on {}", fmt_time(&v.not_after)),
            );
        }
    }

    /// The chain to the trusted CA, verified at a time inside the certificate's validity, so a
    /// chain problem and a clock problem are told apart.
    fn chain(&mut self, cert: &X509Certificate, ders: &[CertificateDer], server_auth: bool) {
        let Some(ca_path) = &self.role.ca else {
            return;
        };
        let (ca_name, ca_pem) = match self.files.get(ca_path) {
            Ok(x) => x,
            Err(e) => return self.error(format!("trusted CA {e}")),
        };
        let cas: Vec<CertificateDer> = CertificateDer::pem_slice_iter(&ca_pem)
            .filter_map(|c| c.ok())
            .collect();
        if cas
            .iter()
            .all(|c| webpki::anchor_from_trusted_cert(c).is_err())
        {
            return self.error(format!("{ca_name} holds no usable CA certificate"));
        }
        let nb = cert.validity().not_before.timestamp();
        let res = verify_chain(&ders[0], &ders[1..], &cas, nb, server_auth);
        if let Err(e) = res {
            let ca_subject = cas
                .first()
                .and_then(|c| X509Certificate::from_der(c).ok())
                .map(|(_, c)| c.subject().to_string())
                .unwrap_or_default();
            self.error(format!(
                "{} does not chain to the trusted CA {ca_name} ({e}): it was issued by \"{}\", the CA is \"{ca_subject}\"",
                self.name,
                cert.issuer()
            ));
        }
    }

    /// The key belongs to the certificate.
    fn key(&mut self, cert: &X509Certificate) {
        let Some(key_path) = &self.role.key else {
            return;
        };
        match self.files.get(key_path) {
            Err(e) => self.error(format!("{} key {e}", self.role.role)),
            Ok((key_name, key_pem)) => match key_matches(&key_pem, cert.public_key().raw) {
                Ok(true) => {}
                Ok(false) => self.error(format!(
                    "{key_name} is not the key of {} (their public keys differ); install the matching pair",
                    self.name
                )),
                Err(e) => self.error(format!("{key_name}: {e}")),
            },
        }
    }
}

/// Checks one role's certificate, key and chain; one ok line when all is well.
fn check_role(r: &mut Report, files: &Files, role: &Role) {
    let (name, pem) = match files.get(&role.cert) {
        Ok(x) => x,
        Err(e) => return r.error("certs", format!("{} certificate {e}", role.role)),
    };
    let ders: Vec<CertificateDer> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(|c| c.ok())
        .collect();
    let Some(leaf_der) = ders.first() else {
        return r.error("certs", format!("{name} holds no PEM certificate"));
    };
    let cert = match X509Certificate::from_der(leaf_der) {
        Ok((_, c)) => c,
        Err(e) => {
            return r.error(
                "certs",
                format!("{name} is not a valid X.509 certificate: {e}"),
            )
        }
    };
    let mut c = Check {
        files,
        r,
        role,
        name: name.clone(),
        errors: 0,
    };
    let held_text = c.coverage(&cert);
    let server_auth = c.usages(&cert);
    c.validity(&cert);
    c.chain(&cert, &ders, server_auth);
    c.key(&cert);
    if c.errors == 0 {
        c.r.ok(
            "certs",
            format!(
                "{} certificate {name}: {held_text}; chains to the CA; key matches; valid until {}",
                role.role,
                fmt_time(&cert.validity().not_after)
            ),
        );
    }
}

/// This node's address and every host in the URLs of `keys` (but wildcards like 0.0.0.0).
fn needs(cfg: &Config, keys: &[&str]) -> Vec<Need> {
    let mut needs: Vec<Need> = vec![Need {
        host: cfg.address.to_string(),
        why: format!("{} of {}", cfg.interface, cfg.this_member.name),
    }];
    for key in keys {
        for u in cfg.urls(key) {
            if let Some((h, _)) = url_host_port(&u) {
                let unspecified = h.parse::<IpAddr>().is_ok_and(|i| i.is_unspecified());
                if !unspecified && !needs.iter().any(|n| n.host == h) {
                    needs.push(Need {
                        host: h,
                        why: (*key).to_string(),
                    });
                }
            }
        }
    }
    needs
}

/// A CA private key on a node is a key to the whole cluster's trust.
fn ca_keys(r: &mut Report, files: &Files) {
    let cfg = files.cfg;
    let ca_spki: Vec<Vec<u8>> = cfg
        .path_setting("trusted-ca-file")
        .into_iter()
        .chain(cfg.path_setting("peer-trusted-ca-file"))
        .filter_map(|p| files.get(&p).ok())
        .flat_map(|(_, pem)| {
            CertificateDer::pem_slice_iter(&pem)
                .filter_map(|c| c.ok())
                .collect::<Vec<_>>()
        })
        .filter_map(|der| {
            X509Certificate::from_der(&der)
                .ok()
                .map(|(_, c)| c.public_key().raw.to_vec())
        })
        .collect();
    for (name, bytes) in &files.listed {
        let is_ca_key = ca_spki
            .iter()
            .any(|spki| key_matches(bytes, spki).unwrap_or(false))
            || (name.starts_with("ca") && name.ends_with("-key.pem"));
        if is_ca_key {
            r.warn(
                "certs",
                format!("{name} is the CA's private key: etcd never needs it on a node; remove it from etcd_certificates"),
            );
        }
    }
}

pub fn check(r: &mut Report, cfg: &Config, root: &Path, now: SystemTime) {
    let listed = match certificates::read(cfg, root) {
        Ok(v) => v,
        Err(e) => {
            r.error("certs", format!("{e:#}"));
            return;
        }
    };
    let files = Files {
        cfg,
        root,
        listed,
        now: time::unix(now),
    };
    let roles = [
        (
            "server",
            "cert-file",
            "key-file",
            "trusted-ca-file",
            ["advertise-client-urls", "listen-client-urls"],
            false,
        ),
        (
            "peer",
            "peer-cert-file",
            "peer-key-file",
            "peer-trusted-ca-file",
            ["initial-advertise-peer-urls", "listen-peer-urls"],
            true,
        ),
    ];
    for (role, cert, key, ca, urls, client_auth) in roles {
        match cfg.path_setting(cert) {
            Some(cert) => check_role(
                r,
                &files,
                &Role {
                    role,
                    cert,
                    key: cfg.path_setting(key),
                    ca: cfg.path_setting(ca),
                    needs: needs(cfg, &urls),
                    client_auth,
                },
            ),
            None if role == "server" => r.warn(
                "certs",
                "cert-file is not set: clients talk to etcd without TLS",
            ),
            None => r.warn(
                "certs",
                "peer-cert-file is not set: members talk to each other without TLS",
            ),
        }
    }
    ca_keys(r, &files);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_of_ips_names_and_wildcards() {
        let ips: Vec<IpAddr> = vec!["10.8.0.1".parse().unwrap()];
        let dns = vec!["etcd-node1".to_string(), "*.etcd.example.org".to_string()];
        assert!(covers(&ips, &dns, "10.8.0.1"));
        assert!(!covers(&ips, &dns, "10.8.0.2"));
        assert!(covers(&ips, &dns, "ETCD-node1"));
        assert!(covers(&ips, &dns, "a.etcd.example.org"));
        assert!(!covers(&ips, &dns, "a.b.etcd.example.org"));
        assert!(!covers(&ips, &dns, "etcd.example.org"));
    }
}
