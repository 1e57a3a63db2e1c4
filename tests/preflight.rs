//! Preflight: a catalogue of broken PKIs and seeds, each asserting the exact message and exit code,
//! with the good case passing. Certificates are made here with rcgen; checks run inside a node with
//! a real wg0 and ask the real etcd 3.5.1 binary about flags.

mod common;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::fs;
use std::path::PathBuf;
use std::process::Command;

const ADDR: &str = "10.8.0.1";
const NAME: &str = "etcd-node1";

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
    key_pem: String,
}

fn ca(cn: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    let key = KeyPair::generate().unwrap();
    let pem = p.self_signed(&key).unwrap().pem();
    let key_pem = key.serialize_pem();
    Ca {
        params: p,
        key,
        pem,
        key_pem,
    }
}

struct Leaf {
    sans: Vec<String>,
    eku: Vec<ExtendedKeyUsagePurpose>,
    not_before: Option<(i32, u8, u8)>,
    not_after: Option<(i32, u8, u8)>,
}

impl Leaf {
    fn good() -> Leaf {
        Leaf {
            sans: vec![ADDR.into(), "127.0.0.1".into(), NAME.into()],
            eku: vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            not_before: None,
            not_after: None,
        }
    }
    fn sign(&self, by: &Ca) -> (String, String) {
        let mut p = CertificateParams::new(self.sans.clone()).unwrap();
        p.extended_key_usages = self.eku.clone();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, NAME);
        p.distinguished_name = dn;
        if let Some((y, m, d)) = self.not_before {
            p.not_before = rcgen::date_time_ymd(y, m, d);
        }
        if let Some((y, m, d)) = self.not_after {
            p.not_after = rcgen::date_time_ymd(y, m, d);
        }
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&by.params, &by.key);
        (
            p.signed_by(&key, &issuer).unwrap().pem(),
            key.serialize_pem(),
        )
    }
}

/// The PKI one case uses: file name -> PEM.
struct Pems(Vec<(String, String)>);

impl Pems {
    fn good(ca: &Ca) -> Pems {
        let (s, sk) = Leaf::good().sign(ca);
        let (p, pk) = Leaf::good().sign(ca);
        Pems(vec![
            ("ca-etcd.pem".into(), ca.pem.clone()),
            ("cert-etcd-server.pem".into(), s),
            ("cert-etcd-server-key.pem".into(), sk),
            ("cert-etcd-peer.pem".into(), p),
            ("cert-etcd-peer-key.pem".into(), pk),
        ])
    }
    fn set(mut self, name: &str, pem: String) -> Pems {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(e) => e.1 = pem,
            None => self.0.push((name.into(), pem)),
        }
        self
    }
    /// Replaces the server or peer pair (`cert-etcd-server`, `cert-etcd-peer`) by `leaf` signed by `by`.
    fn pair(self, stem: &str, leaf: &Leaf, by: &Ca) -> Pems {
        let (cert, key) = leaf.sign(by);
        self.set(&format!("{stem}.pem"), cert)
            .set(&format!("{stem}-key.pem"), key)
    }
    fn yaml(&self) -> String {
        let mut s = String::from("etcd_certificates: []\netcd_certificate_data:\n");
        for (n, pem) in &self.0 {
            s.push_str(&format!("  {n}: |\n"));
            for l in pem.lines() {
                s.push_str(&format!("    {l}\n"));
            }
        }
        s
    }
}

struct Case {
    node: Node,
    root: tempfile::TempDir,
    seed: PathBuf,
    _dir: tempfile::TempDir,
}

const MEMBERS3: &str = "etcd_members:\n  - {name: etcd-node1, address: 10.8.0.1}\n  - {name: etcd-node2, address: 10.8.0.2}\n  - {name: etcd-node3, address: 10.8.0.3}\n";

