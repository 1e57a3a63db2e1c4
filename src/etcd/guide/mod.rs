//! etcd's own upgrade and downgrade guides, encoded: the minor steps etcd supports with the patch
//! every member must run first, the downgrades its API does, the flags each version renamed, turned
//! into feature gates or removed, and the defaults it changed. Every rule names where etcd says
//! so. This is the one place to change when a guide moves (the 3.5 → 3.6 floor moved from 3.5.20
//! to 3.5.26 to 3.5.32 within a year).

use super::version::Version;

/// One minor a time, upward: every member at `floor` or later before any member runs `to`.
pub struct Step {
    pub to: (u32, u32),
    pub floor: Version,
    pub source: &'static str,
}

const fn v(major: u32, minor: u32, patch: u32) -> Version {
    Version {
        major,
        minor,
        patch,
    }
}

/// The upgrades this tool does. 3.4 → 3.5: "the running cluster must be 3.4 or greater".
/// 3.5 → 3.6: "make sure that all of your 3.5 members are updated to 3.5.32 or later" (3.5.32
/// adds the v2 checks the 3.6 start relies on). 3.6 → 3.7: "all of your 3.6 members are updated to
/// 3.6.11 or later".
pub const UPGRADES: &[Step] = &[
    Step {
        to: (3, 5),
        floor: v(3, 4, 0),
        source: "https://etcd.io/docs/v3.5/upgrades/upgrade_3_5/",
    },
    Step {
        to: (3, 6),
        floor: v(3, 5, 32),
        source: "https://etcd.io/docs/v3.6/upgrades/upgrade_3_6/",
    },
    Step {
        to: (3, 7),
        floor: v(3, 6, 11),
        source: "https://etcd.io/docs/v3.7/upgrades/upgrade_3_7/",
    },
];

/// The step that reaches `to`'s minor.
pub fn upgrade_to(to: Version) -> Option<&'static Step> {
    UPGRADES.iter().find(|s| s.to == (to.major, to.minor))
}

/// One minor back through etcd's downgrade API (`validate`, `enable`, then binaries one member at a
/// time). 3.5 → 3.4 is not here: 3.5 has no downgrade API; etcd's guide replaces binaries only,
/// onto 3.4.32 or later and with auth off (https://etcd.io/docs/v3.5/downgrades/downgrade_3_5/).
pub const DOWNGRADES: &[((u32, u32), &str)] = &[
    (
        (3, 6),
        "https://etcd.io/docs/v3.6/downgrades/downgrade_3_6/",
    ),
    (
        (3, 7),
        "https://etcd.io/docs/v3.7/downgrades/downgrade_3_7/",
    ),
];

/// The downgrade guide for moving a cluster off `from`'s minor, when etcd's API does it.
pub fn downgrade_from(from: Version) -> Option<&'static str> {
    DOWNGRADES
        .iter()
        .find(|(m, _)| *m == (from.major, from.minor))
        .map(|(_, s)| *s)
}

