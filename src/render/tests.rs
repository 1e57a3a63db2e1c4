use super::*;
use crate::seed::testing::{config, facts};
use crate::seed::Seed;

#[test]
fn empty_settings_render_no_flag() {
    let mut s = std::collections::BTreeMap::new();
    s.insert("b".to_string(), "2".to_string());
    s.insert("a".to_string(), "1".to_string());
    s.insert("wal-dir".to_string(), String::new());
    let f = flags(&s);
    assert_eq!(
        f.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        vec!["a", "b"]
    );
}

#[test]
fn unit_has_options_ordering_and_sorted_flags() {
    let u = unit(&config(""));
    assert!(
        u.contains(
            "\nWants=network-online.target\nAfter=network-online.target wg-quick@wg0.service\n"
        ),
        "{u}"
    );
    assert!(u.contains("\nUser=etcd\nGroup=etcd\n"), "{u}");
    assert_eq!(u.matches("Type=notify").count(), 1, "{u}");
    assert!(u.contains("\nTimeoutStartSec=0\n"), "{u}");
    assert!(u.contains("ExecStart=/usr/local/bin/etcd \\\n  --advertise-client-urls=\"https://10.8.0.1:2379\" \\\n"), "{u}");
    assert!(u.ends_with("  --trusted-ca-file=\"/etc/etcd/ca-etcd.pem\"\n\n[Install]\nWantedBy=multi-user.target\n"), "{u}");
    assert!(!u.contains("wal-dir"));
}

#[test]
fn seed_options_override_type_and_timeout() {
    let u = unit(&config(
        "etcd_service_options: [\"Type=simple\", \"TimeoutStartSec=90\"]\n",
    ));
    assert!(!u.contains("Type=notify"), "{u}");
    assert!(!u.contains("TimeoutStartSec=0"), "{u}");
    assert!(
        !u.contains("User="),
        "the seed's list replaces the role's: {u}"
    );
}

#[test]
fn exec_start_quoting_roundtrips() {
    let weird = "a \"quoted\" back\\slash 100% $HOME";
    let u = unit(&config(&format!(
        "etcd_settings_user:\n  initial-cluster-token: '{}'\n",
        weird.replace('\'', "''")
    )));
    let argv = parse_exec_start(&u).unwrap();
    assert_eq!(argv[0], "/usr/local/bin/etcd");
    assert!(
        argv.contains(&format!("--initial-cluster-token={weird}")),
        "{argv:?}"
    );
    assert!(argv.contains(&"--name=n1".to_string()), "{argv:?}");
}

/// Whatever reaches the quoting (the seed refuses control characters, the join refuses a member
/// list holding them), no character ends a unit line: each is a C escape systemd reads back.
#[test]
fn control_characters_are_escaped_in_a_unit_word() {
    let q = crate::render::systemd_quote("n2\r--data-dir=/etc\n\t\u{1b}x");
    assert_eq!(q, "\"n2\\r--data-dir=/etc\\n\\t\\u001bx\"");
    assert!(!q.chars().any(char::is_control));
    let argv = parse_exec_start(&format!("ExecStart=/x --a={q}\n")).unwrap();
    assert_eq!(argv[1], "--a=n2\r--data-dir=/etc\n\t\u{1b}x");
}