fn case(pems: &Pems, extra: &str) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let root = new_root();
    let seed = dir.path().join("seed.yaml");
    let members = if extra.contains("etcd_members") {
        ""
    } else {
        MEMBERS3
    };
    let settings = if extra.contains("etcd_settings") {
        ""
    } else {
        "etcd_settings_user:\n  log-outputs: stderr\n"
    };
    let fx = fixtures();
    fs::write(
        &seed,
        format!(
            "etcd_version: \"3.5.1\"\n\
             etcd_download_url: \"file://{0}/v3.5.1/etcd-v3.5.1-linux-amd64.tar.gz\"\n\
             etcd_download_url_checksum: \"sha256:file://{0}/v3.5.1/SHA256SUMS\"\n\
             {settings}{members}{1}{extra}",
            fx.display(),
            pems.yaml()
        ),
    )
    .unwrap();
    // The release fetched and verified into the root: the flags are asked of its staged etcd.
    fs::write(dir.path().join("release.yaml"), file_release("3.5.1")).unwrap();
    ok(Command::new(bin())
        .arg("fetch")
        .arg("--seed")
        .arg(dir.path().join("release.yaml"))
        .arg("--root")
        .arg(root.path()));
    Case {
        node: Node::new(NAME, ADDR),
        root,
        seed,
        _dir: dir,
    }
}

impl Case {
    fn run(&self, cmd: &str) -> (Option<i32>, String, String) {
        let out = run(&mut self.node.tool(&[
            cmd,
            "--seed",
            self.seed.to_str().unwrap(),
            "--root",
            self.root.path().to_str().unwrap(),
        ]));
        (out.status.code(), stdout(&out), stderr(&out))
    }
    /// `check` fails (exit 1: the node, its files or its network) with an error line holding
    /// every fragment.
    fn fails(&self, fragments: &[&str]) -> String {
        self.fails_with(1, fragments)
    }
    /// `check` fails on the seed itself (exit 2: a flag etcd lacks, members that do not add up).
    fn seed_fails(&self, fragments: &[&str]) -> String {
        self.fails_with(2, fragments)
    }
    fn fails_with(&self, want: i32, fragments: &[&str]) -> String {
        let (code, out, err) = self.run("check");
        assert_eq!(code, Some(want), "check should fail:\n{out}{err}");
        let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("error")).collect();
        assert!(
            errors
                .iter()
                .any(|l| fragments.iter().all(|f| l.contains(f))),
            "no error line holds {fragments:?}:\n{out}"
        );
        out
    }
    fn passes(&self) -> String {
        let (code, out, err) = self.run("check");
        assert_eq!(code, Some(0), "check should pass:\n{out}{err}");
        assert!(!out.lines().any(|l| l.starts_with("error")), "{out}");
        out
    }
}

