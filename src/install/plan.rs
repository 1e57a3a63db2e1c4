//! Desired items -> changes (create / update / unchanged) against the target root, and applying them
//! atomically. A second run with the same seed plans nothing.

use super::desired::{Content, FileKind, Item, Meta, Who};
use crate::host::users;
use crate::state::digests::Digests;
use crate::util::fs as fsutil;
use anyhow::{bail, Context, Result};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// What etcd reads that a plan changes: each a reason to restart it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtcdChange {
    Certificates,
    Binary,
    Unit,
}

impl std::fmt::Display for EtcdChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EtcdChange::Certificates => "certificates",
            EtcdChange::Binary => "binary",
            EtcdChange::Unit => "unit",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    /// What differs: content and/or mode/owner.
    Update {
        content: bool,
        meta: bool,
    },
    Unchanged,
}

#[derive(Debug, Clone)]
pub struct Change {
    pub item: Item,
    pub action: Action,
    /// For display: what differs, in words.
    pub why: String,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub changes: Vec<Change>,
}

pub(super) fn resolve(root: &Path, who: &Who, group: bool) -> Result<Option<u32>> {
    match who {
        Who::Root => Ok(Some(0)),
        Who::Named(n) if group => users::gid(root, n),
        Who::Named(n) => users::uid(root, n),
    }
}

/// What differs in mode/owner, in words; empty when nothing does.
fn meta_diff(root: &Path, md: &fs::Metadata, want: &Meta) -> Result<String> {
    let mut why = Vec::new();
    let mode = md.permissions().mode() & 0o7777;
    if mode != want.mode {
        why.push(format!("mode {mode:04o} -> {:04o}", want.mode));
    }
    let uid = resolve(root, &want.user, false)?;
    let gid = resolve(root, &want.group, true)?;
    if uid != Some(md.uid()) || gid != Some(md.gid()) {
        why.push(format!("owner -> {}:{}", want.user, want.group));
    }
    Ok(why.join(", "))
}

fn same_content(path: &Path, content: &Content, digests: &Digests) -> Result<bool> {
    match content {
        Content::Bytes(b) => {
            Ok(fsutil::read_small(path, b.len() as u64)?.as_deref() == Some(&b[..]))
        }
        Content::Staged(s) => {
            let md = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
            if md.len() != s.size {
                return Ok(false);
            }
            Ok(digests.sha256(path)?.map(|(d, _)| d) == Some(s.sha256))
        }
        Content::Pending(_) => Ok(false),
    }
}

pub fn diff(root: &Path, items: Vec<Item>, digests: &Digests) -> Result<Plan> {
    let mut changes = Vec::new();
    for item in items {
        let at = fsutil::under_for_write(root, item.path());
        let md = match fs::symlink_metadata(&at) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("inspecting {}", at.display())),
        };
        let (action, why) = match (&item, md) {
            (_, None) => (Action::Create, String::new()),
            (Item::Dir { meta, enforce, .. }, Some(md)) => {
                if !md.is_dir() {
                    bail!(
                        "{} should be a directory but is not; move it away and run again",
                        at.display()
                    );
                }
                let why = if *enforce {
                    meta_diff(root, &md, meta)?
                } else {
                    String::new()
                };
                if why.is_empty() {
                    (Action::Unchanged, why)
                } else {
                    (
                        Action::Update {
                            content: false,
                            meta: true,
                        },
                        why,
                    )
                }
            }
            (Item::File { meta, content, .. }, Some(md)) => {
                if !md.is_file() {
                    bail!(
                        "{} should be a regular file but is not; move it away and run again",
                        at.display()
                    );
                }
                let content_differs = !same_content(&at, content, digests)?;
                let m = meta_diff(root, &md, meta)?;
                let mut why = Vec::new();
                if content_differs {
                    why.push("content".to_string());
                }
                if !m.is_empty() {
                    why.push(m.clone());
                }
                if !content_differs && m.is_empty() {
                    (Action::Unchanged, String::new())
                } else {
                    (
                        Action::Update {
                            content: content_differs,
                            meta: !m.is_empty(),
                        },
                        why.join(", "),
                    )
                }
            }
        };
        changes.push(Change { item, action, why });
    }
    Ok(Plan { changes })
}

impl Plan {
    pub fn changes(&self) -> usize {
        self.changes
            .iter()
            .filter(|s| s.action != Action::Unchanged)
            .count()
    }

    /// True when something etcd reads gets new content: the one reason to restart it.
    pub fn etcd_inputs_changed(&self) -> bool {
        !self.etcd_changes().is_empty()
    }

