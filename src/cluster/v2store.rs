//! Before a member leaves 3.5 for 3.6: etcd 3.6 has no v2 store, and a member whose v2 store holds
//! custom (non-membership) data does not start on it. etcd's guide: when `--enable-v2` is set, run
//! `etcdutl check v2store` on the member's data first; with custom data, migrate it
//! (https://etcd.io/docs/v3.6/upgrades/upgrade_3_6/#v2-store).
//!
//! Which flags the member runs with is asked of the running process itself (its command line
//! and environment), else read from the installed unit. The check runs the installed (verified)
//! etcdutl of 3.5 on a private copy of the member's snapshots and WAL: etcdutl wants "a data
//! directory not in use by etcd", and the member keeps serving meanwhile.

use crate::cluster::node::Node;
use crate::etcd::tools::Tools;
use crate::etcd::version::Version;
use crate::util::fs;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

const GUIDE: &str = "https://etcd.io/docs/v3.6/upgrades/upgrade_3_6/#v2-store";
const MIGRATION: &str = "https://etcd.io/docs/v3.4/op-guide/v2-migration/";

/// Whether this move leaves the v2 store behind: from before 3.6 to 3.6 or later.
pub fn applies(from: Version, to: Version) -> bool {
    (from.major, from.minor) < (3, 6) && (to.major, to.minor) >= (3, 6)
}

/// Go's flag package: `-flag`, `--flag`, `--flag=true|1|t|T|TRUE|True`.
fn truthy(v: &str) -> bool {
    matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// Whether etcd given `args` and `env` serves the v2 API: the flag wins over `ETCD_ENABLE_V2`.
pub fn enabled_in(args: &[String], env: &[(String, String)]) -> Option<String> {
    let mut from_flag = None;
    for a in args {
        let Some(rest) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            continue;
        };
        if rest == "enable-v2" {
            from_flag = Some(true);
        } else if let Some(v) = rest.strip_prefix("enable-v2=") {
            from_flag = Some(truthy(v));
        }
    }
    match from_flag {
        Some(true) => Some("--enable-v2".to_string()),
        Some(false) => None,
        None => env
            .iter()
            .find(|(k, v)| k == "ETCD_ENABLE_V2" && truthy(v))
            .map(|(k, v)| format!("{k}={v}")),
    }
}

/// NUL-separated fields of a /proc file.
fn proc_fields(path: &Path) -> Option<Vec<String>> {
    let bytes = std::fs::read(path).ok()?;
    Some(
        bytes
            .split(|b| *b == 0)
            .filter(|f| !f.is_empty())
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect(),
    )
}

/// The unit's `ExecStart=` words and `Environment=` pairs.
fn from_unit(text: &str) -> (Vec<String>, Vec<(String, String)>) {
    let args = crate::render::parse_exec_start(text).unwrap_or_default();
    let env = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Environment="))
        .flat_map(|e| e.split_whitespace())
        .filter_map(|w| w.trim_matches('"').split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (args, env)
}

/// How the member runs now: from its process when the service manager names one, else from the
/// installed unit. (What enables the v2 API, and where that was seen.)
pub fn running_enables_v2(node: &Node) -> Option<(String, String)> {
    let (cfg, root, services) = (node.cfg, node.root, node.services);
    let unit = cfg.unit_name();
    if let Some(p) = services.main_process(&unit) {
        let proc = PathBuf::from(format!("/proc/{}", p.pid));
        if let (Some(args), Some(env)) = (
            proc_fields(&proc.join("cmdline")),
            proc_fields(&proc.join("environ")),
        ) {
            let env: Vec<(String, String)> = env
                .iter()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            return enabled_in(&args, &env)
                .map(|what| (what, format!("the running etcd (pid {})", p.pid)));
        }
    }
    let path = fs::under(root, &cfg.unit_path());
    let text = fs::read_nofollow(&path)?;
    let (args, env) = from_unit(&text);
    enabled_in(&args, &env).map(|what| (what, path.display().to_string()))
}

/// How long `etcdutl check v2store` may take on a copy of a member's data.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The scratch copy of a member's data: removed however the check ends (an error, a panic); one
/// left by a killed run is removed by the next.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SCRATCH_PREFIX: &str = "v2store-check.";

/// Copies left by runs that are gone (killed): the WAL holds recent puts, Secrets among them.
fn sweep_stale(state: &Path) {
    for name in fs::entries(state) {
        let Some(pid) = name.strip_prefix(SCRATCH_PREFIX) else {
            continue;
        };
        let alive = pid
            .parse::<i32>()
            .is_ok_and(|p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok());
        if !alive || pid == std::process::id().to_string() {
            let _ = std::fs::remove_dir_all(state.join(&name));
        }
    }
}

/// A dir of the member's, as a real dir: a link planted there (etcd's user owns the data dir) is
/// refused, never followed.
fn real_dir(p: &Path) -> Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bail!(
            "{} is not a directory (a link?): not copying through it; nothing was changed",
            p.display()
        ),
        Err(e) => bail!("{}: {e}; nothing was changed", p.display()),
    }
}

