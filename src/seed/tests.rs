use super::*;
use crate::facts::{Facts, Interface};
use std::path::PathBuf;

fn facts() -> Facts {
    Facts {
        hostname: "etcd-node1".into(),
        nodename: "etcd-node1.example.org".into(),
        machine: "x86_64".into(),
        interfaces: vec![
            Interface {
                name: "lo".into(),
                ipv4: vec!["127.0.0.1".parse().unwrap()],
                ipv6: vec![],
            },
            Interface {
                name: "wg0".into(),
                ipv4: vec!["10.8.0.1".parse().unwrap()],
                ipv6: vec![],
            },
        ],
        home: PathBuf::from("/home/op"),
    }
}

fn resolve(yaml: &str) -> Result<Config> {
    let f = facts();
    let seed = Seed::parse("test.yaml", yaml)?;
    seed.resolve(&f, "10.8.0.1".parse().unwrap())
}

fn err(yaml: &str) -> String {
    let e = resolve(yaml).unwrap_err();
    assert_eq!(
        crate::util::error::exit_code(&e),
        2,
        "seed errors exit 2: {e:#}"
    );
    format!("{e:#}")
}

const MEMBERS: &str = "etcd_members:\n  - {name: etcd-node1, address: 10.8.0.1}\n  - {name: etcd-node2, address: 10.8.0.2}\n  - {name: etcd-node3, address: 10.8.0.3}\n";

#[test]
fn empty_seed_gets_the_role_defaults_for_3_6() {
    let c = resolve("").unwrap();
    assert_eq!(c.release.version, "3.6.14");
    assert_eq!(c.release.architecture, "amd64");
    assert_eq!(
        c.release.download_url,
        "https://github.com/etcd-io/etcd/releases/download/v3.6.14/etcd-v3.6.14-linux-amd64.tar.gz"
    );
    assert_eq!(
        c.release.download_checksum,
        "sha256:https://github.com/etcd-io/etcd/releases/download/v3.6.14/SHA256SUMS"
    );
    assert_eq!(
        c.ca_conf_directory,
        PathBuf::from("/home/op/etcd-certificates")
    );
    assert_eq!(c.settings["logger"], "zap");
    assert_eq!(c.settings["log-outputs"], "systemd/journal");
    assert!(!c.settings.contains_key("enable-v2"), "removed in 3.6");
    assert_eq!(c.settings["cert-file"], "/etc/etcd/cert-etcd-server.pem");
    assert_eq!(
        c.settings["peer-key-file"],
        "/etc/etcd/cert-etcd-peer-key.pem"
    );
    assert_eq!(
        c.settings["listen-client-urls"],
        "https://10.8.0.1:2379,https://127.0.0.1:2379"
    );
    assert_eq!(
        c.settings["initial-cluster"],
        "etcd-node1=https://10.8.0.1:2380"
    );
    assert!(
        !c.certificates.iter().any(|n| n.contains("ca-etcd-key")),
        "no CA key by default"
    );
    assert_eq!(c.service_options[0], "User=etcd");
    assert_eq!(c.this_member.name, "etcd-node1");
}

#[test]
fn the_roles_block_pastes_verbatim() {
    let yaml = format!(
        "{MEMBERS}etcd_settings:\n  \"name\": \"{{{{ ansible_hostname }}}}\"\n  \"advertise-client-urls\": \"{{{{ 'https://' + hostvars[inventory_hostname]['ansible_' + etcd_interface].ipv4.address + ':' + etcd_client_port }}}}\"\n  \"listen-client-urls\": \"{{{{ 'https://' + hostvars[inventory_hostname]['ansible_' + etcd_interface].ipv4.address + ':' + etcd_client_port + ',https://127.0.0.1:' + etcd_client_port }}}}\"\n  \"data-dir\": \"{{{{ etcd_data_dir }}}}\"\n  \"wal-dir\": \"\"\n  \"peer\": \"{{{{ ansible_facts['wg0'].ipv4.address }}}}\"\n"
    );
    let c = resolve(&yaml).unwrap();
    assert_eq!(c.settings["name"], "etcd-node1");
    assert_eq!(c.settings["advertise-client-urls"], "https://10.8.0.1:2379");
    assert_eq!(
        c.settings["listen-client-urls"],
        "https://10.8.0.1:2379,https://127.0.0.1:2379"
    );
    assert_eq!(c.settings["data-dir"], "/var/lib/etcd");
    assert_eq!(c.settings["wal-dir"], "");
    assert_eq!(c.settings["peer"], "10.8.0.1");
    assert_eq!(
        c.settings["initial-cluster"],
        "etcd-node1=https://10.8.0.1:2380,etcd-node2=https://10.8.0.2:2380,etcd-node3=https://10.8.0.3:2380"
    );
    // etcd_settings given replaces the defaults whole, as group_vars do.
    assert!(!c.settings.contains_key("logger"));
}

