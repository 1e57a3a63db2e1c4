//! `pki` and `node-config`: a cluster from one cluster file; every certificate read back by
//! OpenSSL (another implementation); renewal that keeps what is still good; bad input.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

fn pki(args: &[&str]) -> std::process::Output {
    run(Command::new(bin()).arg("pki").args(args))
}

fn openssl_text(cert: &Path) -> String {
    ok(Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(cert))
}

/// Every file under `dir` with its content, for byte-for-byte comparisons.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_cluster_from_pki_and_node_config_seeds_is_healthy_and_check_is_clean() {
    let mut c = Cluster::new(3, &file_release("3.5.1"));
    for i in 0..3 {
        let name = member(i).0;
        let out = run(Command::new(bin())
            .args(["node-config", "--format", "seed", "--seed"])
            .arg(&c.seed)
            .arg("--pki")
            .arg(&c.pki.dir)
            .args(["--node", &name]));
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("etcd_bootstrap.seed_sha256="),
            "{}",
            stderr(&out)
        );
        let seed = c.dir.path().join(format!("{name}.yaml"));
        fs::write(&seed, stdout(&out)).unwrap();
        // The node's certificates travel in its seed only.
        fs::remove_dir_all(c.roots[i].path().join("srv/pki")).unwrap();
        let out = run(&mut c.tool(i, &seed, "apply", &[]));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for i in 0..3 {
        c.start(i);
    }
    for i in 0..3 {
        c.nodes[i].wait_healthy(&c.pki, &c.log(i));
    }
    for i in 0..3 {
        let seed = c.dir.path().join(format!("{}.yaml", member(i).0));
        let out = run(&mut c.tool(i, &seed, "check", &[]));
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        let text = stdout(&out);
        let bad: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("error") || l.starts_with("warning"))
            .collect();
        assert!(bad.is_empty(), "{text}");
    }
}

