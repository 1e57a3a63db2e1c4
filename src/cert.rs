//! X.509, read once for everyone: what a PEM certificate says (names, usages, validity, key), the
//! chain to a CA, whether a key is a certificate's, and when a certificate is to be renewed.
//! `preflight` checks with it, `pki` decides what to reissue, `status` tells what ends soon.

use crate::util::error::Error;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use std::net::IpAddr;
use std::time::Duration;
use x509_parser::prelude::*;

/// The one renewal threshold: a certificate with less left than this is to be renewed. `check`
/// and `status` warn from it on, and `pki` reissues from it on by default.
pub const RENEW_WITHIN: Duration = Duration::from_secs(30 * 86400);
/// The same, as `pki --renew-before` takes it.
pub const RENEW_WITHIN_TEXT: &str = "30days";

/// What one certificate says, owned (no borrow of its DER).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    pub ips: Vec<IpAddr>,
    pub dns: Vec<String>,
    /// Seconds since the epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// What its extended key usage allows (both when it has none).
    pub server_auth: bool,
    pub client_auth: bool,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    pub subject: String,
    pub issuer: String,
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
}

impl Info {
    /// Every SAN, as text (IPs first).
    pub fn sans(&self) -> Vec<String> {
        self.ips
            .iter()
            .map(|i| i.to_string())
            .chain(self.dns.iter().cloned())
            .collect()
    }

    pub fn covers(&self, host: &str) -> bool {
        covers(&self.ips, &self.dns, host)
    }

    /// Where it stands at `now` (seconds).
    pub fn expiry(&self, now: i64) -> Expiry {
        if now < self.not_before {
            Expiry::NotYet
        } else {
            expiry(self.not_after, now)
        }
    }
}

/// Where a certificate ending at `not_after` stands at `now` (seconds), by `RENEW_WITHIN`.
pub fn expiry(not_after: i64, now: i64) -> Expiry {
    if now >= not_after {
        Expiry::Expired
    } else if not_after - now < RENEW_WITHIN.as_secs() as i64 {
        Expiry::Soon {
            days: (not_after - now).div_euclid(86400),
        }
    } else {
        Expiry::Fine
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    NotYet,
    Expired,
    /// Within `RENEW_WITHIN`: whole days left.
    Soon {
        days: i64,
    },
    Fine,
}

/// Every certificate in a PEM text, in order (a leaf, then its intermediates).
pub fn ders(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem)
        .filter_map(|c| c.ok())
        .collect()
}

/// What the DER certificate says.
pub fn info(der: &CertificateDer) -> Result<Info, Error> {
    let (_, c) = X509Certificate::from_der(der)
        .map_err(|e| Error::other(format!("is not a valid X.509 certificate: {e}")))?;
    let (ips, dns) = sans(&c);
    let (server_auth, client_auth) = match c.extended_key_usage() {
        Ok(Some(eku)) => (
            eku.value.server_auth || eku.value.any,
            eku.value.client_auth || eku.value.any,
        ),
        _ => (true, true),
    };
    Ok(Info {
        ips,
        dns,
        not_before: c.validity().not_before.timestamp(),
        not_after: c.validity().not_after.timestamp(),
        server_auth,
        client_auth,
        is_ca: c.is_ca(),
        subject: c.subject().to_string(),
        issuer: c.issuer().to_string(),
        spki: c.public_key().raw.to_vec(),
    })
}

/// The first certificate of a PEM text: what it says, and the DER chain as written.
pub fn first(pem: &[u8]) -> Result<(Info, Vec<CertificateDer<'static>>), Error> {
    let chain = ders(pem);
    let leaf = chain
        .first()
        .ok_or_else(|| Error::other("holds no PEM certificate"))?;
    Ok((info(leaf)?, chain))
}

/// The earliest end among the certificates of a PEM text: a bundle is good only while all are.
pub fn not_after(pem: &[u8]) -> Result<i64, Error> {
    let all = ders(pem);
    if all.is_empty() {
        return Err(Error::other("holds no PEM certificate"));
    }
    all.iter()
        .map(|d| info(d).map(|i| i.not_after))
        .try_fold(i64::MAX, |m, t| t.map(|t| m.min(t)))
}