#[test]
fn a_good_pki_and_seed_pass_every_check() {
    let ca = ca("test CA");
    let c = case(&Pems::good(&ca), "");
    let out = c.passes();
    assert!(!out.contains("warning"), "{out}");
    for f in [
        "server certificate cert-etcd-server.pem: it covers 10.8.0.1, 127.0.0.1, etcd-node1; chains to the CA; key matches",
        "peer certificate cert-etcd-peer.pem:",
        "flags are known to etcd 3.5.1",
        "10.8.0.1:2379 is free (listen-client-urls)",
        "initial-cluster names etcd-node1 at https://10.8.0.1:2380",
        "/var/lib/etcd is empty",
    ] {
        assert!(out.contains(f), "missing {f:?}:\n{out}");
    }
    let out = run(&mut c.node.tool(&[
        "check",
        "--output",
        "json",
        "--seed",
        c.seed.to_str().unwrap(),
        "--root",
        c.root.path().to_str().unwrap(),
    ]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v.as_array().unwrap().iter().all(|c| c["level"] == "ok"),
        "{v}"
    );
}

#[test]
fn server_certificate_missing_the_node_address() {
    let ca = ca("test CA");
    let mut leaf = Leaf::good();
    leaf.sans = vec!["127.0.0.1".into(), NAME.into()];
    let c = case(&Pems::good(&ca).pair("cert-etcd-server", &leaf, &ca), "");
    c.fails(&["cert-etcd-server.pem does not cover 10.8.0.1 (wg0 of etcd-node1); it covers 127.0.0.1, etcd-node1"]);
}

#[test]
fn peer_certificate_missing_the_peer_address() {
    let ca = ca("test CA");
    let mut leaf = Leaf::good();
    leaf.sans = vec!["10.8.0.2".into(), "127.0.0.1".into(), "etcd-node2".into()];
    let c = case(&Pems::good(&ca).pair("cert-etcd-peer", &leaf, &ca), "");
    c.fails(&["cert-etcd-peer.pem does not cover 10.8.0.1 (wg0 of etcd-node1); it covers 10.8.0.2, 127.0.0.1, etcd-node2"]);
}

#[test]
fn server_certificate_missing_loopback() {
    let ca = ca("test CA");
    let mut leaf = Leaf::good();
    leaf.sans = vec![ADDR.into(), NAME.into()];
    let c = case(&Pems::good(&ca).pair("cert-etcd-server", &leaf, &ca), "");
    c.fails(&["cert-etcd-server.pem does not cover 127.0.0.1 (listen-client-urls)"]);
}

#[test]
fn dns_client_url_must_be_covered() {
    let ca = ca("test CA");
    let c = case(
        &Pems::good(&ca),
        "etcd_settings_user:\n  log-outputs: stderr\n  advertise-client-urls: https://etcd1.example.org:2379\n",
    );
    c.fails(&["cert-etcd-server.pem does not cover etcd1.example.org (advertise-client-urls)"]);
}

#[test]
fn certificate_from_another_ca() {
    let ca1 = ca("test CA");
    let other = ca("some other CA");
    let c = case(
        &Pems::good(&ca1).pair("cert-etcd-server", &Leaf::good(), &other),
        "",
    );
    c.fails(&[
        "cert-etcd-server.pem does not chain to the trusted CA ca-etcd.pem",
        "issued by \"CN=some other CA\"",
        "the CA is \"CN=test CA\"",
    ]);
}

#[test]
fn key_that_does_not_match_its_certificate() {
    let ca = ca("test CA");
    let (_, wrong_key) = Leaf::good().sign(&ca);
    let c = case(
        &Pems::good(&ca).set("cert-etcd-peer-key.pem", wrong_key),
        "",
    );
    c.fails(&["cert-etcd-peer-key.pem is not the key of cert-etcd-peer.pem"]);
}

#[test]
fn peer_certificate_without_client_auth() {
    let ca = ca("test CA");
    let mut leaf = Leaf::good();
    leaf.eku = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let c = case(&Pems::good(&ca).pair("cert-etcd-peer", &leaf, &ca), "");
    c.fails(&["cert-etcd-peer.pem does not allow clientAuth"]);
}

#[test]
fn expired_certificate() {
    let ca = ca("test CA");
    let mut leaf = Leaf::good();
    leaf.not_before = Some((2019, 1, 1));
    leaf.not_after = Some((2020, 1, 1));
    let c = case(&Pems::good(&ca).pair("cert-etcd-server", &leaf, &ca), "");
    c.fails(&["cert-etcd-server.pem expired on 2020-01-01"]);
}

#[test]
fn certificate_not_valid_yet_names_the_clock_and_time_sync() {
    let ca = ca("test CA");
    let mut leaf = Leaf::good();
    leaf.not_before = Some((2099, 1, 1));
    let c = case(&Pems::good(&ca).pair("cert-etcd-peer", &leaf, &ca), "");
    c.fails(&[
        "cert-etcd-peer.pem is not valid yet: valid from 2099-01-01",
        "clock",
        "time-sync.target",
    ]);
}

#[test]
fn a_listed_ca_key_is_a_warning() {
    let ca = ca("test CA");
    let key = ca.key_pem.clone();
    let c = case(&Pems::good(&ca).set("ca-etcd-key.pem", key), "");
    let out = c.passes();
    assert!(
        out.lines()
            .any(|l| l.starts_with("warning")
                && l.contains("ca-etcd-key.pem is the CA's private key")),
        "{out}"
    );
}

#[test]
fn the_2018_blogs_log_output_gets_the_rename_error_and_apply_changes_nothing() {
    let ca = ca("test CA");
    let c = case(
        &Pems::good(&ca),
        "etcd_settings:\n  name: \"{{ etcd_member_name }}\"\n  log-output: default\n",
    );
    // Judged from etcd's guides for the seed's version, before anything is downloaded.
    c.seed_fails(&[
        "etcd 3.5.1 would not start: --log-output was removed in etcd 3.5: use --log-outputs",
        "CHANGELOG-3.5",
    ]);
    let (code, _, err) = c.run("apply");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("nothing was changed") && err.contains("--log-output"),
        "{err}"
    );
    assert!(!c
        .root
        .path()
        .join("etc/systemd/system/etcd.service")
        .exists());
    assert!(!c.root.path().join("etc/etcd").exists());
}

#[test]
fn enable_v2_is_gone_in_3_6_and_unknown_flags_are_named() {
    let ca = ca("test CA");
    let c = case(&Pems::good(&ca), "etcd_settings:\n  name: \"{{ etcd_member_name }}\"\n  enable-v2x: \"true\"\n  qwertyuiop: \"1\"\n");
    let out = c.seed_fails(&["etcd 3.5.1 has no flag --qwertyuiop", "remove it"]);
    assert!(
        out.contains("has no flag --enable-v2x")
            && out.contains("nearest flag it has is --enable-v2"),
        "{out}"
    );
}

