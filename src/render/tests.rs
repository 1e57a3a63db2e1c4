use super::*;
use crate::facts::{Facts, Interface};
use crate::seed::Config;
use crate::seed::Seed;

fn config(yaml: &str) -> Config {
    let f = Facts {
        hostname: "n1".into(),
        nodename: "n1".into(),
        machine: "x86_64".into(),
        interfaces: vec![Interface {
            name: "wg0".into(),
            ipv4: vec!["10.8.0.1".parse().unwrap()],
            ipv6: vec![],
        }],
        home: "/root".into(),
    };
    Seed::parse("t", yaml)
        .unwrap()
        .resolve(&f, "10.8.0.1".parse().unwrap())
        .unwrap()
}

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
