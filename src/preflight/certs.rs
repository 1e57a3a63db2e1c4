//! Certificates, read as X.509 before etcd ever sees them: coverage of every address clients and
//! peers use, the chain to the trusted CA, key/certificate pairing, key usages, validity, and no CA
//! private key on the node.

use super::{url_host_port, urls, Report};
use crate::seed::Config;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use x509_parser::prelude::*;

/// The certificate files as they will be installed: from the seed's sources (by file name) when they
/// are listed there, else what is on disk under the root.
struct Files<'a> {
    cfg: &'a Config,
    root: &'a Path,
    listed: BTreeMap<String, Vec<u8>>,
}

impl Files<'_> {
    fn get(&self, target: &Path) -> Result<(String, Vec<u8>), String> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if target.parent() == Some(self.cfg.conf_dir.as_path()) {
            if let Some(b) = self.listed.get(&name) {
                return Ok((name, b.clone()));
            }
        }
        let at = crate::fsutil::under(self.root, target);
        std::fs::read(&at).map(|b| (name.clone(), b)).map_err(|e| {
            format!(
                "{name}: cannot read {} ({e}); list it in etcd_certificates (from etcd_ca_conf_directory) or \
                 etcd_certificate_data",
                at.display()
            )
        })
    }
}

/// An address a certificate must cover, and why (for the message).
struct Need {
    host: String,
    why: String,
}

fn covers(sans_ip: &[IpAddr], sans_dns: &[String], host: &str) -> bool {
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
    fmt_unix(t.timestamp())
}

/// `YYYY-MM-DD hh:mm:ss UTC`.
pub fn fmt_unix(secs: i64) -> String {
    let (y, m, d, hh, mm, ss) = crate::duration::civil_utc(secs);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} UTC")
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Checks one certificate role (server or peer).
fn sans(cert: &X509Certificate) -> (Vec<IpAddr>, Vec<String>) {
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
    let listed: BTreeMap<String, Vec<u8>> = crate::desired::certificates(cfg, root)
        .map_err(|e| format!("{e:#}"))?
        .into_iter()
        .collect();
    let files = Files { cfg, root, listed };
    let path = path_setting(cfg, setting).ok_or_else(|| format!("{setting} is not set"))?;
    let (name, pem) = files.get(&path)?;
    let der = CertificateDer::pem_slice_iter(&pem)
        .find_map(|c| c.ok())
        .ok_or_else(|| format!("{name} holds no PEM certificate"))?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| format!("{name}: {e}"))?;
    Ok((name, sans(&cert).1))
}