    /// What etcd reads that gets new content (the restart's reason), each once, in plan order.
    pub fn etcd_changes(&self) -> Vec<EtcdChange> {
        let mut out = Vec::new();
        for c in &self.changes {
            let (Item::File { kind, .. }, Action::Create | Action::Update { content: true, .. }) =
                (&c.item, &c.action)
            else {
                continue;
            };
            let what = match kind {
                FileKind::Certificate | FileKind::Key => EtcdChange::Certificates,
                FileKind::Binary => EtcdChange::Binary,
                FileKind::Unit => EtcdChange::Unit,
                FileKind::Config => continue,
            };
            if !out.contains(&what) {
                out.push(what);
            }
        }
        out
    }

    /// A unit file systemd has loaded before (etcd's or the backup units) got new content: it
    /// must `daemon-reload` to see it. A new unit file needs no reload (systemd loads it when it
    /// is started; `ServiceManager::start` reloads and retries for one that does not), and a
    /// reload costs seconds at first boot on a slow machine.
    pub fn unit_replaced(&self) -> bool {
        self.changes.iter().any(|s| {
            matches!(
                (&s.item, &s.action),
                (Item::File { .. }, Action::Update { content: true, .. })
            ) && s.item.path().starts_with(crate::state::UNIT_DIR)
        })
    }

    /// One line per item: action, kind, path, and mode/owner or what differs. Never file contents.
    pub fn render(&self) -> String {
        self.changes.iter().map(|c| c.line() + "\n").collect()
    }

    /// The lines of the items that change (what `apply` logs).
    pub fn changed_lines(&self) -> Vec<String> {
        self.changes
            .iter()
            .filter(|c| c.action != Action::Unchanged)
            .map(Change::line)
            .collect()
    }
}

impl Change {
    /// Action, kind, path, and mode/owner or what differs. Never file contents.
    fn line(&self) -> String {
        let (kind, meta) = match &self.item {
            Item::Dir { meta, .. } => ("dir", meta),
            Item::File { kind, meta, .. } => (kind.label(), meta),
        };
        let action = match self.action {
            Action::Create => "create",
            Action::Update { .. } => "update",
            Action::Unchanged => "unchanged",
        };
        let detail = match self.action {
            Action::Update { .. } => self.why.clone(),
            _ => format!("{:04o} {}:{}", meta.mode, meta.user, meta.group),
        };
        format!(
            "{action:<9} {kind:<6} {} ({detail})",
            self.item.path().display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file(kind: FileKind) -> Item {
        Item::File {
            path: PathBuf::from("/etc/etcd/x"),
            meta: Meta {
                mode: 0o644,
                user: Who::Root,
                group: Who::Root,
            },
            content: Content::Bytes(vec![]),
            kind,
        }
    }

    fn plan(item: Item, action: Action) -> Plan {
        Plan {
            changes: vec![Change {
                item,
                action,
                why: String::new(),
            }],
        }
    }

    const NEW_CONTENT: Action = Action::Update {
        content: true,
        meta: false,
    };
    const MODE_ONLY: Action = Action::Update {
        content: false,
        meta: true,
    };

    #[test]
    fn etcd_restarts_only_for_new_content_it_reads() {
        use FileKind::*;
        for kind in [Certificate, Key, Binary, Unit] {
            for action in [Action::Create, NEW_CONTENT] {
                assert!(
                    plan(file(kind), action.clone()).etcd_inputs_changed(),
                    "{kind:?} {action:?}"
                );
            }
            for action in [MODE_ONLY, Action::Unchanged] {
                assert!(
                    !plan(file(kind), action.clone()).etcd_inputs_changed(),
                    "{kind:?} {action:?}"
                );
            }
        }
        // etcdctl.env, the sysusers entry, the backup units: etcd never reads them.
        for action in [Action::Create, NEW_CONTENT, MODE_ONLY, Action::Unchanged] {
            assert!(
                !plan(file(Config), action.clone()).etcd_inputs_changed(),
                "{action:?}"
            );
        }
        let dir = Item::Dir {
            path: PathBuf::from("/var/lib/etcd"),
            meta: Meta {
                mode: 0o700,
                user: Who::Root,
                group: Who::Root,
            },
            enforce: true,
        };
        for action in [Action::Create, MODE_ONLY] {
            assert!(!plan(dir.clone(), action).etcd_inputs_changed());
        }
        let nothing = Plan { changes: vec![] };
        assert!(!nothing.etcd_inputs_changed());
    }
}
