//! Making keys and certificates (rcgen), and judging an existing certificate against what it must be.

use super::spec::Leaf;
use crate::cert;
use crate::util::time;
use anyhow::{anyhow, bail, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::time::Duration;

/// The key types etcd (Go's TLS) accepts, and this tool can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    EcdsaP256,
    Rsa2048,
    Ed25519,
}

pub fn new_key(kt: KeyType) -> Result<KeyPair> {
    match kt {
        KeyType::EcdsaP256 => Ok(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?),
        KeyType::Ed25519 => Ok(KeyPair::generate_for(&rcgen::PKCS_ED25519)?),
        KeyType::Rsa2048 => {
            // ring signs with RSA keys but cannot make them: the rsa crate makes the key.
            use rsa::pkcs8::EncodePrivateKey;
            let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048)
                .context("making an RSA key")?;
            let der = key.to_pkcs8_der().context("encoding the RSA key")?;
            let der = rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_bytes().to_vec());
            Ok(KeyPair::from_pkcs8_der_and_sign_algo(
                &der,
                &rcgen::PKCS_RSA_SHA256,
            )?)
        }
    }
}

fn serial() -> SerialNumber {
    use rand_core::RngCore;
    let mut b = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut b);
    b[0] &= 0x7f;
    SerialNumber::from_slice(&b)
}

fn validity(p: &mut CertificateParams, now: i64, days: u32) {
    // A few minutes back: a node whose clock is a little behind still accepts it.
    let from = ::time::OffsetDateTime::from_unix_timestamp(now - 300)
        .unwrap_or(::time::OffsetDateTime::UNIX_EPOCH);
    p.not_before = from;
    p.not_after = from + ::time::Duration::days(i64::from(days));
}

/// A new self-signed CA: (certificate PEM, key).
pub fn new_ca(kt: KeyType, now: i64, days: u32) -> Result<(String, KeyPair)> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "etcd-bootstrap CA");
    p.distinguished_name = dn;
    p.serial_number = Some(serial());
    validity(&mut p, now, days);
    let key = new_key(kt)?;
    let cert = p.self_signed(&key)?;
    Ok((cert.pem(), key))
}

/// The CA to sign with: its certificate and key, checked to belong together.
pub struct Ca {
    pub pem: String,
    pub der: CertificateDer<'static>,
    key: Option<KeyPair>,
}

impl Ca {
    pub fn load(cert_pem: &str, key_pem: Option<&str>) -> Result<Ca> {
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .context("not a PEM certificate")?
            .into_owned();
        let x = cert::info(&der)?;
        if !x.is_ca {
            bail!("it is not a CA certificate (basicConstraints CA:FALSE)");
        }
        let key = match key_pem {
            None => None,
            Some(k) => {
                if !cert::key_matches(k.as_bytes(), &x.spki)? {
                    bail!(
                        "the CA key does not match the CA certificate (their public keys differ)"
                    );
                }
                Some(KeyPair::from_pem(k).context("reading the CA key")?)
            }
        };
        Ok(Ca {
            pem: cert_pem.to_string(),
            der,
            key,
        })
    }

    pub fn from_new(pem: String, key: KeyPair) -> Result<Ca> {
        let key_pem = key.serialize_pem();
        Ca::load(&pem, Some(&key_pem))
    }

    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    pub fn key_pem(&self) -> Option<String> {
        self.key.as_ref().map(|k| k.serialize_pem())
    }

    /// Issues `leaf`: (certificate PEM, key PEM).
    pub fn issue(&self, leaf: &Leaf, kt: KeyType, now: i64, days: u32) -> Result<(String, String)> {
        let ca_key = self.key.as_ref().ok_or_else(|| {
            anyhow!(
                "a certificate must be issued but the CA key is not at hand: give it with --ca-key"
            )
        })?;
        let mut p = CertificateParams::new(leaf.sans())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, leaf.cn.as_str());
        p.distinguished_name = dn;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if kt == KeyType::Rsa2048 {
            p.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        if leaf.server_auth {
            p.extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if leaf.client_auth {
            p.extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        p.serial_number = Some(serial());
        p.use_authority_key_identifier_extension = true;
        validity(&mut p, now, days);
        let issuer = Issuer::from_ca_cert_der(&self.der, ca_key)?;
        let key = new_key(kt)?;
        let cert = p.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Why an existing certificate (with its key) must be issued again, or None when it may stay.
    pub fn why_reissue(
        &self,
        cert_pem: &[u8],
        key_pem: Option<&[u8]>,
        leaf: &Leaf,
        now: i64,
        renew_before: Duration,
    ) -> Option<String> {
        let (info, chain) = match cert::first(cert_pem) {
            Ok(x) => x,
            Err(e) => return Some(format!("it {e}")),
        };
        if let Err(e) = cert::verify_chain(
            &chain[0],
            &[],
            std::slice::from_ref(&self.der),
            info.not_before,
            leaf.server_auth,
        ) {
            return Some(format!("it is not issued by this CA for its use ({e})"));
        }
        if let Some(missing) = leaf.sans().iter().find(|h| !info.covers(h)) {
            return Some(format!("it does not cover {missing}"));
        }
        if (leaf.server_auth && !info.server_auth) || (leaf.client_auth && !info.client_auth) {
            return Some(
                "its extended key usages are not serverAuth and clientAuth as needed".into(),
            );
        }
        if info.not_after - now <= renew_before.as_secs() as i64 {
            return Some(format!(
                "it expires on {} (less than {} left)",
                time::utc(info.not_after),
                time::format_duration(renew_before)
            ));
        }
        match key_pem.map(|k| cert::key_matches(k, &info.spki)) {
            None => Some("its key is missing".into()),
            Some(Ok(true)) => None,
            Some(Ok(false)) => Some("its key does not match it".into()),
            Some(Err(e)) => Some(format!("its key is unreadable ({e})")),
        }
    }
}

/// When a certificate expires, for messages.
pub fn not_after(cert_pem: &str) -> String {
    cert::not_after(cert_pem.as_bytes())
        .map(time::utc)
        .unwrap_or_default()
}