/// The one warning for a certificate that ends soon, the same in `check` and `status`.
pub fn ends_soon(name: &str, not_after: i64, days: i64) -> String {
    format!(
        "{name} expires on {}, in {days} days: renew it (etcd-bootstrap pki, then apply)",
        crate::util::time::utc(not_after)
    )
}

fn sans(cert: &X509Certificate) -> (Vec<IpAddr>, Vec<String>) {
    let mut ips = Vec::new();
    let mut dns = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for g in &san.value.general_names {
            match g {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())),
                    16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    (ips, dns)
}

/// Whether the names cover `host` as a TLS client checks it (one wildcard label at most).
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

/// Whether `cas` holds at least one certificate usable as a trust anchor.
pub fn has_anchor(cas: &[CertificateDer]) -> bool {
    cas.iter()
        .any(|c| webpki::anchor_from_trusted_cert(c).is_ok())
}

/// Whether `leaf` (with `intermediates`) chains to one of `cas` for the given usage, checked at a
/// moment just after `not_before` (seconds): a chain problem is told apart from a clock problem.
pub fn verify_chain(
    leaf: &CertificateDer,
    intermediates: &[CertificateDer],
    cas: &[CertificateDer],
    not_before: i64,
    server_auth: bool,
) -> Result<(), Error> {
    let anchors: Vec<_> = cas
        .iter()
        .filter_map(|c| {
            webpki::anchor_from_trusted_cert(c)
                .ok()
                .map(|a| a.to_owned())
        })
        .collect();
    if anchors.is_empty() {
        return Err(Error::other("no usable CA certificate"));
    }
    let at = UnixTime::since_unix_epoch(Duration::from_secs((not_before.max(0) as u64) + 1));
    let usage = if server_auth {
        webpki::KeyUsage::server_auth()
    } else {
        webpki::KeyUsage::client_auth()
    };
    let ee = webpki::EndEntityCert::try_from(leaf).map_err(|e| Error::other(format!("{e}")))?;
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
    .map_err(|e| Error::other(format!("{e}")))
}

/// Whether the PEM private key's public half equals `spki` (DER SubjectPublicKeyInfo).
pub fn key_matches(key_pem: &[u8], spki: &[u8]) -> Result<bool, Error> {
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| Error::other(format!("not a PEM private key ({e})")))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| Error::other(format!("unsupported private key ({e})")))?;
    match signing.public_key() {
        Some(pk) => Ok(pk.as_ref() == spki),
        None => Err(Error::other(
            "cannot derive the public key of this key type",
        )),
    }
}

/// The subject of the first usable certificate of a CA bundle, for messages.
pub fn subject_of(cas: &[CertificateDer]) -> String {
    cas.first()
        .and_then(|c| info(c).ok())
        .map(|i| i.subject)
        .unwrap_or_default()
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

    #[test]
    fn one_threshold_decides_what_ends_soon() {
        let day = 86400;
        let i = Info {
            ips: vec![],
            dns: vec![],
            not_before: 0,
            not_after: 100 * day,
            server_auth: true,
            client_auth: true,
            is_ca: false,
            subject: String::new(),
            issuer: String::new(),
            spki: vec![],
        };
        assert_eq!(i.expiry(-1), Expiry::NotYet);
        assert_eq!(i.expiry(10 * day), Expiry::Fine);
        assert_eq!(i.expiry(70 * day + 1), Expiry::Soon { days: 29 });
        assert_eq!(i.expiry(80 * day), Expiry::Soon { days: 20 });
        assert_eq!(i.expiry(100 * day), Expiry::Expired);
        assert_eq!(
            RENEW_WITHIN_TEXT
                .parse::<humantime::Duration>()
                .unwrap()
                .as_secs(),
            RENEW_WITHIN.as_secs()
        );
    }

    #[test]
    fn what_is_not_pem_says_so() {
        assert!(first(b"not pem").is_err());
        assert!(not_after(b"").is_err());
        assert!(key_matches(b"nope", b"").is_err());
        assert!(!has_anchor(&[]));
    }
}
