//! The seed's flags judged by etcd's own guides (`etcd::guide`) for the version it installs, before
//! anything is downloaded: a flag that version removed is an error naming what to use instead, a
//! flag it renamed but still takes is a warning with the new name, and a default it changed that
//! the seed overrides is said. The staged binary must report this same version before it is
//! installed (`apply`'s plan), so the table judged here is the one of its `--version`.

use super::Report;
use crate::etcd::guide::{self, Fate};
use crate::render;
use crate::seed::Config;

pub fn check(r: &mut Report, cfg: &Config) {
    let target = cfg.release.semver;
    let mut said = 0;
    for f in render::flags(&cfg.settings) {
        match guide::fate(&f.name, &f.value, target) {
            None => {}
            Some(Fate::Deprecated(m)) => {
                said += 1;
                r.warn("versions", format!("etcd {target}: {m}"));
            }
            Some(Fate::Removed(m) | Fate::NotYet(m)) => {
                said += 1;
                r.input_error(
                    "versions",
                    format!("etcd {target} would not start: {m} (setting {:?})", f.name),
                );
            }
        }
        if let Some(m) = guide::overridden_default(&f.name, &f.value, target) {
            said += 1;
            r.warn("versions", m);
        }
    }
    if said == 0 {
        r.ok(
            "versions",
            format!("no flag is renamed or removed in etcd {target}, by etcd's upgrade guides"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Facts;
    use crate::seed::Seed;

    fn cfg(version: &str, settings: &str) -> Config {
        let text = format!(
            "etcd_version: \"{version}\"\netcd_interface: lo\netcd_address: 127.0.0.1\n\
             etcd_members:\n  - {{name: n1, address: 127.0.0.1}}\netcd_settings_user:\n{settings}"
        );
        let seed = Seed::parse("t", &text).unwrap();
        let ip = "127.0.0.1".parse().unwrap();
        seed.resolve(&Facts::of_member("n1", "lo", ip), ip).unwrap()
    }

    #[test]
    fn the_roles_enable_v2_for_3_6_and_a_gate_flag_for_3_6_and_3_7() {
        let mut r = Report::default();
        check(&mut r, &cfg("3.6.14", "  enable-v2: \"true\"\n"));
        let e = r.errors();
        assert_eq!(e.len(), 1, "{}", r.text());
        assert!(
            e[0].message.contains("--enable-v2 was removed in etcd 3.6")
                && e[0].message.contains("etcdutl check v2store")
                && e[0].input,
            "{}",
            r.text()
        );
        // The role's snapshot-count: a warning for 3.6, kept.
        assert!(
            r.warnings().iter().any(|w| w
                .message
                .contains("snapshot-count 100000 overrides etcd 3.6's default of 10000")),
            "{}",
            r.text()
        );
        let corrupt = "  experimental-initial-corrupt-check: \"true\"\n";
        let mut r = Report::default();
        check(&mut r, &cfg("3.6.14", corrupt));
        assert!(r.errors().is_empty(), "{}", r.text());
        assert!(
            r.text()
                .contains("--feature-gates=InitialCorruptCheck=true"),
            "{}",
            r.text()
        );
        let mut r = Report::default();
        check(&mut r, &cfg("3.7.1", corrupt));
        assert_eq!(r.errors().len(), 1, "{}", r.text());
        assert!(
            r.errors()[0]
                .message
                .contains("use --feature-gates=InitialCorruptCheck=true"),
            "{}",
            r.text()
        );
        // 3.5 knows neither rule: nothing to say of the flag, and no new default.
        let mut r = Report::default();
        check(&mut r, &cfg("3.5.1", corrupt));
        assert!(
            r.errors().is_empty() && r.warnings().is_empty(),
            "{}",
            r.text()
        );
    }
}
