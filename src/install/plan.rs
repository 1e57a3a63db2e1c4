//! Desired items -> changes (create / update / unchanged) against the target root, and applying them
//! atomically. A second run with the same seed plans nothing.

use super::desired::{Content, FileKind, Item, Meta, Who};
use crate::host::users;
use crate::state::digests::Digests;
use crate::util::fs::{self as fsutil, Ids};
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

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

fn resolve(root: &Path, who: &Who, group: bool) -> Result<Option<u32>> {
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

fn same_content(path: &Path, content: &Content, digests: &mut Digests) -> Result<bool> {
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

pub fn diff(root: &Path, items: Vec<Item>, digests: &mut Digests) -> Result<Plan> {
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

    /// What etcd reads that gets new content, in words (for the restart's reason).
    pub fn etcd_changes(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for c in &self.changes {
            let (Item::File { kind, .. }, Action::Create | Action::Update { content: true, .. }) =
                (&c.item, &c.action)
            else {
                continue;
            };
            let what = match kind {
                _ if !kind.etcd_reads() => continue,
                FileKind::Certificate | FileKind::Key => "certificates",
                other => other.label(),
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
            ) && s.item.path().starts_with("/etc/systemd/system")
        })
    }

    /// One line per item: action, kind, path, and mode/owner or what differs. Never file contents.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for s in &self.changes {
            let (kind, meta) = match &s.item {
                Item::Dir { meta, .. } => ("dir", meta),
                Item::File { kind, meta, .. } => (kind.label(), meta),
            };
            let action = match s.action {
                Action::Create => "create",
                Action::Update { .. } => "update",
                Action::Unchanged => "unchanged",
            };
            let detail = match s.action {
                Action::Update { .. } => s.why.clone(),
                _ => format!("{:04o} {}:{}", meta.mode, meta.user, meta.group),
            };
            let _ = writeln!(
                out,
                "{action:<9} {kind:<6} {} ({detail})",
                s.item.path().display()
            );
        }
        out
    }

    /// The heavy part of applying, done before anything changes: every staged binary that gets
    /// new content is copied into a synced temp file beside its target (with its final owner and
    /// mode) and checked against the digest it was verified with. Nothing the system runs or
    /// reads changes; dropping the result without `apply` removes the temp files. A running
    /// member takes its restart turn between the two, so the turn covers only renames.
    pub fn prepare(&self, root: &Path) -> Result<Prepared<'_>> {
        let mut p = Prepared {
            plan: self,
            temps: std::collections::BTreeMap::new(),
        };
        for (i, c) in self.changes.iter().enumerate() {
            let (
                Item::File {
                    meta,
                    content: Content::Staged(sb),
                    ..
                },
                Action::Create | Action::Update { content: true, .. },
            ) = (&c.item, &c.action)
            else {
                continue;
            };
            let at = fsutil::under_for_write(root, c.item.path());
            let parent = at.parent().context("file without a parent dir")?;
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            let mut f = fs::File::open(&sb.path)
                .with_context(|| format!("opening staged {}", sb.path.display()))?;
            let (tmp, got) = fsutil::write_temp(&at, meta.mode, ids_for(root, meta)?, &mut f)?;
            // The staging dir is ours but lives on disk between runs: install only the bytes that
            // were verified from the tarball.
            if got != sb.sha256 {
                let _ = fs::remove_file(&tmp);
                bail!(
                    "staged {} changed since it was unpacked (sha256 {got}, expected {}); delete {} and run again",
                    sb.path.display(),
                    sb.sha256,
                    sb.path.parent().map(|p| p.display().to_string()).unwrap_or_default()
                );
            }
            p.temps.insert(i, (tmp, got));
        }
        Ok(p)
    }
}

/// A plan whose large files are written to temp files, ready to be renamed into place.
pub struct Prepared<'a> {
    plan: &'a Plan,
    /// Change index → (temp file, digest of its content).
    temps: std::collections::BTreeMap<usize, (std::path::PathBuf, crate::util::io::Sha256)>,
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        for (tmp, _) in self.temps.values() {
            let _ = fs::remove_file(tmp);
        }
    }
}

impl Prepared<'_> {
    /// Applies every change under `root`. The account must exist (see `users::ensure`) before this.
    pub fn apply(mut self, root: &Path, digests: &mut Digests) -> Result<()> {
        let mut swept = std::collections::BTreeSet::new();
        for (i, c) in self.plan.changes.iter().enumerate() {
            if c.action == Action::Unchanged {
                continue;
            }
            let at = fsutil::under_for_write(root, c.item.path());
            crate::failpoint!("apply-item", &at.display().to_string());
            if let Some(parent) = at.parent() {
                if swept.insert(parent.to_path_buf()) {
                    fsutil::sweep_temps(parent, None);
                }
            }
            match &c.item {
                Item::Dir { meta, .. } => apply_dir(root, &at, meta)?,
                Item::File { meta, content, .. } => {
                    let rewrite = matches!(
                        c.action,
                        Action::Create | Action::Update { content: true, .. }
                    );
                    if let Some((tmp, got)) = self.temps.remove(&i) {
                        fsutil::commit_temp(&tmp, &at)?;
                        digests.remember(&at, got);
                    } else if rewrite {
                        write_file(root, &at, meta, content)?;
                    } else {
                        set_meta(root, &at, meta)?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn apply_dir(root: &Path, at: &Path, meta: &Meta) -> Result<()> {
    if fs::symlink_metadata(at).is_err() {
        if let Some(parent) = at.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::create_dir(at).with_context(|| format!("creating {}", at.display()))?;
    }
    set_meta(root, at, meta)
}

/// A small file's new content (a staged binary's was written by `prepare`).
fn write_file(root: &Path, at: &Path, meta: &Meta, content: &Content) -> Result<()> {
    let parent = at.parent().context("file without a parent dir")?;
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let ids = ids_for(root, meta)?;
    match content {
        Content::Bytes(b) => {
            fsutil::write_atomic(at, meta.mode, ids, &mut &b[..])?;
        }
        Content::Staged(sb) => bail!("internal: {} was not prepared", sb.path.display()),
        Content::Pending(n) => bail!("internal: binary {n} has no staged source"),
    }
    Ok(())
}

fn ids_for(root: &Path, meta: &Meta) -> Result<Ids> {
    let uid = resolve(root, &meta.user, false)?.with_context(|| {
        format!(
            "user {} does not exist in {}/etc/passwd",
            meta.user,
            root.display()
        )
    })?;
    let gid = resolve(root, &meta.group, true)?.with_context(|| {
        format!(
            "group {} does not exist in {}/etc/group",
            meta.group,
            root.display()
        )
    })?;
    Ok(Ids { uid, gid })
}

/// Owner and mode, never through a link: the path is opened without following one and changed
/// through that descriptor, so a link swapped in meanwhile is refused, not followed.
fn set_meta(root: &Path, at: &Path, meta: &Meta) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let ids = ids_for(root, meta)?;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
        .open(at)
        .with_context(|| {
            format!(
                "opening {} to set its owner and mode (a link is not followed)",
                at.display()
            )
        })?;
    nix::unistd::fchown(&f, Some(ids.uid.into()), Some(ids.gid.into()))
        .with_context(|| format!("setting the owner of {}", at.display()))?;
    f.set_permissions(fs::Permissions::from_mode(meta.mode))
        .with_context(|| format!("setting the mode of {}", at.display()))?;
    Ok(())
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