#[allow(clippy::too_many_arguments)]
fn check_pair(
    r: &mut Report,
    files: &Files,
    role: &str,
    cert_path: &Path,
    key_path: Option<&Path>,
    ca_path: Option<&Path>,
    needs: &[Need],
    need_client_auth: bool,
    now: SystemTime,
) {
    let (name, pem) = match files.get(cert_path) {
        Ok(x) => x,
        Err(e) => return r.error("certs", format!("{role} certificate {e}")),
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
    let mut errors = 0;

    // Subject alternative names: what etcd's clients and peers will verify against.
    let (ips, dns) = sans(&cert);
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
    for n in needs {
        if !covers(&ips, &dns, &n.host) {
            errors += 1;
            r.error(
                "certs",
                format!("{name} does not cover {} ({}); {held_text}", n.host, n.why),
            );
        }
    }

    // Key usages: peers are both servers and clients.
    let (server_auth, client_auth) = match cert.extended_key_usage() {
        Ok(Some(eku)) => (
            eku.value.server_auth || eku.value.any,
            eku.value.client_auth || eku.value.any,
        ),
        _ => (true, true),
    };
    if !server_auth {
        errors += 1;
        r.error("certs", format!("{name} does not allow serverAuth (extended key usage); the {role} certificate must"));
    }
    if need_client_auth && !client_auth {
        errors += 1;
        r.error(
            "certs",
            format!("{name} does not allow clientAuth (extended key usage); etcd peers connect to each other as clients too"),
        );
    }

    // Validity, with the clock in mind: at first boot before NTP the clock may be far behind.
    let now_s = unix(now);
    let nb = cert.validity().not_before.timestamp();
    let na = cert.validity().not_after.timestamp();
    if now_s < nb {
        errors += 1;
        r.error(
            "certs",
            format!(
                "{name} is not valid yet: valid from {}, but this machine's clock says {}; if the clock is wrong \
                 (first boot before NTP) order etcd-bootstrap after time-sync.target, else reissue the certificate",
                fmt_time(&cert.validity().not_before),
                fmt_unix(now_s)
            ),
        );
    } else if now_s > na {
        errors += 1;
        r.error(
            "certs",
            format!(
                "{name} expired on {}; reissue it",
                fmt_time(&cert.validity().not_after)
            ),
        );
    } else if na - now_s < 14 * 86400 {
        r.warn(
            "certs",
            format!(
                "{name} expires soon, on {}",
                fmt_time(&cert.validity().not_after)
            ),
        );
    }

    // The chain to the trusted CA. Verified at a time inside the certificate's validity, so a chain
    // problem and a clock problem are told apart.
    if let Some(ca_path) = ca_path {
        match files.get(ca_path) {
            Err(e) => {
                errors += 1;
                r.error("certs", format!("trusted CA {e}"));
            }
            Ok((ca_name, ca_pem)) => {
                let cas: Vec<CertificateDer> = CertificateDer::pem_slice_iter(&ca_pem)
                    .filter_map(|c| c.ok())
                    .collect();
                let anchors: Vec<_> = cas
                    .iter()
                    .filter_map(|c| {
                        webpki::anchor_from_trusted_cert(c)
                            .ok()
                            .map(|a| a.to_owned())
                    })
                    .collect();
                if anchors.is_empty() {
                    errors += 1;
                    r.error("certs", format!("{ca_name} holds no usable CA certificate"));
                } else {
                    let at =
                        UnixTime::since_unix_epoch(Duration::from_secs((nb.max(0) as u64) + 1));
                    let ee = webpki::EndEntityCert::try_from(leaf_der);
                    let usage = if server_auth {
                        webpki::KeyUsage::server_auth()
                    } else {
                        webpki::KeyUsage::client_auth()
                    };
                    let res = ee.map_err(|e| format!("{e}")).and_then(|ee| {
                        ee.verify_for_usage(
                            webpki::ALL_VERIFICATION_ALGS,
                            &anchors,
                            &ders[1..],
                            at,
                            usage,
                            None,
                            None,
                        )
                        .map(|_| ())
                        .map_err(|e| format!("{e}"))
                    });
                    if let Err(e) = res {
                        errors += 1;
                        let ca_subject = cas
                            .first()
                            .and_then(|c| X509Certificate::from_der(c).ok())
                            .map(|(_, c)| c.subject().to_string())
                            .unwrap_or_default();
                        r.error(
                            "certs",
                            format!(
                                "{name} does not chain to the trusted CA {ca_name} ({e}): it was issued by \"{}\", \
                                 the CA is \"{ca_subject}\"",
                                cert.issuer()
                            ),
                        );
                    }
                }
            }
        }
    }

    // The key belongs to the certificate.
    if let Some(key_path) = key_path {
        match files.get(key_path) {
            Err(e) => {
                errors += 1;
                r.error("certs", format!("{role} key {e}"));
            }
            Ok((key_name, key_pem)) => match key_matches(&key_pem, cert.public_key().raw) {
                Ok(true) => {}
                Ok(false) => {
                    errors += 1;
                    r.error(
                        "certs",
                        format!("{key_name} is not the key of {name} (their public keys differ); install the matching pair"),
                    );
                }
                Err(e) => {
                    errors += 1;
                    r.error("certs", format!("{key_name}: {e}"));
                }
            },
        }
    }

    if errors == 0 {
        r.ok(
            "certs",
            format!(
                "{role} certificate {name}: {held_text}; chains to the CA; key matches; valid until {}",
                fmt_time(&cert.validity().not_after)
            ),
        );
    }
}

/// Whether the PEM private key's public half equals `spki` (DER SubjectPublicKeyInfo).
fn key_matches(key_pem: &[u8], spki: &[u8]) -> Result<bool, String> {
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("not a PEM private key ({e})"))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("unsupported private key ({e})"))?;
    match signing.public_key() {
        Some(pk) => Ok(pk.as_ref() == spki),
        None => Err("cannot derive the public key of this key type".into()),
    }
}

fn path_setting(cfg: &Config, key: &str) -> Option<PathBuf> {
    cfg.settings
        .get(key)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

pub fn check(r: &mut Report, cfg: &Config, root: &Path, now: SystemTime) {
    let listed: BTreeMap<String, Vec<u8>> = match crate::desired::certificates(cfg, root) {
        Ok(v) => v.into_iter().collect(),
        Err(e) => {
            r.error("certs", format!("{e:#}"));
            return;
        }
    };
    let files = Files { cfg, root, listed };
    let iface_why = format!("{} of {}", cfg.interface, cfg.this_member.name);

    let hosts = |keys: &[&str]| -> Vec<Need> {
        let mut needs: Vec<Need> = vec![Need {
            host: cfg.address.to_string(),
            why: iface_why.clone(),
        }];
        for key in keys {
            for u in urls(cfg, key) {
                if let Some((h, _)) = url_host_port(&u) {
                    let unspecified = h
                        .parse::<IpAddr>()
                        .map(|i| i.is_unspecified())
                        .unwrap_or(false);
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
    };
    let server_needs = hosts(&["advertise-client-urls", "listen-client-urls"]);
    let peer_needs = hosts(&["initial-advertise-peer-urls", "listen-peer-urls"]);

    match path_setting(cfg, "cert-file") {
        Some(cert) => check_pair(
            r,
            &files,
            "server",
            &cert,
            path_setting(cfg, "key-file").as_deref(),
            path_setting(cfg, "trusted-ca-file").as_deref(),
            &server_needs,
            false,
            now,
        ),
        None => r.warn(
            "certs",
            "cert-file is not set: clients talk to etcd without TLS",
        ),
    }
    match path_setting(cfg, "peer-cert-file") {
        Some(cert) => check_pair(
            r,
            &files,
            "peer",
            &cert,
            path_setting(cfg, "peer-key-file").as_deref(),
            path_setting(cfg, "peer-trusted-ca-file").as_deref(),
            &peer_needs,
            true,
            now,
        ),
        None => r.warn(
            "certs",
            "peer-cert-file is not set: members talk to each other without TLS",
        ),
    }

    // A CA private key on a node is a key to the whole cluster's trust.
    let ca_spki: Vec<Vec<u8>> = path_setting(cfg, "trusted-ca-file")
        .into_iter()
        .chain(path_setting(cfg, "peer-trusted-ca-file"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(fmt_unix(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_unix(1_795_000_000), "2026-11-18 11:06:40 UTC");
    }

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
