//! `etcdctl.env`: what etcdctl (and this tool's `backup`) need to reach this member. Valid for a
//! POSIX shell's `.` and for systemd's `EnvironmentFile=` alike, whatever the values.

use crate::seed::Config;

/// A value as both a shell and systemd read it back unchanged: bare when it holds only plain
/// characters, else in double quotes with `\`, `"`, `$` and `` ` `` escaped (the escapes both
/// honour inside double quotes). Values never hold control characters (the seed refuses them).
pub fn env_value(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if plain {
        return v.to_string();
    }
    let mut out = String::from("\"");
    for c in v.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Reads `KEY=value` lines back as `env_value` wrote them (comments and blank lines skipped): the
/// tests' check that what is written is what a shell reads.
#[cfg(test)]
pub fn parse_env(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = match v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            Some(inner) => {
                let mut s = String::new();
                let mut esc = false;
                for c in inner.chars() {
                    if esc || c != '\\' {
                        s.push(c);
                        esc = false;
                    } else {
                        esc = true;
                    }
                }
                s
            }
            None => v.to_string(),
        };
        out.push((k.to_string(), v));
    }
    out
}

/// `etcdctl.env`: `set -a; . /etc/etcd/etcdctl.env` and `etcdctl endpoint health` needs no flags.
pub fn etcdctl_env(cfg: &Config) -> String {
    let (cert, key) = cfg.client_cert_and_key();
    let ca = cfg.trusted_ca();
    let endpoints = cfg
        .setting("advertise-client-urls")
        .map(str::to_string)
        .unwrap_or_else(|| cfg.this_member.url(cfg.client_port));
    let path = |p: &std::path::Path| env_value(&p.display().to_string());
    format!(
        "# Written by etcd-bootstrap. Use: set -a; . {}/etcdctl.env; set +a; etcdctl endpoint health\n\
         ETCDCTL_API=3\n\
         ETCDCTL_ENDPOINTS={}\n\
         ETCDCTL_CACERT={}\n\
         ETCDCTL_CERT={}\n\
         ETCDCTL_KEY={}\n",
        cfg.conf_dir.display(),
        env_value(&endpoints),
        path(&ca),
        path(&cert),
        path(&key),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, .. ProptestConfig::default() })]

        /// What a shell reads back from `.` is the value, whatever it is (and so is what
        /// `parse_env` reads).
        #[test]
        fn any_value_survives_a_shell_and_the_parser(v in "[^\\x00-\\x1f\\x7f]{0,40}") {
            let text = format!("X={}\n", env_value(&v));
            prop_assert_eq!(parse_env(&text), vec![("X".to_string(), v.clone())]);
            let d = tempfile::tempdir().unwrap();
            let f = d.path().join("env");
            std::fs::write(&f, &text).unwrap();
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("set -a; . {}; printf %s \"$X\"", f.display()))
                .output()
                .unwrap();
            prop_assert!(out.status.success());
            prop_assert_eq!(String::from_utf8_lossy(&out.stdout).to_string(), v);
        }
    }
}