/// The member's snapshot and WAL dirs, each checked to be a real dir.
fn sources(node: &Node) -> Result<Vec<(PathBuf, &'static str, &'static str)>> {
    let (cfg, root) = (node.cfg, node.root);
    let data = fs::under(root, &cfg.data_dir).join("member");
    let wal = match cfg.setting("wal-dir") {
        Some(w) => fs::under(root, Path::new(w)),
        None => data.join("wal"),
    };
    real_dir(&data)?;
    real_dir(&data.join("snap"))?;
    real_dir(&wal)?;
    // Snapshots first: a WAL copied after them names every snapshot they hold.
    Ok(vec![
        (data.join("snap"), "snap", ".snap"),
        (wal, "wal", ".wal"),
    ])
}

/// What the copy will take: the size of every file it copies.
fn copy_size(sources: &[(PathBuf, &str, &str)]) -> u64 {
    sources
        .iter()
        .flat_map(|(from, _, ext)| {
            fs::entries(from)
                .into_iter()
                .filter(move |n| n.ends_with(ext))
                .filter_map(move |n| std::fs::symlink_metadata(from.join(n)).ok())
        })
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// The member's snapshot and WAL files, copied (regular files only: a link or FIFO in etcd's dir
/// is refused, never followed or waited on) into a fresh dir root alone can read.
fn copy_for_check(sources: &[(PathBuf, &str, &str)], into: &Path) -> Result<usize> {
    let mut n = 0;
    for (from, to, ext) in sources {
        let dest = into.join("member").join(to);
        std::fs::create_dir_all(&dest)?;
        for name in fs::entries(from) {
            if !name.ends_with(ext) {
                continue;
            }
            let src = fs::child(from, &name, "an etcd data file")?;
            let Some(mut f) = fs::open_regular(&src, false)? else {
                continue; // etcd removed it (purged) meanwhile
            };
            let mut out = std::fs::File::create(dest.join(&name))?;
            std::io::copy(&mut f, &mut out)
                .with_context(|| format!("copying {}", src.display()))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Refuses the move to 3.6 when the member serves the v2 API and its v2 store holds custom data.
pub fn check(node: &Node) -> Result<()> {
    let (cfg, root) = (node.cfg, node.root);
    let Some((what, seen)) = running_enables_v2(node) else {
        return Ok(());
    };
    let tools = Tools::verified(root, &cfg.bin_dir)?;
    let Some(etcdutl) = tools.etcdutl else {
        bail!(
            "{what} is set ({seen}) and there is no etcdutl in {} to run `etcdutl check v2store` \
             with, as etcd's guide asks before 3.6 ({GUIDE}); nothing was changed",
            cfg.bin_dir.display()
        );
    };
    let state = crate::state::path(root, crate::state::DIR);
    fs::private_dir(root, &state, 0o755)?;
    sweep_stale(&state);
    let from = sources(node)?;
    let need = copy_size(&from);
    if let Some((at, free)) = crate::host::disk::free_at(root, Path::new(crate::state::DIR)) {
        // Room for the copy and as much again: the node's own disk must not fill for a check.
        if free < need.saturating_mul(2) {
            bail!(
                "{what} is set ({seen}): `etcdutl check v2store` needs a copy of this member's \
                 snapshots and WAL ({}), and {} has {} free (twice the copy is asked); free room \
                 there, then apply again; nothing was changed",
                crate::util::size::format_bytes(need),
                at.display(),
                crate::util::size::format_bytes(free)
            );
        }
    }
    let scratch = Scratch(state.join(format!("{SCRATCH_PREFIX}{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&scratch.0);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&scratch.0)
            .with_context(|| format!("creating {}", scratch.0.display()))?;
    }
    let result = copy_for_check(&from, &scratch.0).and_then(|files| {
        let mut c = std::process::Command::new(&etcdutl);
        c.args(["check", "v2store", "--data-dir"]).arg(&scratch.0);
        let shown = format!("{} check v2store", etcdutl.display());
        let (status, text) = crate::etcd::tools::run_within(c, &shown, CHECK_TIMEOUT)?;
        Ok((files, status, text))
    });
    drop(scratch);
    let (files, status, said) = result?;
    let said = crate::util::text::excerpt(said.trim(), 400);
    if status.success() {
        log::info!(
            "{what} is set ({seen}); `etcdutl check v2store` on a copy of this member's data ({files} files): {said}"
        );
        return Ok(());
    }
    if said.contains("custom") {
        bail!(
            "{} keeps custom data in its v2 store (`etcdutl check v2store`: {said}): etcd 3.6 has no \
             v2 store and would not start on it. The guide's remedy ({GUIDE}): migrate the v2 data \
             ({MIGRATION}), then remove {what}; nothing was changed",
            crate::util::text::printable(&cfg.this_member.name)
        );
    }
    bail!(
        "{what} is set ({seen}) and `etcdutl check v2store` could not tell whether the v2 store holds \
         custom data ({said}; etcdutl 3.5.18 and later have the check); nothing was changed ({GUIDE})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_v2_api_is_on_as_go_reads_flags_and_the_environment() {
        let env = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert!(enabled_in(&s(&["etcd", "--enable-v2"]), &[]).is_some());
        assert!(enabled_in(&s(&["etcd", "-enable-v2=true"]), &[]).is_some());
        assert!(enabled_in(&s(&["etcd", "--enable-v2=1"]), &[]).is_some());
        assert!(enabled_in(&s(&["etcd", "--enable-v2=false"]), &[]).is_none());
        assert!(enabled_in(&s(&["etcd", "--enable-v2x=true"]), &[]).is_none());
        assert_eq!(
            enabled_in(&s(&["etcd"]), &env("ETCD_ENABLE_V2", "true")).as_deref(),
            Some("ETCD_ENABLE_V2=true")
        );
        // The flag wins over the environment, as in etcd.
        assert!(enabled_in(
            &s(&["etcd", "--enable-v2=false"]),
            &env("ETCD_ENABLE_V2", "true")
        )
        .is_none());
        assert!(applies(
            "3.5.32".parse().unwrap(),
            "3.6.14".parse().unwrap()
        ));
        assert!(!applies(
            "3.6.11".parse().unwrap(),
            "3.7.1".parse().unwrap()
        ));
        assert!(!applies(
            "3.4.23".parse().unwrap(),
            "3.5.1".parse().unwrap()
        ));
    }

    #[test]
    fn reads_the_unit_this_tool_writes() {
        let unit = "[Service]\nEnvironment=ETCD_UNSUPPORTED_ARCH=arm64\nExecStart=/usr/local/bin/etcd \\\n  \
                    --enable-v2=\"true\" \\\n  --name=\"n1\"\n\n[Install]\n";
        let (args, env) = from_unit(unit);
        assert_eq!(
            args,
            s(&["/usr/local/bin/etcd", "--enable-v2=true", "--name=n1"])
        );
        assert_eq!(env, vec![("ETCD_UNSUPPORTED_ARCH".into(), "arm64".into())]);
        assert!(enabled_in(&args, &env).is_some());
    }
}