/// What to set instead of a flag that changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instead {
    /// The same setting under another name.
    Flag(&'static str),
    /// An entry of `--feature-gates` (3.6 on), with the flag's own value.
    Gate(&'static str),
    /// Words, when there is no one-for-one replacement.
    Advice(&'static str),
}

/// A flag etcd deprecated (still accepted, with a warning) and later removed (etcd refuses to
/// start with it).
pub struct FlagRule {
    pub flag: &'static str,
    pub deprecated: (u32, u32),
    pub removed: (u32, u32),
    pub instead: Instead,
    pub source: &'static str,
}

const CHANGELOG_35: &str = "https://github.com/etcd-io/etcd/blob/main/CHANGELOG/CHANGELOG-3.5.md";
const GUIDE_36: &str = "https://etcd.io/docs/v3.6/upgrades/upgrade_3_6/";
const GUIDE_37: &str = "https://etcd.io/docs/v3.7/upgrades/upgrade_3_7/";
const V2_ADVICE: &str = "the v2 API is gone; the upgrade guide asks: with --enable-v2 set, run `etcdutl check v2store` \
     on a member's data; with no custom v2 data the flag can be removed, else follow the v2 \
     migration guide (https://etcd.io/docs/v3.4/op-guide/v2-migration/) first";

const fn rule(
    flag: &'static str,
    deprecated: (u32, u32),
    removed: (u32, u32),
    instead: Instead,
    source: &'static str,
) -> FlagRule {
    FlagRule {
        flag,
        deprecated,
        removed,
        instead,
        source,
    }
}

/// 3.4 deprecated, 3.5 removed.
const fn gone35(flag: &'static str, instead: Instead) -> FlagRule {
    rule(flag, (3, 4), (3, 5), instead, CHANGELOG_35)
}

/// 3.5 deprecated, 3.6 removed.
const fn gone36(flag: &'static str, instead: Instead) -> FlagRule {
    rule(flag, (3, 5), (3, 6), instead, GUIDE_36)
}

/// 3.6 renamed (or made a feature gate), 3.7 removed.
const fn renamed36(flag: &'static str, instead: Instead) -> FlagRule {
    rule(flag, (3, 6), (3, 7), instead, GUIDE_37)
}

const PROXY: Instead =
    Instead::Advice("the v2 proxy is gone; run `etcd grpc-proxy` or `etcd gateway` on its own");

/// The flag history from 3.4 on. 3.5 removed what 3.4 deprecated (CHANGELOG-3.5, and etcd 3.5.1
/// says "flag provided but not defined"); 3.6 removed the v2 and proxy flags and renamed the
/// `experimental-` ones or made them feature gates ("Flags removed", "Flags deprecated",
/// "Equivalent flags of v3.5 feature gates"); 3.7 removed every `experimental-` flag ("All
/// deprecated --experimental-* flags have been removed in v3.7").
pub const FLAGS: &[FlagRule] = &[
    gone35("log-output", Instead::Flag("log-outputs")),
    gone35("debug", Instead::Advice("use --log-level=debug")),
    gone35("log-package-levels", Instead::Advice("use --log-level")),
    gone35(
        "experimental-backend-bbolt-freelist-type",
        Instead::Flag("backend-bbolt-freelist-type"),
    ),
    gone36("enable-v2", Instead::Advice(V2_ADVICE)),
    gone36("experimental-enable-v2v3", Instead::Advice(V2_ADVICE)),
    gone36("proxy", PROXY),
    gone36("proxy-failure-wait", PROXY),
    gone36("proxy-refresh-interval", PROXY),
    gone36("proxy-dial-timeout", PROXY),
    gone36("proxy-write-timeout", PROXY),
    gone36("proxy-read-timeout", PROXY),
    renamed36(
        "experimental-bootstrap-defrag-threshold-megabytes",
        Instead::Flag("bootstrap-defrag-threshold-megabytes"),
    ),
    renamed36(
        "experimental-compaction-batch-limit",
        Instead::Flag("compaction-batch-limit"),
    ),
    renamed36(
        "experimental-compact-hash-check-time",
        Instead::Flag("compact-hash-check-time"),
    ),
    renamed36(
        "experimental-compaction-sleep-interval",
        Instead::Flag("compaction-sleep-interval"),
    ),
    renamed36(
        "experimental-corrupt-check-time",
        Instead::Flag("corrupt-check-time"),
    ),
    renamed36(
        "experimental-enable-distributed-tracing",
        Instead::Flag("enable-distributed-tracing"),
    ),
    renamed36(
        "experimental-distributed-tracing-address",
        Instead::Flag("distributed-tracing-address"),
    ),
    renamed36(
        "experimental-distributed-tracing-instance-id",
        Instead::Flag("distributed-tracing-instance-id"),
    ),
    renamed36(
        "experimental-distributed-tracing-sampling-rate",
        Instead::Flag("distributed-tracing-sampling-rate"),
    ),
    renamed36(
        "experimental-distributed-tracing-service-name",
        Instead::Flag("distributed-tracing-service-name"),
    ),
    renamed36(
        "experimental-downgrade-check-time",
        Instead::Flag("downgrade-check-time"),
    ),
    renamed36("experimental-max-learners", Instead::Flag("max-learners")),
    renamed36("experimental-memory-mlock", Instead::Flag("memory-mlock")),
    renamed36(
        "experimental-peer-skip-client-san-verification",
        Instead::Flag("peer-skip-client-san-verification"),
    ),
    renamed36(
        "experimental-snapshot-catchup-entries",
        Instead::Flag("snapshot-catchup-entries"),
    ),
    renamed36(
        "experimental-warning-apply-duration",
        Instead::Flag("warning-apply-duration"),
    ),
    renamed36(
        "experimental-warning-unary-request-duration",
        Instead::Flag("warning-unary-request-duration"),
    ),
    renamed36(
        "experimental-watch-progress-notify-interval",
        Instead::Flag("watch-progress-notify-interval"),
    ),
    renamed36(
        "experimental-compact-hash-check-enabled",
        Instead::Gate("CompactHashCheck"),
    ),
    renamed36(
        "experimental-initial-corrupt-check",
        Instead::Gate("InitialCorruptCheck"),
    ),
    renamed36(
        "experimental-enable-lease-checkpoint",
        Instead::Gate("LeaseCheckpoint"),
    ),
    renamed36(
        "experimental-enable-lease-checkpoint-persist",
        Instead::Gate("LeaseCheckpointPersist"),
    ),
    renamed36(
        "experimental-stop-grpc-service-on-defrag",
        Instead::Gate("StopGRPCServiceOnDefrag"),
    ),
    renamed36(
        "experimental-txn-mode-write-with-shared-buffer",
        Instead::Gate("TxnModeWriteWithSharedBuffer"),
    ),
];

/// Flags that exist only from a version on: the 3.6 names of renamed flags, `--feature-gates`,
/// and what 3.6's guide lists as "Flags added" (and its downgrade guide as "flags not available
/// in v3.5").
const ADDED_36: &[&str] = &[
    "feature-gates",
    "log-format",
    "discovery-token",
    "discovery-endpoints",
    "discovery-dial-timeout",
    "discovery-request-timeout",
    "discovery-keepalive-time",
    "discovery-keepalive-timeout",
    "discovery-insecure-transport",
    "discovery-insecure-skip-tls-verify",
    "discovery-cert",
    "discovery-key",
    "discovery-cacert",
    "discovery-user",
    "discovery-password",
];

/// A flag's fate in a target version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Still accepted, with etcd's deprecation warning: (since, removed in, use instead, source).
    Deprecated(String),
    /// etcd refuses to start with it.
    Removed(String),
    /// Not there yet in the target (a name a later version gave it).
    NotYet(String),
}

impl Instead {
    fn words(&self, value: &str) -> String {
        match self {
            Instead::Flag(f) => format!("use --{f}"),
            Instead::Gate(g) => format!("use --feature-gates={g}={}", gate_value(value)),
            Instead::Advice(a) => a.to_string(),
        }
    }
}

/// A gate's value from the old boolean flag's: `--experimental-x` alone meant true.
fn gate_value(value: &str) -> &str {
    match value.trim() {
        "" => "true",
        v => v,
    }
}

fn minor(m: (u32, u32)) -> String {
    format!("{}.{}", m.0, m.1)
}

/// What etcd `target` does with `--flag=value`: None when it takes it as it is.
pub fn fate(flag: &str, value: &str, target: Version) -> Option<Fate> {
    let t = (target.major, target.minor);
    if let Some(rule) = FLAGS.iter().find(|r| r.flag == flag) {
        let instead = rule.instead.words(value);
        if t >= rule.removed {
            return Some(Fate::Removed(format!(
                "--{flag} was removed in etcd {}: {instead} ({})",
                minor(rule.removed),
                rule.source
            )));
        }
        if t >= rule.deprecated {
            return Some(Fate::Deprecated(format!(
                "--{flag} is deprecated since etcd {} and removed in {}: {instead} ({})",
                minor(rule.deprecated),
                minor(rule.removed),
                rule.source
            )));
        }
        return None;
    }
    if flag.starts_with("experimental-") && t >= (3, 7) {
        return Some(Fate::Removed(format!(
            "--{flag} was removed in etcd 3.7, with every --experimental-* flag ({GUIDE_37}); \
             remove it from etcd_settings / etcd_settings_user"
        )));
    }
    let renamed_from = FLAGS.iter().find(|r| match r.instead {
        Instead::Flag(f) => f == flag && r.deprecated == (3, 6),
        _ => false,
    });
    if t < (3, 6) {
        if let Some(r) = renamed_from {
            return Some(Fate::NotYet(format!(
                "--{flag} exists from etcd 3.6 on; etcd {} calls it --{} ({})",
                target.minor_str(),
                r.flag,
                r.source
            )));
        }
        if ADDED_36.contains(&flag) {
            return Some(Fate::NotYet(format!(
                "--{flag} exists from etcd 3.6 on ({GUIDE_36}); remove it for etcd {}",
                target.minor_str()
            )));
        }
    }
    None
}

/// A default etcd changed that the role's settings override: (flag, from version, etcd's new
/// default, source).
pub const NEW_DEFAULTS: &[(&str, (u32, u32), &str, &str)] =
    &[("snapshot-count", (3, 6), "10000", GUIDE_36)];

/// What to say when the seed sets `flag` to `value` where `target` has another default.
pub fn overridden_default(flag: &str, value: &str, target: Version) -> Option<String> {
    let (_, since, default, source) = NEW_DEFAULTS
        .iter()
        .find(|(f, since, _, _)| *f == flag && (target.major, target.minor) >= *since)?;
    (value.trim() != *default).then(|| {
        format!(
            "{flag} {value} overrides etcd {}'s default of {default} (lowered in {}, {source}): kept as \
             the seed says; set {flag}: \"{default}\" in etcd_settings_user to take etcd's default",
            target.minor_str(),
            minor(*since)
        )
    })
}

#[cfg(test)]
mod tests;
