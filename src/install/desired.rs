//! The desired state of the node: every dir, file, binary and the unit, with mode and owner.
//! Built from the resolved seed; compared and applied by `plan`.

use crate::host::users;
use crate::release::archive::StagedBinary;
use crate::render;
use crate::seed::{certificates, Config};
use anyhow::Result;
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

impl Meta {
    pub fn root(mode: u32) -> Meta {
        Meta {
            mode,
            user: Who::Root,
            group: Who::Root,
        }
    }
}

impl Who {
    fn named(name: &str) -> Who {
        if name == "root" {
            Who::Root
        } else {
            Who::Named(name.to_string())
        }
    }
}

/// A file of text.
pub fn file(path: PathBuf, meta: Meta, text: String, kind: FileKind) -> Item {
    Item::File {
        path,
        meta,
        content: Content::Bytes(text.into_bytes()),
        kind,
    }
}

/// The binaries to install: the ones staged from the verified release, or (a dry run, which
/// downloads nothing, without a verified cached release) not known yet.
#[derive(Debug, Clone, Copy)]
pub enum Binaries<'a> {
    Staged(&'a [StagedBinary]),
    Pending,
}

impl Binaries<'_> {
    fn contents(&self) -> Vec<Content> {
        match self {
            Binaries::Staged(s) => s.iter().cloned().map(Content::Staged).collect(),
            Binaries::Pending => ["etcd", "etcdctl"]
                .iter()
                .map(|n| Content::Pending(n.to_string()))
                .collect(),
        }
    }
}

/// Every item, in the order apply creates them (dirs before what goes in them); `features`: the
/// files the day-2 features ask for (`day2::Step::files`), last.
pub fn build(
    cfg: &Config,
    root: &Path,
    binaries: Binaries,
    features: Vec<Item>,
) -> Result<Vec<Item>> {
    let (user, group) = (Who::named(&cfg.user), Who::named(&cfg.group));
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
                user,
                group: group.clone(),
            },
            enforce: true,
        },
        // A shared dir like /usr/local/bin: written into, never chowned.
        Item::Dir {
            path: cfg.bin_dir.clone(),
            meta: Meta::root(0o755),
            enforce: false,
        },
    ];
    if cfg.user != "root" {
        let conf = users::sysusers_conf(&cfg.user, &cfg.group, &cfg.data_dir);
        items.push(file(
            PathBuf::from(users::SYSUSERS_PATH),
            Meta::root(0o644),
            conf,
            FileKind::Config,
        ));
    }
    items.extend(certificate_items(cfg, root, &group)?);
    items.push(file(
        cfg.conf_dir.join("etcdctl.env"),
        Meta::root(0o644),
        render::etcdctl_env(cfg),
        FileKind::Config,
    ));
    for b in binaries.contents() {
        let name = match &b {
            Content::Staged(s) => s.name.clone(),
            Content::Pending(n) => n.clone(),
            Content::Bytes(_) => continue,
        };
        items.push(Item::File {
            path: cfg.bin_dir.join(&name),
            meta: Meta::root(0o755),
            content: b,
            kind: FileKind::Binary,
        });
    }
    items.push(file(
        cfg.unit_path(),
        Meta::root(0o644),
        render::unit(cfg),
        FileKind::Unit,
    ));
    items.extend(features);
    Ok(items)
}

/// The certificates and keys, into the conf dir: keys readable by the etcd group only.
fn certificate_items(cfg: &Config, root: &Path, group: &Who) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    for (name, bytes) in certificates::read(cfg, root)? {
        let key = certificates::is_private_key(&name, &bytes);
        let (meta, kind) = if key {
            let meta = Meta {
                mode: 0o640,
                user: Who::Root,
                group: group.clone(),
            };
            (meta, FileKind::Key)
        } else {
            (Meta::root(0o644), FileKind::Certificate)
        };
        items.push(Item::File {
            path: cfg.conf_dir.join(&name),
            meta,
            content: Content::Bytes(bytes),
            kind,
        });
    }
    Ok(items)
}