#[test]
fn settings_user_merges_over_settings_and_vars_refer_to_each_other() {
    let c = resolve("etcd_version: \"3.5.{{ minor }}\"\n");
    assert!(c.is_err());
    let c = resolve(
        "etcd_conf_dir: \"/etc/{{ etcd_service_name }}\"\netcd_service_name: etcd-main\netcd_version: v3.5.1\n\
         etcd_settings_user:\n  log-outputs: stderr\n  grpc-keepalive-min-time: 10s\n  wal-dir: /wal\n",
    )
    .unwrap();
    assert_eq!(c.conf_dir, PathBuf::from("/etc/etcd-main"));
    assert_eq!(
        c.settings["cert-file"],
        "/etc/etcd-main/cert-etcd-server.pem"
    );
    assert_eq!(c.settings["log-outputs"], "stderr");
    assert_eq!(c.settings["grpc-keepalive-min-time"], "10s");
    assert_eq!(c.settings["wal-dir"], "/wal");
    assert_eq!(c.settings["logger"], "zap", "other defaults stay");
    assert_eq!(c.release.version, "3.5.1", "a leading v is dropped");
}

#[test]
fn numbers_and_booleans_are_taken_as_text() {
    let c = resolve("etcd_client_port: 12379\netcd_settings_user:\n  client-cert-auth: true\n  snapshot-count: 5000\n  wal-dir:\n").unwrap();
    assert_eq!(c.client_port, 12379);
    assert_eq!(c.settings["client-cert-auth"], "true");
    assert_eq!(c.settings["snapshot-count"], "5000");
    assert_eq!(c.settings["wal-dir"], "");
    assert_eq!(
        c.settings["advertise-client-urls"],
        "https://10.8.0.1:12379"
    );
}

#[test]
fn k8s_ca_conf_directory_is_accepted() {
    let c = resolve("k8s_ca_conf_directory: /srv/certs\n").unwrap();
    assert_eq!(c.ca_conf_directory, PathBuf::from("/srv/certs"));
}

#[test]
fn this_node_is_found_by_address_then_by_name() {
    let c = resolve(MEMBERS).unwrap();
    assert_eq!(c.this_member.name, "etcd-node1");
    let by_name = "etcd_members:\n  - {name: etcd-node1, address: node1.example.org}\n  - {name: b, address: 10.8.0.2}\n";
    assert_eq!(
        resolve(by_name).unwrap().this_member.address,
        "node1.example.org"
    );
}

#[test]
fn not_a_member_lists_members_and_facts() {
    let e =
        err("etcd_members:\n  - {name: a, address: 10.8.0.7}\n  - {name: b, address: 10.8.0.8}\n");
    assert!(e.contains("line 1 column 1"), "{e}");
    assert!(
        e.contains("its address is 10.8.0.1 and its hostname etcd-node1"),
        "{e}"
    );
    assert!(e.contains("a (10.8.0.7), b (10.8.0.8)"), "{e}");
}

#[test]
fn duplicate_members_are_refused() {
    let e =
        err("etcd_members:\n  - {name: a, address: 10.8.0.1}\n  - {name: a, address: 10.8.0.2}\n");
    assert!(e.contains("member name a is listed twice"), "{e}");
    let e = err(
        "etcd_members:\n  - {name: a, address: 10.8.0.1}\n  - {name: b, address: \"10.8.0.1\"}\n",
    );
    assert!(e.contains("unique"), "{e}");
}