#[test]
fn member_count_warnings() {
    let ca = ca("test CA");
    let two = "etcd_members:\n  - {name: etcd-node1, address: 10.8.0.1}\n  - {name: etcd-node2, address: 10.8.0.2}\n";
    let out = case(&Pems::good(&ca), two).passes();
    assert!(
        out.contains("warning  members  2 members cannot lose either one"),
        "{out}"
    );
    let four = format!("{two}  - {{name: etcd-node3, address: 10.8.0.3}}\n  - {{name: etcd-node4, address: 10.8.0.4}}\n");
    let out = case(&Pems::good(&ca), &four).passes();
    assert!(
        out.contains("4 members tolerate 1 failure(s), no more than 3"),
        "{out}"
    );
}

#[test]
fn initial_cluster_must_name_this_node_at_its_advertised_url() {
    let ca = ca("test CA");
    let c = case(
        &Pems::good(&ca),
        "etcd_settings_user:\n  log-outputs: stderr\n  initial-cluster: \"etcd-node1=https://10.8.0.9:2380,etcd-node2=https://10.8.0.2:2380,etcd-node3=https://10.8.0.3:2380\"\n",
    );
    c.seed_fails(&["initial-cluster has etcd-node1=https://10.8.0.9:2380 but this member advertises https://10.8.0.1:2380"]);
    let c = case(
        &Pems::good(&ca),
        "etcd_settings_user:\n  log-outputs: stderr\n  name: \"{{ ansible_hostname }}-x\"\n",
    );
    c.seed_fails(&["name is \"etcd-node1-x\", but initial-cluster only names etcd-node1, etcd-node2, etcd-node3"]);
}

#[test]
fn a_taken_port_names_its_holder() {
    let ca = ca("test CA");
    let mut c = case(&Pems::good(&ca), "");
    let mut cmd = c.node.cmd("python3");
    cmd.args(["-c", "import socket,time,sys; s=socket.socket(); s.bind(('10.8.0.1',2380)); s.listen(); print('up',flush=True); time.sleep(60)"]);
    c.node.serve(cmd);
    c.fails(&["10.8.0.1:2380 (listen-peer-urls) is taken by python3"]);
}

#[test]
fn a_data_dir_made_with_another_seed_is_a_warning() {
    let ca = ca("test CA");
    let c = case(&Pems::good(&ca), "");
    fs::create_dir_all(c.root.path().join("var/lib/etcd/member/wal")).unwrap();
    let out = c.passes();
    assert!(
        out.contains("warning  datadir  /var/lib/etcd already holds a member (member)")
            && out.contains("etcd will ignore the new initial-cluster"),
        "{out}"
    );
}

#[test]
fn a_new_version_over_a_data_dir_is_no_membership_change_but_a_new_token_is_named() {
    let ca = ca("test CA");
    let c = case(&Pems::good(&ca), "");
    let on_351 = fs::read_to_string(&c.seed).unwrap();
    fs::write(&c.seed, on_351.replace("3.5.1", "3.4.23")).unwrap();
    let (code, _, err) = c.run("apply");
    assert_eq!(code, Some(0), "{err}");
    // etcd has run: its data dir holds a member.
    fs::create_dir_all(c.root.path().join("var/lib/etcd/member/wal")).unwrap();

    // Only the version changes: a path to judge, not a membership change.
    fs::write(&c.seed, &on_351).unwrap();
    let out = c.passes();
    assert!(
        out.contains("ok       upgrade  3.4.23 → 3.5.1: one minor, all members on 3.4"),
        "{out}"
    );
    assert!(
        out.contains("ok       datadir  /var/lib/etcd holds this member's data, made with the same membership"),
        "{out}"
    );
    assert!(!out.contains("warning  datadir"), "{out}");

    // A new cluster token is one: the warning names it.
    let token = on_351.replace(
        "etcd_settings_user:\n",
        "etcd_settings_user:\n  initial-cluster-token: another-cluster\n",
    );
    fs::write(&c.seed, token).unwrap();
    let out = c.passes();
    assert!(
        out.contains("warning  datadir  /var/lib/etcd already holds a member (member) and initial-cluster-token differs"),
        "{out}"
    );
}
