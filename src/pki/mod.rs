//! `etcd-bootstrap pki`: the cluster's certificates, made from the cluster file and correct by
//! construction — every member's server and peer certificate covering every address and name its
//! settings use, one client certificate, one CA. Running it again keeps what is still right and
//! reissues the rest, saying why.

pub mod issue;
pub mod spec;

use crate::seed::Seed;
use crate::util::fs;
use anyhow::{bail, Context, Result};
use issue::{Ca, KeyType};
use spec::Leaf;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const CA_CERT: &str = "ca-etcd.pem";
pub const CA_KEY: &str = "ca-etcd-key.pem";
pub const CLIENT_DIR: &str = "client";

pub struct Options {
    pub out: PathBuf,
    pub ca_cert: Option<PathBuf>,
    pub ca_key: Option<PathBuf>,
    pub key_type: KeyType,
    /// Validity of the certificates issued to members and the client.
    pub days: u32,
    pub ca_days: u32,
    /// A certificate with less than this left is reissued.
    pub renew_before: Duration,
    /// Seconds since the epoch.
    pub now: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    Keep,
    Renew(String),
    /// A member no longer in the seed: its files are left as they are.
    Leave,
}

/// What one entry of the plan is about.
#[derive(Debug, Clone)]
enum Thing {
    NewCa,
    /// A copy of the CA certificate (the root's, a member's, the client's).
    CaCopy,
    Leaf {
        leaf: Leaf,
        key: PathBuf,
    },
    Member,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub action: Action,
    pub label: &'static str,
    pub path: PathBuf,
    thing: Thing,
}

pub struct Plan {
    pub entries: Vec<Entry>,
    ca: Option<Ca>,
    opts_key_type: KeyType,
    days: u32,
    ca_days: u32,
    now: i64,
}

