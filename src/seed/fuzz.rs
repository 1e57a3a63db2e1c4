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

/// Seed-shaped text: known keys with random values, so the fuzzer gets past the schema.
fn seedish() -> impl Strategy<Value = String> {
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
    prop::collection::vec((key, value), 0..6)
        .prop_map(|kv| kv.into_iter().map(|(k, v)| format!("{k}: {v}\n")).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn any_text_parses_or_fails_cleanly(text in any::<String>()) {
        if let Err(e) = Seed::parse("fuzz", &text) {
            prop_assert_eq!(crate::util::error::exit_code(&e), 2);
        }
    }

    #[test]
    fn seed_shaped_text_resolves_or_fails_cleanly(text in seedish()) {
        if let Ok(seed) = Seed::parse("fuzz", &text) {
            // A refusal is a seed error (exit 2) naming where: never a panic, never exit 1.
            for e in [
                seed.resolve(&facts(), "10.8.0.1".parse().unwrap()).err(),
                seed.release(&facts()).err(),
            ]
            .into_iter()
            .flatten()
            {
                prop_assert_eq!(crate::util::error::exit_code(&e), 2, "{:#}", e);
                prop_assert!(format!("{e:#}").starts_with("seed fuzz"), "{:#}", e);
            }
        }
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
