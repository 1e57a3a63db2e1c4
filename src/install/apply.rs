//! Applying a plan atomically: the staged binaries written to synced temp files first (`prepare`,
//! before any restart turn), then every change in order, each file renamed into place, owner and
//! mode set through descriptors that never follow a link.

use super::desired::{Content, Item, Meta};
use super::plan::{resolve, Action, Plan};
use crate::state::digests::Digests;
use crate::util::fs::{self as fsutil, Ids};
use anyhow::{bail, Context, Result};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

impl Plan {
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
    pub fn apply(mut self, root: &Path, digests: &Digests) -> Result<()> {
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