fn read_opt(p: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(p) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

/// The CA to use: given with --ca-cert/--ca-key, else the one in the out dir, else none yet
/// (a new one is made).
fn existing_ca(o: &Options) -> Result<Option<Ca>> {
    let (cert, key) = match (&o.ca_cert, &o.ca_key) {
        (Some(c), k) => (c.clone(), k.clone()),
        (None, Some(_)) => bail!(crate::util::error::invalid(
            "--ca-key needs --ca-cert: the CA certificate it belongs to"
        )),
        (None, None) => (o.out.join(CA_CERT), Some(o.out.join(CA_KEY))),
    };
    let Some(cert_pem) = read_opt(&cert)? else {
        if o.ca_cert.is_some() {
            bail!("--ca-cert {} does not exist", cert.display());
        }
        return Ok(None);
    };
    let key_pem = match &key {
        Some(k) => read_opt(k)?,
        None => None,
    };
    let shown = match &key {
        Some(k) if key_pem.is_some() => format!("{} with {}", cert.display(), k.display()),
        _ => cert.display().to_string(),
    };
    match Ca::load(&cert_pem, key_pem.as_deref()) {
        Ok(ca) => Ok(Some(ca)),
        // Files given on the command line that are no CA, or not a pair: the command line is wrong.
        Err(e) if o.ca_cert.is_some() => Err(crate::util::error::invalid(format!(
            "the CA {shown}: {e:#}"
        ))),
        Err(e) => Err(e.context(format!("the CA {shown}"))),
    }
}

impl Plan {
    fn push(&mut self, action: Action, label: &'static str, path: PathBuf, thing: Thing) {
        self.entries.push(Entry {
            action,
            label,
            path,
            thing,
        });
    }

    /// A copy of the CA certificate at `path`.
    fn ca_copy(&mut self, path: PathBuf, ca_pem: Option<&str>) -> Result<()> {
        let action = match (read_opt(&path)?, ca_pem) {
            (None, _) => Action::Create,
            (Some(have), Some(want)) if have == want => Action::Keep,
            (Some(_), Some(_)) => Action::Renew("the CA is another one".into()),
            (Some(_), None) => Action::Renew("a new CA is made".into()),
        };
        self.push(action, "ca", path, Thing::CaCopy);
        Ok(())
    }

    /// A certificate and its key at `cert`/`key`, issued for `leaf`.
    fn leaf(
        &mut self,
        o: &Options,
        label: &'static str,
        cert: PathBuf,
        key: PathBuf,
        leaf: &Leaf,
    ) -> Result<()> {
        let action = match (read_opt(&cert)?, &self.ca) {
            (None, _) => Action::Create,
            (Some(_), None) => Action::Renew("a new CA is made".into()),
            (Some(pem), Some(ca)) => {
                let key_pem = read_opt(&key)?;
                let why = ca.why_reissue(
                    pem.as_bytes(),
                    key_pem.as_deref().map(str::as_bytes),
                    leaf,
                    o.now,
                    o.renew_before,
                );
                match why {
                    None => Action::Keep,
                    Some(w) => Action::Renew(w),
                }
            }
        };
        self.push(
            action,
            label,
            cert,
            Thing::Leaf {
                leaf: leaf.clone(),
                key,
            },
        );
        Ok(())
    }

    /// One line per entry: action, what, path, and why or what it covers.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
            let (action, detail) = match (&e.action, &e.thing) {
                (Action::Create, Thing::Leaf { leaf, .. }) if leaf.sans().is_empty() => {
                    ("create", " (clientAuth only)".to_string())
                }
                (Action::Create, Thing::Leaf { leaf, .. }) => {
                    ("create", format!(" (covers {})", leaf.sans().join(", ")))
                }
                (Action::Create, _) => ("create", String::new()),
                (Action::Keep, _) => ("keep", String::new()),
                (Action::Renew(why), _) => ("renew", format!(": {why}")),
                (Action::Leave, _) => (
                    "leave",
                    " (not in etcd_members; its certificates are left as they are)".into(),
                ),
            };
            out.push_str(&format!(
                "{action:<8} {:<7} {}{detail}\n",
                e.label,
                e.path.display()
            ));
        }
        out
    }

    /// Each member's CA copies, server and peer certificates, in its own dir under --out.
    fn members(
        &mut self,
        o: &Options,
        spec: &spec::ClusterSpec,
        ca_pem: Option<&str>,
    ) -> Result<()> {
        for m in &spec.members {
            // Every path made from a name stays in its dir: the member's in --out, its files in it.
            let dir = fs::child(&o.out, &m.name, &format!("member {}", m.name))?;
            let file = |setting: &str, name: &str| {
                fs::child(
                    &dir,
                    name,
                    &format!("the file name of {setting} (member {})", m.name),
                )
            };
            for name in &m.files.cas {
                self.ca_copy(file("trusted-ca-file", name)?, ca_pem)?;
            }
            let (sc, sk) = &m.files.server;
            self.leaf(
                o,
                "server",
                file("cert-file", sc)?,
                file("key-file", sk)?,
                &m.server,
            )?;
            let (pc, pk) = &m.files.peer;
            self.leaf(
                o,
                "peer",
                file("peer-cert-file", pc)?,
                file("peer-key-file", pk)?,
                &m.peer,
            )?;
        }
        Ok(())
    }

    pub fn changes(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.action, Action::Create | Action::Renew(_)))
            .count()
    }
}

/// The out dir holds the CA key: it must be this user's (or root's) and writable by no one else,
/// as must every dir above it, or someone else's CA could be found there and kept.
fn out_dir_is_private(out: &Path) -> Result<()> {
    if out.exists() {
        fs::private_dir(Path::new("/"), &absolute(out)?, 0o700)
            .with_context(|| format!("--out {}", out.display()))?;
    }
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))
}

/// A CA key others can read is a warning: whoever reads it can issue certificates the cluster trusts.
fn warn_if_readable(key: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(md) = std::fs::metadata(key) {
        let mode = md.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            log::warn!(
                "the CA key {} is readable by other users (mode {mode:04o}): anyone who reads it can \
                 issue certificates the cluster trusts; chmod 0600 {}",
                key.display(),
                key.display()
            );
        }
    }
}