#[test]
fn unknown_keys_and_wrong_types_have_line_and_column() {
    let e = err("etcd_version: \"3.5.1\"\netcd_intreface: wg0\n");
    assert!(
        e.contains("test.yaml line 2 column 1: unknown field `etcd_intreface`"),
        "{e}"
    );
    let e = err("etcd_members:\n  - name: a\n    adress: 10.0.0.1\n");
    assert!(e.contains("unknown field `adress`"), "{e}");
    assert!(e.contains("line 3"), "{e}");
    let e = err("etcd_certificates: ca.pem\n");
    assert!(e.contains("line 1 column"), "{e}");
    let e = err("etcd_settings: [a, b]\n");
    assert!(e.contains("line 1 column"), "{e}");
    let e = err("etcd_version: \"3.5\nbroken: [\n");
    assert!(e.contains("line"), "{e}");
}

#[test]
fn template_errors_name_the_key_the_place_and_the_variable() {
    let e = err("etcd_settings_user:\n  name: \"{{ ansible_hostnme }}\"\n");
    assert!(e.contains("line 2 column 10: etcd_settings.name"), "{e}");
    assert!(e.contains("undefined variable ansible_hostnme"), "{e}");
    let e = err("etcd_settings_user:\n  name: \"{{ ansible_hostname \"\n");
    assert!(e.contains("etcd_settings.name: template error"), "{e}");
    let e = err("etcd_data_dir: \"{{ etcd_conf_dir }}\"\netcd_conf_dir: \"{{ etcd_data_dir }}\"\n");
    assert!(e.contains("never settle"), "{e}");
}

#[test]
fn values_are_checked() {
    assert!(err("etcd_client_port: 70000\n").contains("not a port number"));
    assert!(err("etcd_conf_dir: etc/etcd\n").contains("must be an absolute path"));
    assert!(err("etcd_user: \"etcd; rm -rf /\"\n").contains("plain word"));
    // Resolved once to a version: what every comparison of versions uses.
    let e = err("etcd_version: banana\n");
    assert!(
        e.contains("line 1 column 15: etcd_version: is not an etcd version"),
        "{e}"
    );
    assert!(err("etcd_certificates: [../../etc/shadow]\n").contains("is not a plain name"));
    assert!(
        err("etcd_members: [{name: /some/dir, address: 10.8.0.1}]\n")
            .contains("etcd_members[0].name: is not a plain name")
    );
    assert!(err("etcd_certificate_data: {\"a\\rb.pem\": x}\n")
        .contains("etcd_certificate_data: a key is not a plain name"));
    assert!(
        err("etcd_service_options: [\"no equals sign\"]\n").contains("not a systemd option line")
    );
    assert!(err("etcd_settings_user:\n  \"bad key\": x\n").contains("not an etcd flag name"));
}

#[test]
fn ipv6_addresses_are_bracketed_in_urls() {
    let f = facts();
    let seed = Seed::parse(
        "t",
        "etcd_members:\n  - {name: a, address: \"fd00::1\"}\n  - {name: b, address: \"fd00::2\"}\n",
    )
    .unwrap();
    let c = seed.resolve(&f, "fd00::1".parse().unwrap()).unwrap();
    assert_eq!(
        c.settings["advertise-client-urls"],
        "https://[fd00::1]:2379"
    );
    assert_eq!(
        c.settings["initial-cluster"],
        "a=https://[fd00::1]:2380,b=https://[fd00::2]:2380"
    );
}

#[test]
fn discovery_srv_or_explicit_initial_cluster_is_kept() {
    let c = resolve(&format!(
        "{MEMBERS}etcd_settings_user:\n  discovery-srv: example.org\n"
    ))
    .unwrap();
    assert!(!c.settings.contains_key("initial-cluster"));
    let c =
        resolve("etcd_settings_user:\n  initial-cluster: \"x=https://1.2.3.4:2380\"\n").unwrap();
    assert_eq!(c.settings["initial-cluster"], "x=https://1.2.3.4:2380");
}