#[test]
fn openssl_reads_every_certificate_as_issued_for_ipv6_and_dns_names_too() {
    let dir = scratch("pki");
    let seed = dir.path().join("cluster.yaml");
    fs::write(
        &seed,
        "etcd_members:\n  - {name: etcd-node1, address: 10.8.0.1}\n  - {name: etcd-node2, address: \"fd00::2\"}\n\
         etcd_settings_user:\n  advertise-client-urls: \"https://{{ etcd_address_url }}:2379,https://{{ etcd_member_name }}.etcd.example.test:2379\"\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = pki(&[
        "--seed",
        seed.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--days",
        "90",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ca = out_dir.join("ca-etcd.pem");
    let expect = [
        (
            "etcd-node1/cert-etcd-server.pem",
            "IP Address:10.8.0.1, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:etcd-node1.etcd.example.test",
            "TLS Web Server Authentication",
        ),
        ("etcd-node1/cert-etcd-peer.pem", "IP Address:10.8.0.1, DNS:etcd-node1", "TLS Web Server Authentication, TLS Web Client Authentication"),
        ("etcd-node2/cert-etcd-server.pem", "IP Address:FD00:0:0:0:0:0:0:2, IP Address:127.0.0.1", "TLS Web Server Authentication"),
        ("etcd-node2/cert-etcd-peer.pem", "IP Address:FD00:0:0:0:0:0:0:2, DNS:etcd-node2", "TLS Web Server Authentication, TLS Web Client Authentication"),
        ("client/cert-etcd-client.pem", "", "TLS Web Client Authentication"),
    ];
    for (file, sans, eku) in expect {
        let cert = out_dir.join(file);
        let text = openssl_text(&cert);
        assert!(text.contains(sans), "{file}: SANs\n{text}");
        assert!(text.contains(eku), "{file}: EKU\n{text}");
        assert!(
            text.contains("X509v3 Key Usage: critical\n                Digital Signature"),
            "{file}: key usage\n{text}"
        );
        assert!(
            text.contains("Issuer: CN = etcd-bootstrap CA"),
            "{file}\n{text}"
        );
        let verify = ok(Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(&ca)
            .arg(&cert));
        assert!(verify.trim().ends_with(": OK"), "{verify}");
        // Valid for the 90 days asked, from (about) now.
        let end = ok(Command::new("openssl")
            .args(["x509", "-noout", "-checkend"])
            .arg((89 * 86400).to_string())
            .arg("-in")
            .arg(&cert));
        assert!(end.contains("will not expire"), "{file}: {end}");
        let end = run(Command::new("openssl")
            .args(["x509", "-noout", "-checkend"])
            .arg((91 * 86400).to_string())
            .arg("-in")
            .arg(&cert));
        assert!(!end.status.success(), "{file} is valid past 91 days");
    }
    // The client certificate is for clients only.
    let client = openssl_text(&out_dir.join("client/cert-etcd-client.pem"));
    assert!(
        !client.contains("TLS Web Server Authentication"),
        "{client}"
    );
    let ca_text = openssl_text(&ca);
    assert!(ca_text.contains("CA:TRUE, pathlen:0"), "{ca_text}");
    assert!(ca_text.contains("Certificate Sign"), "{ca_text}");
    // Secrets are the owner's alone.
    for key in [
        "ca-etcd-key.pem",
        "etcd-node1/cert-etcd-server-key.pem",
        "client/cert-etcd-client-key.pem",
    ] {
        assert_eq!(meta(&out_dir.join(key)).0, 0o600, "{key}");
    }
}

#[test]
fn renewal_reissues_what_ends_soon_keeps_the_rest_byte_identical() {
    let dir = scratch("pki");
    let seed = dir.path().join("cluster.yaml");
    fs::write(&seed, "etcd_members:\n  - {name: etcd-node1, address: 10.8.0.1}\n  - {name: etcd-node2, address: 10.8.0.2}\n").unwrap();
    let out_dir = dir.path().join("out");
    let (s, o) = (seed.to_str().unwrap(), out_dir.to_str().unwrap());
    let out = pki(&["--seed", s, "--out", o, "--days", "10"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = tree(&out_dir);

    // Ten days left, less than the default 30 of --renew-before: every leaf is reissued with the
    // same CA, which is kept.
    let out = pki(&["--seed", s, "--out", o]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("renew    server  "),
        "{}",
        stdout(&out)
    );
    let second = tree(&out_dir);
    for (name, bytes) in &first {
        let now = &second.iter().find(|(n, _)| n == name).unwrap().1;
        let is_ca = name.ends_with("ca-etcd.pem") || name == "ca-etcd-key.pem";
        assert_eq!(bytes == now, is_ca, "{name}: kept {}", bytes == now);
    }
    // Nothing ends soon now: nothing changes at all.
    let out = pki(&["--seed", s, "--out", o]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(tree(&out_dir), second);
}

#[test]
fn bad_input_gets_one_clear_error_and_nothing_half_written() {
    let dir = scratch("pki");
    let out_dir = dir.path().join("out");
    let o = out_dir.to_str().unwrap();

    // A member whose address is a name that resolves to nothing.
    let seed = dir.path().join("ghost.yaml");
    fs::write(
        &seed,
        "etcd_members:\n  - {name: etcd-node1, address: 10.8.0.1}\n  - {name: ghost, address: ghost.invalid}\n",
    )
    .unwrap();
    let out = pki(&["--seed", seed.to_str().unwrap(), "--out", o]);
    // A seed mistake: exit 2, naming the entry and never the value (it may be a pasted secret).
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "etcd_members[1] (ghost): its address is not an IP address and does not resolve"
        ),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("ghost.invalid"), "{}", stderr(&out));
    assert!(!out_dir.exists(), "something was written");

    // An --out that cannot be made (its parent is a file).
    let good = dir.path().join("good.yaml");
    fs::write(
        &good,
        "etcd_members:\n  - {name: etcd-node1, address: 10.8.0.1}\n",
    )
    .unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, "").unwrap();
    let under_file = file.join("out");
    let out = pki(&[
        "--seed",
        good.to_str().unwrap(),
        "--out",
        under_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(under_file.to_str().unwrap()),
        "{}",
        stderr(&out)
    );

    // A CA key that is not the CA certificate's.
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for d in [&a, &b] {
        let out = pki(&[
            "--seed",
            good.to_str().unwrap(),
            "--out",
            d.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = pki(&[
        "--seed",
        good.to_str().unwrap(),
        "--out",
        o,
        "--ca-cert",
        a.join("ca-etcd.pem").to_str().unwrap(),
        "--ca-key",
        b.join("ca-etcd-key.pem").to_str().unwrap(),
    ]);
    // The command line named files that are not a pair: exit 2.
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not match"), "{}", stderr(&out));
    assert!(!out_dir.exists(), "something was written");
}

/// The cluster file of `names` at 10.8.0.1.. in `dir`.
fn cluster_of(dir: &Path, file: &str, names: &[&str]) -> std::path::PathBuf {
    let mut seed = SeedText::default();
    for (i, n) in names.iter().enumerate() {
        seed = seed.member(n, &format!("10.8.0.{}", i + 1));
    }
    seed.write(&dir.join(file))
}

fn ends_within(cert: &Path, days: u64) -> bool {
    let secs = (days * 86400).to_string();
    !run(Command::new("openssl")
        .args(["x509", "-noout", "-checkend", &secs, "-in"])
        .arg(cert))
    .status
    .success()
}

#[test]
fn each_key_type_the_ca_lifetime_and_a_dry_run_that_writes_nothing() {
    let dir = scratch("pki");
    let seed = cluster_of(dir.path(), "c.yaml", &["etcd-node1"]);
    for (kt, algo) in [
        ("ecdsa-p256", "id-ecPublicKey"),
        ("rsa2048", "rsaEncryption"),
        ("ed25519", "ED25519"),
    ] {
        let out_dir = dir.path().join(kt);
        let o = out_dir.to_str().unwrap();
        let args = [
            "--seed",
            seed.to_str().unwrap(),
            "--out",
            o,
            "--key-type",
            kt,
        ];
        let dry = pki(&[&args[..], &["--dry-run"]].concat());
        assert!(dry.status.success(), "{}", stderr(&dry));
        assert!(stdout(&dry).contains("create   ca"), "{}", stdout(&dry));
        assert!(
            stdout(&dry).contains("nothing was written (--dry-run)"),
            "{}",
            stdout(&dry)
        );
        assert!(!out_dir.exists(), "--dry-run wrote {o}");
        let out = pki(&[&args[..], &["--ca-days", "100"]].concat());
        assert!(out.status.success(), "{}", stderr(&out));
        for cert in [
            out_dir.join("ca-etcd.pem"),
            out_dir.join("etcd-node1/cert-etcd-server.pem"),
            out_dir.join("client/cert-etcd-client.pem"),
        ] {
            let text = openssl_text(&cert);
            assert!(
                text.contains(&format!("Public Key Algorithm: {algo}")),
                "{kt}: {text}"
            );
        }
        // The CA for 100 days, the leaves for the default 365 (capped by nothing else).
        let ca = out_dir.join("ca-etcd.pem");
        assert!(
            !ends_within(&ca, 99) && ends_within(&ca, 101),
            "{kt}: the CA is not 100 days"
        );
        let leaf = out_dir.join("etcd-node1/cert-etcd-server.pem");
        assert!(
            !ends_within(&leaf, 364) && ends_within(&leaf, 366),
            "{kt}: the leaf is not 365 days"
        );
    }
}

#[test]
fn an_existing_ca_given_on_the_command_line_signs_and_its_key_stays_where_it_is() {
    let dir = scratch("pki");
    let seed = cluster_of(dir.path(), "c.yaml", &["etcd-node1", "etcd-node2"]);
    let (a, b) = (dir.path().join("ca"), dir.path().join("b"));
    assert!(pki(&[
        "--seed",
        seed.to_str().unwrap(),
        "--out",
        a.to_str().unwrap()
    ])
    .status
    .success());
    let out = pki(&[
        "--seed",
        seed.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
        "--ca-cert",
        a.join("ca-etcd.pem").to_str().unwrap(),
        "--ca-key",
        a.join("ca-etcd-key.pem").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read(b.join("ca-etcd.pem")).unwrap(),
        fs::read(a.join("ca-etcd.pem")).unwrap()
    );
    assert!(
        !b.join("ca-etcd-key.pem").exists(),
        "the CA key was copied into --out"
    );
    for leaf in [
        "etcd-node1/cert-etcd-server.pem",
        "etcd-node2/cert-etcd-peer.pem",
        "client/cert-etcd-client.pem",
    ] {
        let v = run(Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(a.join("ca-etcd.pem"))
            .arg(b.join(leaf)));
        assert!(
            v.status.success(),
            "{leaf}: {}",
            String::from_utf8_lossy(&v.stdout)
        );
    }
}

/// Renewal touches only what ends within --renew-before (30 days by default): a leaf issued for 10
/// days is reissued, the ones with a year left are kept byte for byte.
#[test]
fn renewal_reissues_only_the_leaves_that_end_soon() {
    let dir = scratch("pki");
    let out_dir = dir.path().join("out");
    let o = out_dir.to_str().unwrap();
    let one = cluster_of(dir.path(), "one.yaml", &["etcd-node1"]);
    let two = cluster_of(dir.path(), "two.yaml", &["etcd-node1", "etcd-node2"]);
    assert!(pki(&["--seed", one.to_str().unwrap(), "--out", o])
        .status
        .success());
    let out = pki(&["--seed", two.to_str().unwrap(), "--out", o, "--days", "10"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(ends_within(
        &out_dir.join("etcd-node2/cert-etcd-server.pem"),
        11
    ));
    let before = tree(&out_dir);
    let out = pki(&["--seed", two.to_str().unwrap(), "--out", o]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("renew    server  ")
            && text.contains("etcd-node2/cert-etcd-server.pem: it expires on"),
        "{text}"
    );
    let after = tree(&out_dir);
    let changed: Vec<&String> = after
        .iter()
        .filter(|f| !before.contains(f))
        .map(|(name, _)| name)
        .collect();
    let mut changed: Vec<String> = changed.into_iter().cloned().collect();
    changed.sort();
    assert_eq!(
        changed,
        [
            "etcd-node2/cert-etcd-peer-key.pem",
            "etcd-node2/cert-etcd-peer.pem",
            "etcd-node2/cert-etcd-server-key.pem",
            "etcd-node2/cert-etcd-server.pem"
        ],
        "{text}"
    );
    assert!(!ends_within(
        &out_dir.join("etcd-node2/cert-etcd-server.pem"),
        364
    ));
}

fn node_config(seed: &Path, pki_dir: &Path, extra: &[&str]) -> std::process::Output {
    run(Command::new(bin())
        .args(["node-config", "--seed"])
        .arg(seed)
        .arg("--pki")
        .arg(pki_dir)
        .args(["--node", "etcd-node1"])
        .args(extra))
}

/// What node-config prints, read back: user-data whose seed (with the node's certificates) parses,
/// the WireGuard config with --wg-conf, a runcmd only with --runcmd; a seed to serve, with the pin
/// that matches what was printed.
#[test]
fn node_config_prints_the_user_data_or_seed_asked_for() {
    let dir = scratch("pki");
    let seed = cluster_of(dir.path(), "c.yaml", &["etcd-node1", "etcd-node2"]);
    let p = dir.path().join("pki");
    assert!(pki(&[
        "--seed",
        seed.to_str().unwrap(),
        "--out",
        p.to_str().unwrap()
    ])
    .status
    .success());
    let wg = dir.path().join("wg0.conf");
    fs::write(
        &wg,
        "[Interface]\nAddress = 10.8.0.1/24\nPrivateKey = abc\n",
    )
    .unwrap();
    let user_data = |extra: &[&str]| -> serde_yaml::Value {
        let out = node_config(&seed, &p, extra);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).starts_with("#cloud-config\n"));
        serde_yaml::from_str(&stdout(&out)).unwrap()
    };
    let plain = user_data(&[]);
    assert_eq!(plain["hostname"].as_str(), Some("etcd-node1"));
    assert!(plain.get("runcmd").is_none(), "a runcmd would apply twice");
    let files = plain["write_files"].as_sequence().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(
        files[0]["path"].as_str(),
        Some("/etc/etcd-bootstrap/seed.yaml")
    );
    assert_eq!(files[0]["permissions"].as_str(), Some("0600"));
    let node_seed = files[0]["content"].as_str().unwrap();
    let parsed = etcd_bootstrap::seed::Seed::parse("user-data", node_seed).unwrap();
    let data = parsed.raw().etcd_certificate_data.clone().unwrap();
    for f in [
        "ca-etcd.pem",
        "cert-etcd-server.pem",
        "cert-etcd-server-key.pem",
        "cert-etcd-peer.pem",
    ] {
        assert!(data.contains_key(f), "{f} missing from the node's seed");
    }
    assert!(
        !node_seed.contains("ca-etcd-key"),
        "the CA key reached a node"
    );

    let with_wg = user_data(&["--wg-conf", wg.to_str().unwrap()]);
    let files = with_wg["write_files"].as_sequence().unwrap();
    assert_eq!(files[1]["path"].as_str(), Some("/etc/wireguard/wg0.conf"));
    assert_eq!(
        files[1]["content"].as_str(),
        Some(fs::read_to_string(&wg).unwrap().as_str())
    );
    assert!(with_wg.get("runcmd").is_none());

    let with_runcmd = user_data(&["--wg-conf", wg.to_str().unwrap(), "--runcmd"]);
    let cmds: Vec<String> = with_runcmd["runcmd"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| serde_yaml::to_string(c).unwrap().replace('\n', " "))
        .collect();
    assert_eq!(cmds.len(), 2, "{cmds:?}");
    assert!(
        cmds[0].contains("wg-quick@wg0") && cmds[1].contains("etcd-bootstrap"),
        "{cmds:?}"
    );

    // The offsite store's files ride along, 0600, as given (a secret that starts with a quote, a
    // PEM); a DEST that is not a plain absolute path is refused.
    let creds = dir.path().join("s3-credentials");
    fs::write(
        &creds,
        "[default]\naws_access_key_id = AK\naws_secret_access_key = \"#: x\n",
    )
    .unwrap();
    let arg = format!("/etc/etcd-bootstrap/s3-credentials={}", creds.display());
    let with_files = user_data(&["--write-file", &arg]);
    let files = with_files["write_files"].as_sequence().unwrap();
    assert_eq!(
        files[1]["path"].as_str(),
        Some("/etc/etcd-bootstrap/s3-credentials")
    );
    assert_eq!(files[1]["permissions"].as_str(), Some("0600"));
    assert_eq!(
        files[1]["content"].as_str(),
        Some(fs::read_to_string(&creds).unwrap().as_str())
    );
    for bad in [
        "etc/x=/dev/null",
        "/etc/a b=/dev/null",
        "/etc/../x=/dev/null",
        "/etc/x",
    ] {
        let out = node_config(&seed, &p, &["--write-file", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
    }

    let out = node_config(&seed, &p, &["--format", "seed"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let pin = etcd_bootstrap::util::io::Sha256::of(printed.as_bytes()).to_string();
    assert!(
        stderr(&out).contains(&format!("etcd_bootstrap.seed_sha256={pin}")),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("holds etcd-node1's private keys"),
        "{}",
        stderr(&out)
    );
    etcd_bootstrap::seed::Seed::parse("served", &printed).unwrap();
    let out = node_config(&seed, &p, &["--format", "seed", "--runcmd"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