/// Decides, for every certificate the seed's members need, whether to create, keep or renew it.
pub fn plan(seed: &Seed, o: &Options) -> Result<Plan> {
    let spec = spec::from_seed(seed)?;
    out_dir_is_private(&o.out)?;
    let ca = existing_ca(o)?;
    if ca.as_ref().is_some_and(|c| c.has_key()) {
        warn_if_readable(o.ca_key.as_deref().unwrap_or(&o.out.join(CA_KEY)));
    }
    let mut p = Plan {
        entries: vec![],
        opts_key_type: o.key_type,
        days: o.days,
        ca_days: o.ca_days,
        now: o.now,
        ca: None,
    };
    let ca_pem = ca.as_ref().map(|c| c.pem.clone());
    match (&ca, &o.ca_cert) {
        (None, _) => p.push(Action::Create, "ca", o.out.join(CA_CERT), Thing::NewCa),
        (Some(_), Some(_)) => p.ca_copy(o.out.join(CA_CERT), ca_pem.as_deref())?,
        (Some(_), None) => p.push(Action::Keep, "ca", o.out.join(CA_CERT), Thing::CaCopy),
    }
    p.ca = ca;
    p.members(o, &spec, ca_pem.as_deref())?;
    let client = o.out.join(CLIENT_DIR);
    p.ca_copy(client.join(CA_CERT), ca_pem.as_deref())?;
    let (cc, ck) = &spec.client_files;
    let client_file = |name: &str| fs::child(&client, name, "the client certificate's file name");
    p.leaf(
        o,
        "client",
        client_file(cc)?,
        client_file(ck)?,
        &spec.client,
    )?;
    for name in fs::entries(&o.out) {
        let path = o.out.join(&name);
        let known = name == CLIENT_DIR || spec.members.iter().any(|m| m.name == name);
        if path.is_dir() && !known && !name.starts_with('.') {
            p.push(Action::Leave, "member", path, Thing::Member);
        }
    }
    let issuing = p.entries.iter().any(|e| {
        matches!(e.thing, Thing::Leaf { .. })
            && matches!(e.action, Action::Create | Action::Renew(_))
    });
    if issuing && p.ca.as_ref().is_some_and(|c| !c.has_key()) {
        bail!(
            "certificates must be issued ({} change(s)), but the CA key is not at hand: give it with --ca-key",
            p.changes()
        );
    }
    Ok(p)
}

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    let dir = path.parent().context("no parent dir")?;
    create_private_dir(dir)?;
    fs::write_atomic(path, mode, fs::Ids::current(), &mut text.as_bytes())?;
    Ok(())
}

/// A dir that holds keys: made readable by its owner alone.
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

impl Plan {
    /// Writes every created or renewed file, each atomically; keys 0600, and the CA key is written
    /// only beside the CA certificate, never into a member's dir.
    pub fn apply(&mut self) -> Result<()> {
        let (kt, now) = (self.opts_key_type, self.now);
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| matches!(e.thing, Thing::NewCa))
        {
            let (pem, key) = issue::new_ca(kt, now, self.ca_days)?;
            let ca = Ca::from_new(pem, key)?;
            let key_path = e.path.with_file_name(CA_KEY);
            write(&key_path, &ca.key_pem().unwrap_or_default(), 0o600)?;
            write(&e.path, &ca.pem, 0o644)?;
            self.ca = Some(ca);
        }
        let ca = self.ca.as_ref().context("no CA")?;
        for e in &self.entries {
            if !matches!(e.action, Action::Create | Action::Renew(_)) {
                continue;
            }
            match &e.thing {
                Thing::CaCopy => write(&e.path, &ca.pem, 0o644)?,
                Thing::Leaf { leaf, key } => {
                    let (cert_pem, key_pem) = ca.issue(leaf, kt, now, self.days)?;
                    write(key, &key_pem, 0o600)?;
                    write(&e.path, &cert_pem, 0o644)?;
                }
                Thing::NewCa | Thing::Member => {}
            }
        }
        Ok(())
    }
}