#[test]
fn interface_and_address_override() {
    let f = facts();
    let s = Seed::parse(
        "t",
        "etcd_interface: \"{{ 'w' + 'g1' }}\"\netcd_address: 10.9.9.9\n",
    )
    .unwrap();
    let (iface, addr) = s.interface_and_override(&f).unwrap();
    assert_eq!(iface, "wg1");
    assert_eq!(addr, Some("10.9.9.9".parse().unwrap()));
    let s = Seed::parse("t", "etcd_address: not-an-ip\n").unwrap();
    assert!(
        format!("{:#}", s.interface_and_override(&f).unwrap_err()).contains("is not an IP address")
    );
}

#[test]
fn release_needs_no_interface() {
    let mut f = facts();
    f.interfaces.clear();
    let s = Seed::parse("t", "etcd_version: 3.5.1\netcd_architecture: arm64\n").unwrap();
    let r = s.release(&f).unwrap();
    assert!(
        r.download_url
            .ends_with("/v3.5.1/etcd-v3.5.1-linux-arm64.tar.gz"),
        "{}",
        r.download_url
    );
}

#[test]
fn day2_keys_resolve_with_defaults_and_join_follows_the_cluster_state() {
    let c = resolve(MEMBERS).unwrap();
    assert!(c.join.is_none() && c.backup.is_none() && c.restore.is_none());
    let c = resolve(&format!(
        "{MEMBERS}etcd_settings_user: {{initial-cluster-state: existing}}\n\
         etcd_join_as_learner: yes\netcd_replace_member: \"{{{{ 'etcd-node' ~ 9 }}}}\"\n\
         etcd_backup: {{}}\n"
    ))
    .unwrap();
    assert_eq!(
        c.join,
        Some(JoinSpec {
            as_learner: true,
            replace: Some("etcd-node9".into()),
            timeout: std::time::Duration::from_secs(600),
            replace_grace: std::time::Duration::from_secs(60),
        })
    );
    assert_eq!(
        c.backup,
        Some(BackupSpec {
            dir: PathBuf::from("/var/backups/etcd"),
            interval: std::time::Duration::from_secs(3600),
            keep: 24,
            offsite: None,
        })
    );
    let sha = "ab".repeat(32);
    let c = resolve(&format!(
        "{MEMBERS}etcd_restore: {{snapshot: https://backups.example/s.db, sha256: \"{}\"}}\n",
        sha.to_uppercase()
    ))
    .unwrap();
    assert_eq!(
        c.restore,
        Some(RestoreSpec {
            snapshot: "https://backups.example/s.db".into(),
            sha256: sha,
            keep: false,
        })
    );
}

#[test]
fn maintenance_is_on_by_default_and_each_key_can_be_set() {
    use crate::seed::MaintenanceSpec;
    let c = resolve(MEMBERS).unwrap();
    assert_eq!(
        c.maintenance,
        MaintenanceSpec {
            enabled: true,
            interval: std::time::Duration::from_secs(6 * 3600),
            fragmentation: 50,
            min_db_size: 100 << 20,
            compact_keep_revisions: 0,
        }
    );
    let c = resolve(&format!(
        "{MEMBERS}etcd_maintenance: {{interval: 2h, fragmentation: \"30%\", min_db_size: 1GiB, \
         compact_keep_revisions: 1000}}\n"
    ))
    .unwrap();
    let m = c.maintenance;
    assert_eq!(
        (
            m.interval.as_secs(),
            m.fragmentation,
            m.min_db_size,
            m.compact_keep_revisions
        ),
        (7200, 30, 1 << 30, 1000)
    );
    let c = resolve(&format!("{MEMBERS}etcd_metrics_textfile_dir: \"\"\n")).unwrap();
    assert_eq!(c.textfile_dir, None, "empty: no metrics file");
    let c = resolve(MEMBERS).unwrap();
    assert_eq!(
        c.textfile_dir.as_deref(),
        Some(std::path::Path::new("/var/lib/prometheus/node-exporter"))
    );
    let c = resolve(&format!("{MEMBERS}etcd_maintenance: {{enabled: false}}\n")).unwrap();
    assert!(!c.maintenance.enabled);
    // The quota etcd runs with: 0 (the role's default) is etcd's 2 GiB.
    assert_eq!((c.quota().bytes, c.quota().default), (2 << 30, true));
    assert_eq!(
        c.quota().to_string(),
        "2.0 GiB (etcd's default: quota-backend-bytes is 0)"
    );
    let c = resolve(&format!(
        "{MEMBERS}etcd_settings_user: {{quota-backend-bytes: \"8589934592\"}}\n"
    ))
    .unwrap();
    assert_eq!((c.quota().bytes, c.quota().default), (8 << 30, false));
    assert_eq!(c.quota().to_string(), "8.0 GiB");
}

