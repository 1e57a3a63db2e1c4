//! Certificates, read as X.509 before etcd ever sees them: coverage of every address clients and
//! peers use, the chain to the trusted CA, key/certificate pairing, key usages, validity, and no CA
//! private key on the node. The X.509 reading itself is `crate::cert`.

use crate::cert::{self, Expiry, Info};
use crate::seed::{certificates, url_host_port, Config};
use crate::util::report::Report;
use crate::util::time;
use rustls_pki_types::CertificateDer;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

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
    fn get(&self, target: &Path) -> Result<(String, Vec<u8>), crate::util::error::Error> {
        certificates::installed_or_listed(self.cfg, self.root, &self.listed, target)
    }
}

/// The DNS names in the subject alternative names of the certificate a setting names, as it will
/// be installed (e.g. `peer-cert-file`).
pub fn dns_names(
    cfg: &Config,
    root: &Path,
    setting: &str,
) -> anyhow::Result<(String, Vec<String>)> {
    use anyhow::Context;
    let listed = certificates::read(cfg, root)?;
    let path = cfg
        .path_setting(setting)
        .with_context(|| format!("{setting} is not set"))?;
    let (name, pem) = certificates::installed_or_listed(cfg, root, &listed, &path)?;
    let (info, _) = cert::first(&pem).with_context(|| name.clone())?;
    Ok((name, info.dns))
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
    fn coverage(&mut self, cert: &Info) -> String {
        let held = cert.sans();
        let held_text = if held.is_empty() {
            "it has no subject alternative names (the CN is not used by etcd's TLS)".to_string()
        } else {
            format!("it covers {}", held.join(", "))
        };
        for n in &self.role.needs {
            if !cert.covers(&n.host) {
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
    fn usages(&mut self, cert: &Info) -> bool {
        let name = self.name.clone();
        if !cert.server_auth {
            self.error(format!(
                "{name} does not allow serverAuth (extended key usage); the {} certificate must",
                self.role.role
            ));
        }
        if self.role.client_auth && !cert.client_auth {
            self.error(format!(
                "{name} does not allow clientAuth (extended key usage); etcd peers connect to each other as clients too"
            ));
        }
        cert.server_auth
    }

    /// Validity, with the clock in mind: at first boot before NTP the clock may be far behind.
    /// Ending within `cert::RENEW_WITHIN` is a warning, as in `status`.
    fn validity(&mut self, cert: &Info) {
        let (now, name) = (self.files.now, self.name.clone());
        match cert.expiry(now) {
            Expiry::NotYet => self.error(format!(
                "{name} is not valid yet: valid from {}, but this machine's clock says {}; if the clock is wrong \
                 (first boot before NTP) order etcd-bootstrap after time-sync.target, else reissue the certificate",
                time::utc(cert.not_before),
                time::utc(now)
            )),
            Expiry::Expired => self.error(format!(
                "{name} expired on {}; reissue it",
                time::utc(cert.not_after)
            )),
            Expiry::Soon { days } => self
                .r
                .warn("certs", cert::ends_soon(&name, cert.not_after, days)),
            Expiry::Fine => {}
        }
    }

    /// The chain to the trusted CA, verified at a time inside the certificate's validity, so a
    /// chain problem and a clock problem are told apart.
    fn chain(&mut self, cert: &Info, ders: &[CertificateDer], server_auth: bool) {
        let Some(ca_path) = &self.role.ca else {
            return;
        };
        let (ca_name, ca_pem) = match self.files.get(ca_path) {
            Ok(x) => x,
            Err(e) => return self.error(format!("trusted CA {e}")),
        };
        let cas = cert::ders(&ca_pem);
        if !cert::has_anchor(&cas) {
            return self.error(format!("{ca_name} holds no usable CA certificate"));
        }
        if let Err(e) = cert::verify_chain(&ders[0], &ders[1..], &cas, cert.not_before, server_auth)
        {
            self.error(format!(
                "{} does not chain to the trusted CA {ca_name} ({e}): it was issued by \"{}\", the CA is \"{}\"",
                self.name,
                cert.issuer,
                cert::subject_of(&cas)
            ));
        }
    }

    /// The key belongs to the certificate.
    fn key(&mut self, cert: &Info) {
        let Some(key_path) = &self.role.key else {
            return;
        };
        match self.files.get(key_path) {
            Err(e) => self.error(format!("{} key {e}", self.role.role)),
            Ok((key_name, key_pem)) => match cert::key_matches(&key_pem, &cert.spki) {
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
    let (cert, ders) = match cert::first(&pem) {
        Ok(x) => x,
        Err(e) => return r.error("certs", format!("{name} {e}")),
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
                time::utc(cert.not_after)
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
        .flat_map(|(_, pem)| cert::ders(&pem))
        .filter_map(|der| cert::info(&der).ok().map(|i| i.spki))
        .collect();
    for (name, bytes) in &files.listed {
        let is_ca_key = ca_spki
            .iter()
            .any(|spki| cert::key_matches(bytes, spki).unwrap_or(false))
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