#[test]
fn etcdctl_env_prefers_a_client_certificate() {
    let e = etcdctl_env(&config(""));
    assert!(
        e.contains("ETCDCTL_CERT=/etc/etcd/cert-etcd-server.pem\n"),
        "{e}"
    );
    let e = etcdctl_env(&config(
        "etcd_certificates: [ca-etcd.pem, cert-etcd-client.pem, cert-etcd-client-key.pem]\n",
    ));
    assert!(e.contains("ETCDCTL_CERT=/etc/etcd/cert-etcd-client.pem\nETCDCTL_KEY=/etc/etcd/cert-etcd-client-key.pem\n"), "{e}");
    assert!(
        e.contains("ETCDCTL_ENDPOINTS=https://10.8.0.1:2379\n"),
        "{e}"
    );
    assert!(e.contains("ETCDCTL_API=3\n"), "{e}");
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    /// A single-quoted YAML scalar holding `s`.
    fn yaml_quote(s: &str) -> String {
        format!("'{}'", s.replace('\'', "''"))
    }

    fn seed(value: &str, option: &str) -> String {
        format!(
            "etcd_settings_user:\n  initial-cluster-token: {}\n\
             etcd_service_options: [{}]\netcd_bin_dir: {}\n",
            yaml_quote(value),
            yaml_quote(&format!("Environment=A={option}")),
            yaml_quote(&format!("/opt/{}", option.replace('/', "_")))
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, .. ProptestConfig::default() })]

        /// Whatever a value holds (control characters are refused as seed errors), the unit has
        /// exactly one ExecStart, every line is a directive the tool writes, and the flag reads
        /// back as written.
        #[test]
        fn any_value_renders_one_exec_start_and_nothing_else(
            value in "[^\\x00-\\x1f\\x7f]{1,40}",
            option in "[^\\x00-\\x1f\\x7f]{0,20}",
        ) {
            let f = facts();
            let cfg = match Seed::parse("t", &seed(&value, &option))
                .and_then(|s| s.resolve(&f, "10.8.0.1".parse().unwrap()))
            {
                Ok(cfg) => cfg,
                Err(e) => {
                    // Refused, then only as a seed error (exit 2) saying where: nothing rendered.
                    prop_assert_eq!(crate::util::error::exit_code(&e), 2, "{:#}", e);
                    prop_assert!(format!("{e:#}").starts_with("seed t"), "{:#}", e);
                    return Ok(());
                }
            };
            let u = unit(&cfg);
            let mut exec = 0;
            let mut in_exec = false;
            for line in u.lines() {
                if in_exec {
                    in_exec = line.ends_with('\\');
                    continue;
                }
                if line.starts_with("ExecStart=") {
                    exec += 1;
                    in_exec = line.ends_with('\\');
                    continue;
                }
                let known = line.is_empty()
                    || line.starts_with('#')
                    || line.starts_with('[')
                    || ["Description=", "Documentation=", "Wants=", "After=", "Type=",
                        "TimeoutStartSec=", "WantedBy=", "Environment=A="]
                        .iter()
                        .any(|p| line.starts_with(p));
                prop_assert!(known, "unexpected line {:?} in\n{}", line, u);
            }
            prop_assert_eq!(exec, 1);
            let argv = parse_exec_start(&u).unwrap();
            // As the seed parser read it (YAML folds its own line breaks, U+0085 among them); an
            // empty value renders no flag at all.
            let set = &cfg.settings["initial-cluster-token"];
            if set.is_empty() {
                prop_assert!(!argv.iter().any(|a| a.starts_with("--initial-cluster-token")));
            } else {
                let want = format!("--initial-cluster-token={set}");
                prop_assert!(argv.contains(&want), "{:?} not in {:?}", want, argv);
            }
        }

        #[test]
        fn control_characters_are_seed_errors(
            before in "[a-z]{0,5}",
            c in prop::sample::select(vec!['\r', '\n', '\t', '\x1b', '\x7f', '\0']),
        ) {
            let f = facts();
            // YAML's own escape for the character, inside double quotes.
            let text = format!(
                "etcd_service_options: [\"Environment=A={before}\\x{:02x}x\"]\n",
                c as u32
            );
            let e = Seed::parse("t", &text)
                .and_then(|s| s.resolve(&f, "10.8.0.1".parse().unwrap()))
                .unwrap_err();
            prop_assert_eq!(crate::util::error::exit_code(&e), 2);
            let msg = format!("{:#}", e);
            prop_assert!(msg.contains("etcd_service_options[0]: contains a control character"), "{}", msg);
        }
    }
}