#[test]
fn day2_mistakes_are_seed_errors_with_their_place() {
    let sha = "0".repeat(64);
    for (yaml, want) in [
        (
            format!("{MEMBERS}etcd_replace_member: etcd-node3\n"),
            "line 5 column 22: etcd_replace_member: replacing a member joins a running cluster",
        ),
        (
            format!(
                "{MEMBERS}etcd_settings_user: {{initial-cluster-state: existing}}\n\
                 etcd_restore: {{snapshot: /s.db, sha256: \"{sha}\"}}\n"
            ),
            "etcd_restore: a restore starts a new cluster from the snapshot",
        ),
        (
            format!("{MEMBERS}etcd_restore: {{snapshot: /s.db, sha256: abc}}\n"),
            "etcd_restore.sha256: must be the snapshot's sha256",
        ),
        (
            format!("{MEMBERS}etcd_restore: {{snapshot: s.db, sha256: \"{sha}\"}}\n"),
            "line 5 column 26: etcd_restore.snapshot: must be an absolute path",
        ),
        (
            format!("{MEMBERS}etcd_backup: {{interval: 10s}}\n"),
            "etcd_backup.interval: must be a duration of at least 1m",
        ),
        (
            format!("{MEMBERS}etcd_backup: {{keep: some}}\n"),
            "etcd_backup.keep: must be a number",
        ),
        (
            format!("{MEMBERS}etcd_backup: {{dir: backups}}\n"),
            "etcd_backup.dir: must be an absolute path",
        ),
        (
            format!("{MEMBERS}etcd_metrics_textfile_dir: metrics\n"),
            "etcd_metrics_textfile_dir: must be an absolute path",
        ),
        (
            format!("{MEMBERS}etcd_backup: {{dir: /b, every: 1h}}\n"),
            "unknown field `every`",
        ),
        (
            format!("{MEMBERS}etcd_maintenance: {{fragmentation: 100}}\n"),
            "etcd_maintenance.fragmentation: must be a percentage from 1 to 99",
        ),
        (
            format!("{MEMBERS}etcd_maintenance: {{min_db_size: lots}}\n"),
            "etcd_maintenance.min_db_size: must be a size like 100MiB",
        ),
        (
            format!("{MEMBERS}etcd_maintenance: {{interval: 5s}}\n"),
            "etcd_maintenance.interval: must be a duration of at least 1m",
        ),
        (
            format!("{MEMBERS}etcd_maintenance: {{enabled: sometimes}}\n"),
            "etcd_maintenance.enabled: must be true or false",
        ),
        (
            format!("{MEMBERS}etcd_maintenance: {{compact_keep_revisions: -1}}\n"),
            "etcd_maintenance.compact_keep_revisions: must be a number of revisions",
        ),
        (
            format!("{MEMBERS}etcd_maintenance: {{every: 1h}}\n"),
            "unknown field `every`",
        ),
        (
            format!("{MEMBERS}etcd_join_as_learner: maybe\n"),
            "etcd_join_as_learner: must be true or false",
        ),
        (
            format!("{MEMBERS}etcd_settings_user: {{initial-cluster-state: exists}}\n"),
            "initial-cluster-state: must be new or existing",
        ),
    ] {
        let e = err(&yaml);
        assert!(e.contains(want), "{yaml}\n=> {e}\nwanted: {want}");
    }
}

