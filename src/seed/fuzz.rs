//! Property tests (a short fuzzing run in every `make test`). They prove no more than this: the
//! seed parser and resolver take any input without panicking, any refusal is a seed error (exit
//! 2) that says which seed, and hostile YAML (an alias bomb) is refused. They check no output
//! value.

use super::*;
use crate::facts::Facts;
use proptest::prelude::*;

fn facts() -> Facts {
    Facts {
        hostname: "n1".into(),
        nodename: "n1".into(),
        machine: "x86_64".into(),
        interfaces: vec![],
        home: "/root".into(),
    }
}

/// Seed-shaped text: known keys with random values, or with values an operator would write, so
/// the fuzzer gets past the schema and often all the way through `resolve`.
fn seedish() -> impl Strategy<Value = String> {
    let good = prop::sample::select(vec![
        "etcd_version: \"3.5.1\"",
        "etcd_interface: wg0",
        "etcd_client_port: 2379",
        "etcd_settings_user: {heartbeat-interval: \"150\"}",
        "etcd_members: [{name: n1, address: 10.8.0.1}]",
        "etcd_certificates: []",
        "etcd_download_url_checksum: \"sha256:https://example.net/SHA256SUMS\"",
    ])
    .prop_map(|l| format!("{l}\n"));
    let key = prop::sample::select(vec![
        "etcd_version",
        "etcd_interface",
        "etcd_settings_user",
        "etcd_members",
        "etcd_client_port",
        "etcd_certificates",
        "etcd_download_url_checksum",
        "nonsense",
    ]);
    let value = prop::string::string_regex("[-a-z0-9{}%:\\[\\]'\" .,|*&!]{0,40}").unwrap();
    let random = (key, value).prop_map(|(k, v)| format!("{k}: {v}\n"));
    // Well-formed YAML that resolve must refuse.
    let wrong = prop::sample::select(vec![
        "etcd_client_port: 99999",
        "etcd_version: \"banana\"",
        "etcd_members: [{name: \"a/b\", address: 10.8.0.1}]",
        "etcd_download_url_checksum: \"md5:abc\"",
        "etcd_data_dir: /etc/profile.d",
        "etcd_settings_user: {quota-backend-bytes: \"x\r\"}",
    ])
    .prop_map(|l| format!("{l}\n"));
    let line = prop_oneof![3 => good, 3 => wrong, 1 => random];
    prop::collection::vec(line, 0..5).prop_map(|lines| lines.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn any_text_parses_or_fails_cleanly(text in any::<String>()) {
        if let Err(e) = Seed::parse("fuzz", &text) {
            prop_assert_eq!(crate::util::error::exit_code(&e), 2);
        }
    }
}

/// Seed-shaped text resolves, or is refused as a seed error naming the seed; never a panic, never
/// exit 1. Each outcome (refused by the parser, resolved, refused by `resolve`) is reached in at
/// least a tenth of the cases, so none is proven by a handful of draws.
#[test]
fn seed_shaped_text_resolves_or_fails_cleanly() {
    use proptest::test_runner::{Config, TestRunner};
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    const CASES: u32 = 400;
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let [parse_refused, resolved, resolve_refused] = [(); 3].map(|_| AtomicUsize::new(0));
    runner
        .run(&seedish(), |text| {
            let Ok(seed) = Seed::parse("fuzz", &text) else {
                parse_refused.fetch_add(1, Relaxed);
                return Ok(());
            };
            let errors: Vec<_> = [
                seed.resolve(&facts(), "10.8.0.1".parse().unwrap()).err(),
                seed.release(&facts()).err(),
            ]
            .into_iter()
            .flatten()
            .collect();
            if errors.is_empty() {
                resolved.fetch_add(1, Relaxed);
            } else {
                resolve_refused.fetch_add(1, Relaxed);
            }
            for e in errors {
                prop_assert_eq!(crate::util::error::exit_code(&e), 2, "{:#}", e);
                prop_assert!(format!("{e:#}").starts_with("seed fuzz"), "{:#}", e);
            }
            Ok(())
        })
        .unwrap();
    for (what, n) in [
        ("refused by the parser", &parse_refused),
        ("resolved", &resolved),
        ("refused by resolve", &resolve_refused),
    ] {
        let n = n.load(Relaxed);
        eprintln!("seed property: {what} in {n} of {CASES} cases");
        assert!(n * 10 >= CASES as usize, "{what}: {n} of {CASES} cases");
    }
}

#[test]
fn alias_bombs_are_refused() {
    let mut y = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        y.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    y.push_str("etcd_certificates: *a11\n");
    let e = Seed::parse("bomb", &y).unwrap_err();
    assert_eq!(crate::util::error::exit_code(&e), 2, "{e:#}");
}
