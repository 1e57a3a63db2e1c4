//! Flags: every rendered flag is asked of the etcd binary that will run (`etcd --help`). A table of
//! known renames only adds the explanation; it never decides what is valid.

use super::Report;
use crate::etcd::tools;
use crate::render;
use crate::seed::Config;
use std::path::Path;

/// Known renames and removals, for the message: (flag, what happened).
const HISTORY: &[(&str, &str)] = &[
    ("log-output", "renamed to --log-outputs in etcd 3.4"),
    (
        "log-package-levels",
        "removed in etcd 3.5 (use --log-level)",
    ),
    ("debug", "removed in etcd 3.5 (use --log-level=debug)"),
    ("enable-v2", "removed in etcd 3.6 (the v2 API is gone)"),
    (
        "experimental-enable-v2v3",
        "removed in etcd 3.6 (the v2 API is gone)",
    ),
];

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

pub fn check(r: &mut Report, cfg: &Config, bin: Option<&Path>) {
    let Some(bin) = bin else {
        r.warn(
            "flags",
            "the flags check is skipped: there is no verified etcd binary to ask yet (no release downloaded and \
             verified in the download dir, none installed by etcd-bootstrap); run `etcd-bootstrap fetch` first, or \
             let apply check the flags right after its download",
        );
        return;
    };
    let help = match tools::etcd_help(bin) {
        Ok(h) => h,
        // Another architecture's binary (an image built on another machine): nothing to ask.
        Err(why) if why.message.starts_with("cannot run") => {
            r.warn("flags", format!("{why}; the flags were not checked"));
            return;
        }
        Err(why) => {
            r.error("flags", format!("{why}; the flags were not checked"));
            return;
        }
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
    let flags = render::flags(&cfg.settings);
    let mut bad = 0;
    for f in &flags {
        if known.contains(&f.name) {
            continue;
        }
        bad += 1;
        // Only on an error is the binary asked its version: one process less on every good run.
        let version = tools::etcd_version(bin).unwrap_or_else(|| cfg.release.version.clone());
        let mut msg = format!(
            "etcd {version} has no flag --{} (setting {:?})",
            f.name, f.name
        );
        if let Some((_, what)) = HISTORY.iter().find(|(n, _)| *n == f.name) {
            msg.push_str(&format!(": {what}"));
        } else if f.name.starts_with("experimental-") {
            msg.push_str(
                ": etcd 3.6 dropped the experimental- prefix of most flags, 3.7 the old names",
            );
        }
        let renamed = f
            .name
            .strip_prefix("experimental-")
            .filter(|n| known.iter().any(|k| k == n));
        match renamed.or_else(|| nearest(&f.name, &known)) {
            Some(n) => msg.push_str(&format!("; the nearest flag it has is --{n}")),
            None => msg.push_str("; remove it from etcd_settings / etcd_settings_user"),
        }
        r.input_error("flags", msg);
    }
    if bad == 0 {
        r.ok(
            "flags",
            format!(
                "all {} flags are known to etcd {} ({})",
                flags.len(),
                cfg.release.version,
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

    /// The defaults render the same for every version from 3.4 on: none of them is a flag that a
    /// version renamed or removed. A default added from the history list, or an `experimental-`
    /// one (renamed in 3.6, gone in 3.7), would break an upgrade that the seed never asked for.
    #[test]
    fn no_default_setting_is_a_flag_some_version_renamed_or_removed() {
        for (name, _) in crate::seed::defaults::DEFAULT_SETTINGS {
            assert!(
                !name.starts_with("experimental-") && !HISTORY.iter().any(|(h, _)| h == name),
                "default --{name} is renamed or removed in some etcd version"
            );
        }
    }
}