#[test]
fn offsite_keys_resolve_and_each_mistake_names_its_key() {
    let seed = |o: &str| {
        resolve(&format!(
            "{MEMBERS}etcd_backup: {{interval: 1h, offsite: {{{o}}}}}\n"
        ))
    };
    let c = seed("url: \"https://s3.example.net:9000/etcd-backups/prod\", credentials: /etc/etcd-bootstrap/s3, keep_daily: 14")
        .unwrap();
    let o = c.backup.unwrap().offsite.unwrap();
    assert_eq!(o.endpoint, "https://s3.example.net:9000");
    assert_eq!(
        (o.bucket.as_str(), o.prefix.as_str()),
        ("etcd-backups", "prod")
    );
    assert_eq!(
        (o.keep, o.keep_daily, o.profile.as_str()),
        (30, 14, "default")
    );
    assert_eq!(o.timeout, std::time::Duration::from_secs(600));
    assert!(o.recipients.is_empty());
    for (bad, key) in [
        (
            "url: \"http://s3.example.net/b\", credentials: /c",
            "etcd_backup.offsite.url",
        ),
        ("credentials: /c", "etcd_backup.offsite.url"),
        ("url: s3://bucket", "etcd_backup.offsite.credentials"),
        (
            "url: s3://bucket, credentials: relative",
            "etcd_backup.offsite.credentials",
        ),
        (
            "url: s3://bucket, credentials: /c, keep: 0",
            "etcd_backup.offsite.keep",
        ),
        (
            "url: s3://bucket, credentials: /c, timeout: 1s",
            "etcd_backup.offsite.timeout",
        ),
        (
            "url: s3://bucket, credentials: /c, region: \"a b\"",
            "etcd_backup.offsite.region",
        ),
        (
            "url: s3://bucket, credentials: /c, recipients: [age1x]",
            "etcd_backup.offsite.recipients[0]",
        ),
        (
            // The last character changed: its checksum fails.
            "url: s3://bucket, credentials: /c, recipients: [age13fcarhkqeuhn3vfk77c4w82fwuw06mnvqfc97r9dq4t2skzq53lsp2l46v]",
            "checksum",
        ),
    ] {
        let e = format!("{:#}", seed(bad).unwrap_err());
        assert!(e.contains(key), "{bad}: {e}");
        assert_eq!(
            crate::util::error::exit_code(&seed(bad).unwrap_err()),
            2,
            "{bad}"
        );
    }
    let e = format!(
        "{:#}",
        seed("url: s3://b, credentials: /c, secret: x").unwrap_err()
    );
    assert!(e.contains("secret"), "{e}");
}

#[test]
fn offsite_recipients_are_checked_age_keys_and_an_identity_is_refused_unechoed() {
    let seed = |o: &str| {
        resolve(&format!(
            "{MEMBERS}etcd_backup: {{interval: 1h, offsite: {{{o}}}}}\n"
        ))
    };
    const R: &str = "age13fcarhkqeuhn3vfk77c4w82fwuw06mnvqfc97r9dq4t2skzq53lsp2l46u";
    let o = seed(&format!(
        "url: s3://bucket, credentials: /c, recipients: [{R}, {R}]"
    ))
    .unwrap()
    .backup
    .unwrap()
    .offsite
    .unwrap();
    assert_eq!(o.recipients.len(), 1, "one recipient named twice is one");
    let secret = "AGE-SECRET-KEY-1W7VMJRPMQ5P8QZM0PDCYN072YWM9UZAYFPGQVSKKE5EJAUPW4XCQJ68CCF";
    let e = format!(
        "{:#}",
        seed(&format!(
            "url: s3://bucket, credentials: /c, recipients: [{secret}]"
        ))
        .unwrap_err()
    );
    assert!(
        e.contains("recipients[0]") && e.contains("age-keygen -y"),
        "{e}"
    );
    assert!(!e.contains(&secret[15..]), "the identity is echoed: {e}");
}
