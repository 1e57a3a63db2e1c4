//! The desired state of the node: every dir, file, binary and the unit, with mode and owner.
//! Built from the resolved seed; compared and applied by `plan`.

use crate::fsutil;
use crate::release::unpack::StagedBinary;
use crate::render;
use crate::seed::Config;
use crate::users;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// An owner on the target system: root, or the seed's etcd user/group (resolved to ids at apply,
/// since the account may not exist yet when planning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Root,
    Named(String),
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Root => f.write_str("root"),
            Who::Named(n) => f.write_str(n),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub mode: u32,
    pub user: Who,
    pub group: Who,
}

#[derive(Debug, Clone)]
pub enum Content {
    Bytes(Vec<u8>),
    /// A binary from the verified, staged tarball.
    Staged(StagedBinary),
    /// A binary from a tarball not downloaded yet (only in `--dry-run`, which downloads nothing).
    Pending(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Certificate,
    Key,
    Binary,
    Unit,
    Config,
}

impl FileKind {
    /// etcd reads these: a changed one means a restart.
    pub fn etcd_reads(self) -> bool {
        matches!(
            self,
            FileKind::Certificate | FileKind::Key | FileKind::Binary | FileKind::Unit
        )
    }
    pub fn label(self) -> &'static str {
        match self {
            FileKind::Certificate => "cert",
            FileKind::Key => "key",
            FileKind::Binary => "binary",
            FileKind::Unit => "unit",
            FileKind::Config => "file",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Item {
    /// `enforce`: set mode and owner on an existing dir too. Off for shared dirs like /usr/local/bin.
    Dir {
        path: PathBuf,
        meta: Meta,
        enforce: bool,
    },
    File {
        path: PathBuf,
        meta: Meta,
        content: Content,
        kind: FileKind,
    },
}

impl Item {
    pub fn path(&self) -> &Path {
        match self {
            Item::Dir { path, .. } | Item::File { path, .. } => path,
        }
    }
}

fn is_private_key(name: &str, pem: &[u8]) -> bool {
    name.ends_with("-key.pem")
        || name.ends_with(".key")
        || pem.windows(11).any(|w| w == b"PRIVATE KEY")
}

/// Certificates from `etcd_certificate_data` (inline) or `etcd_ca_conf_directory` (files under the root).
pub fn certificates(cfg: &Config, root: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut names: Vec<String> = cfg.certificates.clone();
    for n in cfg.certificate_data.keys() {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    let src_dir = fsutil::under(root, &cfg.ca_conf_directory);
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

/// Every item, in the order apply creates them (dirs before what goes in them).
pub fn build(cfg: &Config, root: &Path, binaries: &[Content]) -> Result<Vec<Item>> {
    let group = if cfg.group == "root" {
        Who::Root
    } else {
        Who::Named(cfg.group.clone())
    };
    let user = if cfg.user == "root" {
        Who::Root
    } else {
        Who::Named(cfg.user.clone())
    };
    let root_meta = |mode| Meta {
        mode,
        user: Who::Root,
        group: Who::Root,
    };
    let mut items = vec![
        Item::Dir {
            path: cfg.conf_dir.clone(),
            meta: Meta {
                mode: 0o750,
                user: Who::Root,
                group: group.clone(),
            },
            enforce: true,
        },
        Item::Dir {
            path: cfg.data_dir.clone(),
            meta: Meta {
                mode: 0o700,
                user: user.clone(),
                group: group.clone(),
            },
            enforce: true,
        },
        Item::Dir {
            path: cfg.bin_dir.clone(),
            meta: root_meta(0o755),
            enforce: false,
        },
    ];
    if cfg.user != "root" {
        items.push(Item::File {
            path: PathBuf::from(users::SYSUSERS_PATH),
            meta: root_meta(0o644),
            content: Content::Bytes(
                users::sysusers_conf(&cfg.user, &cfg.group, &cfg.data_dir).into_bytes(),
            ),
            kind: FileKind::Config,
        });
    }
    let mut seen = BTreeSet::new();
    for (name, bytes) in certificates(cfg, root)? {
        let key = is_private_key(&name, &bytes);
        seen.insert(name.clone());
        items.push(Item::File {
            path: cfg.conf_dir.join(&name),
            meta: if key {
                Meta {
                    mode: 0o640,
                    user: Who::Root,
                    group: group.clone(),
                }
            } else {
                root_meta(0o644)
            },
            content: Content::Bytes(bytes),
            kind: if key {
                FileKind::Key
            } else {
                FileKind::Certificate
            },
        });
    }
    items.push(Item::File {
        path: cfg.conf_dir.join("etcdctl.env"),
        meta: root_meta(0o644),
        content: Content::Bytes(render::etcdctl_env(cfg).into_bytes()),
        kind: FileKind::Config,
    });
    for b in binaries {
        let name = match b {
            Content::Staged(s) => s.name.clone(),
            Content::Pending(n) => n.clone(),
            Content::Bytes(_) => continue,
        };
        items.push(Item::File {
            path: cfg.bin_dir.join(&name),
            meta: root_meta(0o755),
            content: b.clone(),
            kind: FileKind::Binary,
        });
    }
    items.push(Item::File {
        path: render::unit_path(cfg),
        meta: root_meta(0o644),
        content: Content::Bytes(render::unit(cfg).into_bytes()),
        kind: FileKind::Unit,
    });
    if let Some(b) = &cfg.backup {
        let (service, timer) = crate::snapshot::units(cfg, b);
        let (sname, tname) = crate::snapshot::unit_names(cfg);
        // Config, not Unit: etcd does not read these, so a change needs no etcd restart.
        for (name, text) in [(sname, service), (tname, timer)] {
            items.push(Item::File {
                path: PathBuf::from("/etc/systemd/system").join(name),
                meta: root_meta(0o644),
                content: Content::Bytes(text.into_bytes()),
                kind: FileKind::Config,
            });
        }
    }
    Ok(items)
}

/// The binaries to install, from the staged release.
pub fn staged_binaries(staged: &[StagedBinary]) -> Vec<Content> {
    staged.iter().cloned().map(Content::Staged).collect()
}

/// Reads an installed file's bytes when it is small enough to compare in memory.
pub fn read_small(path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() <= limit => Ok(Some(
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}
