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
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("does not match"), "{}", stderr(&out));
    assert!(!out_dir.exists(), "something was written");
}
