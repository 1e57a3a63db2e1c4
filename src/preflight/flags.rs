//! Flags: every rendered flag is asked of the etcd binary that will run (`etcd --help`). What etcd's
//! guides say of a flag (`etcd::guide`) is judged before that, from the seed's version
//! (`preflight::versions`); here a flag the binary lacks that the guides already explain is not
//! said twice.

use super::Report;
use crate::etcd::guide::{self, Fate};
use crate::etcd::tools;
use crate::etcd::version::Version;
use crate::render;
use crate::seed::Config;
use crate::util::error::Error;
use crate::util::io::Sha256;
use std::path::Path;

/// Flags named in `etcd --help` output (lines starting with `--name`).
pub fn parse_help(help: &str) -> Vec<String> {
    let mut out: Vec<String> = help
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .map(|rest| {
            rest.split(|c: char| c.is_whitespace() || c == '=' || c == '\'' || c == ',')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .filter(|f| {
            !f.is_empty()
                && f.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known flag closest to `flag`: a shared prefix counts most (`log-output` -> `log-outputs`).
pub fn nearest<'a>(flag: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .min_by_key(|k| levenshtein(flag, k))
        .filter(|k| levenshtein(flag, k) <= flag.len().max(4) / 2)
        .map(|k| k.as_str())
}

/// A flag `etcd <version>` lacks, with the nearest one it has.
fn unknown(flag: &str, version: &str, known: &[String]) -> String {
    let mut msg = format!("etcd {version} has no flag --{flag} (setting {flag:?})");
    let renamed = flag
        .strip_prefix("experimental-")
        .filter(|n| known.iter().any(|k| k == n));
    match renamed.or_else(|| nearest(flag, known)) {
        Some(n) => msg.push_str(&format!("; the nearest flag it has is --{n}")),
        None => msg.push_str("; remove it from etcd_settings / etcd_settings_user"),
    }
    msg
}

/// What a binary answered to `--help` and `--version`, kept by its digest.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Answers {
    help: String,
    version: Option<String>,
}

/// Where the answers of the binary with `digest` are kept.
fn answers_path(root: &Path, digest: Sha256) -> std::path::PathBuf {
    crate::state::path(root, crate::state::ETCD_ANSWERS).join(digest.to_string())
}

/// What one run heard from etcd binaries, by digest: a run asks each binary once, whether it
/// keeps the answers or not (the flags check and the staged version check ask the same binary).
#[derive(Default)]
pub struct Heard(std::sync::Mutex<std::collections::HashMap<Sha256, Answers>>);

impl Heard {
    /// The version the binary with this verified digest reports (`etcd --version`), asked at
    /// most once per run and kept as its `--help` is. None: it does not say (or cannot run here).
    pub fn reported_version(
        &self,
        bin: &Path,
        digest: Sha256,
        root: &Path,
        keep: bool,
    ) -> Option<String> {
        answers(self, bin, digest, root, keep).ok()?.version
    }
}

/// `--help` and `--version` of `bin`, asked at once: each starts the whole etcd binary (about
/// 20 ms). Kept by the binary's verified digest in root's own state dir, so a warm run asks
/// nothing it asked before: the same digest is the same program, and the same answers.
fn answers(
    heard: &Heard,
    bin: &Path,
    digest: Sha256,
    root: &Path,
    keep: bool,
) -> Result<Answers, Error> {
    if let Some(a) = heard.0.lock().ok().and_then(|h| h.get(&digest).cloned()) {
        return Ok(a);
    }
    let kept = answers_path(root, digest);
    if let Some(a) =
        crate::util::fs::read_nofollow(&kept).and_then(|t| serde_json::from_str::<Answers>(&t).ok())
    {
        return Ok(a);
    }
    crate::util::seam::count(crate::util::seam::ETCD_ASKED);
    let (help, version) = std::thread::scope(|s| {
        let version = s.spawn(|| tools::etcd_version(bin));
        (tools::etcd_help(bin), version.join().ok().flatten())
    });
    let a = Answers {
        help: help?,
        version,
    };
    if let Ok(mut h) = heard.0.lock() {
        h.insert(digest, a.clone());
    }
    if let (true, Ok(text)) = (keep, serde_json::to_string(&a)) {
        let dir = crate::state::path(root, crate::state::ETCD_ANSWERS);
        // Best effort: a run that cannot keep them asks again next time.
        let _ = crate::util::fs::private_dir(root, &dir, 0o700)
            .and_then(|()| crate::util::fs::write_private_state(&kept, &text));
    }
    Ok(a)
}

fn ask(
    heard: &Heard,
    r: &mut Report,
    bin: &Path,
    digest: Sha256,
    root: &Path,
    keep: bool,
) -> Option<(String, Option<String>)> {
    match answers(heard, bin, digest, root, keep) {
        Ok(a) => Some((a.help, a.version)),
        // Another architecture's binary (an image built on another machine): nothing to ask.
        Err(why) if why.message.starts_with("cannot run") => {
            r.warn("flags", format!("{why}; the flags were not checked"));
            None
        }
        Err(why) => {
            r.error("flags", format!("{why}; the flags were not checked"));
            None
        }
    }
}

pub fn check(
    r: &mut Report,
    cfg: &Config,
    bin: Option<(&Path, Sha256)>,
    root: &Path,
    keep: bool,
    heard: &Heard,
) {
    let Some(bin) = bin else {
        r.warn(
            "flags",
            "the flags check is skipped: there is no verified etcd binary to ask yet (no release downloaded and \
             verified in the download dir, none installed by etcd-bootstrap); run `etcd-bootstrap fetch` first, or \
             let apply check the flags right after its download",
        );
        return;
    };
    let (bin, digest) = bin;
    let Some((help, version)) = ask(heard, r, bin, digest, root, keep) else {
        return;
    };
    let known = parse_help(&help);
    if known.len() < 10 {
        r.warn(
            "flags",
            format!(
                "{} --help lists no flags; the flags were not checked",
                bin.display()
            ),
        );
        return;
    }
    let target = Some(cfg.release.semver);
    let reported = version.as_deref().and_then(|v| v.parse::<Version>().ok());
    // An installed etcd of another minor (the seed moves to a new one, not downloaded yet) does
    // not speak for the seed's version: its flags were judged from etcd's guides.
    if let (Some(t), Some(b)) = (target, reported) {
        if !t.same_minor(&b) {
            r.warn(
                "flags",
                format!(
                    "{} is etcd {b}, not the seed's {t}: the flags were judged from etcd's guides for {} only; \
                     `etcd-bootstrap fetch` stages {t} to ask its own --help",
                    bin.display(),
                    t.minor_str()
                ),
            );
            return;
        }
    }
    let version = version.unwrap_or_else(|| cfg.release.version.clone());
    let flags = render::flags(&cfg.settings);
    let mut bad = 0;
    for f in &flags {
        if known.contains(&f.name) {
            continue;
        }
        bad += 1;
        if let Some(Fate::Removed(_) | Fate::NotYet(_)) =
            target.and_then(|t| guide::fate(&f.name, &f.value, t))
        {
            continue; // said by `versions`, with what to use instead
        }
        r.input_error("flags", unknown(&f.name, &version, &known));
    }
    if bad == 0 {
        r.ok(
            "flags",
            format!(
                "all {} flags are known to etcd {} ({})",
                flags.len(),
                version,
                bin.display()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_help_and_finds_the_nearest() {
        let help = "Usage:\n\n  etcd [flags]\n\nMember:\n  --name 'default'\n    Human-readable name.\n  --log-outputs 'default'\n  --data-dir '${name}.etcd'\n  --enable-v2=false\n";
        let known = parse_help(help);
        assert_eq!(known, vec!["data-dir", "enable-v2", "log-outputs", "name"]);
        assert_eq!(nearest("log-output", &known), Some("log-outputs"));
        assert_eq!(nearest("completely-unrelated-flag", &known), None);
    }

    /// A warm run asks the binary nothing: its answers are kept by its digest the first time, and
    /// only by a run that may write (`check` keeps nothing).
    #[test]
    fn a_binary_is_asked_once_per_digest_and_only_apply_keeps_the_answers() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let calls = root.path().join("calls");
        let bin = root.path().join("etcd");
        let cfg = crate::seed::testing::config("etcd_version: \"3.5.1\"\n");
        let flags: String = cfg
            .settings
            .keys()
            .map(|n| format!("  --{n} ''\n"))
            .chain((0..12).map(|i| format!("  --extra-{i} ''\n")))
            .collect();
        let script = format!(
            "#!/bin/sh\necho \"$1\" >> {}\ncase \"$1\" in --version) echo 'etcd Version: 3.5.1';; \
             *) printf '%s' \"Usage:\n{flags}\";; esac\n",
            calls.display()
        );
        std::fs::write(&bin, &script).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let digest = Sha256::of(script.as_bytes());
        let asked = || {
            std::fs::read_to_string(&calls)
                .unwrap_or_default()
                .lines()
                .count()
        };
        let mut r = Report::default();
        check(
            &mut r,
            &cfg,
            Some((&bin, digest)),
            root.path(),
            false,
            &Heard::default(),
        );
        assert!(r.errors().is_empty(), "{}", r.text());
        assert_eq!(asked(), 2, "--help and --version");
        check(
            &mut r,
            &cfg,
            Some((&bin, digest)),
            root.path(),
            false,
            &Heard::default(),
        );
        assert_eq!(asked(), 4, "check keeps nothing");
        check(
            &mut r,
            &cfg,
            Some((&bin, digest)),
            root.path(),
            true,
            &Heard::default(),
        );
        assert_eq!(asked(), 6);
        for _ in 0..3 {
            let mut r = Report::default();
            check(
                &mut r,
                &cfg,
                Some((&bin, digest)),
                root.path(),
                true,
                &Heard::default(),
            );
            assert!(r.errors().is_empty(), "{}", r.text());
        }
        assert_eq!(asked(), 6, "a warm run asked the binary again");
        // Another digest is another program: asked again.
        let other = Sha256::of(b"another etcd");
        check(
            &mut r,
            &cfg,
            Some((&bin, other)),
            root.path(),
            true,
            &Heard::default(),
        );
        assert_eq!(asked(), 8);
        // Within one run a binary is asked once, whatever keeps: a check that keeps nothing, then
        // the version asked again.
        let run = Heard::default();
        let third = Sha256::of(b"a third etcd");
        check(&mut r, &cfg, Some((&bin, third)), root.path(), false, &run);
        let v = run.reported_version(&bin, third, root.path(), false);
        assert_eq!((asked(), v.as_deref()), (10, Some("3.5.1")));
    }

    /// The defaults render the same for every version from 3.4 on: none of them is a flag that a
    /// version renamed or removed. A default added from the history list, or an `experimental-`
    /// one (renamed in 3.6, gone in 3.7), would break an upgrade that the seed never asked for.
    #[test]
    fn no_default_setting_is_a_flag_some_version_renamed_or_removed() {
        for (name, _) in crate::seed::defaults::DEFAULT_SETTINGS {
            assert!(
                !name.starts_with("experimental-") && !guide::FLAGS.iter().any(|r| r.flag == *name),
                "default --{name} is renamed or removed in some etcd version"
            );
        }
    }
}
