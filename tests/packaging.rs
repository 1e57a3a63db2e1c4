//! The ways in: the .deb into a Debian root, the Packer template, a seed from the kernel command
//! line (the PXE way), and an image pre-staged with `fetch` booting without the mirror.

mod common;

use common::*;
use std::fs;
use std::process::{Command, Stdio};

const ADDR: &str = "10.8.0.1";
const NAME: &str = "etcd-node1";

#[test]
fn the_deb_installs_into_a_debootstrap_root() {
    deb_installs("amd64", &repo().join("target/debian/etcd-bootstrap.deb"));
}

#[test]
fn the_arm64_deb_has_the_same_files_and_installs_alike() {
    if !need_arm64("packaging::the_arm64_deb_has_the_same_files_and_installs_alike") {
        return;
    }
    let deb = repo().join("target/debian/etcd-bootstrap-arm64.deb");
    let files = |d: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = ok(Command::new("dpkg-deb").arg("-c").arg(d))
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5).map(str::to_string))
            .collect();
        v.sort();
        v
    };
    let amd64 = repo().join("target/debian/etcd-bootstrap.deb");
    assert_eq!(files(&deb), files(&amd64));
    deb_installs("arm64", &deb);
}

/// The .deb for `arch`: its Architecture field, then installed into a copy of the debootstrap
/// root (an arm64 one by `--force-architecture`, its binary run through binfmt), the first-boot
/// unit enabled, the etcd user made, the docs in place; purged, nothing left enabled.
fn deb_installs(arch: &str, deb: &std::path::Path) {
    let debroot = repo().join("target/debroot");
    assert!(
        deb.is_file() && debroot.join(".done").is_file(),
        "run `make deb debroot` (and `make deb ARCH=arm64`) first (make test does)"
    );
    let field = ok(Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .arg("Architecture"));
    assert_eq!(field.trim(), arch);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    ok(Command::new("cp").arg("-a").arg(&debroot).arg(&root));
    fs::copy(deb, root.join("tmp/etcd-bootstrap.deb")).unwrap();
    ok(Command::new("chroot").arg(&root).args([
        "dpkg",
        "--force-architecture",
        "-i",
        "/tmp/etcd-bootstrap.deb",
    ]));
    let v = ok(Command::new("chroot")
        .arg(&root)
        .args(["/usr/local/bin/etcd-bootstrap", "--version"]));
    assert!(v.starts_with("etcd-bootstrap "), "{v}");
    let unit = fs::read_to_string(root.join("lib/systemd/system/etcd-bootstrap.service")).unwrap();
    for l in [
        "Type=oneshot",
        "RemainAfterExit=yes",
        "ConditionPathExists=!/var/lib/etcd-bootstrap/applied",
        "ExecStart=/usr/local/bin/etcd-bootstrap apply",
        "Wants=network-online.target wg-quick@wg0.service",
        "After=network-online.target time-sync.target cloud-init.service wg-quick@wg0.service",
    ] {
        assert!(unit.lines().any(|x| x == l), "unit lacks {l}");
    }
    let wants = root.join("etc/systemd/system/multi-user.target.wants/etcd-bootstrap.service");
    // The link is absolute inside the root: look at the link, not through it.
    assert!(
        fs::symlink_metadata(&wants).is_ok(),
        "the first-boot unit is enabled"
    );
    let enabled = Command::new("systemctl")
        .arg(format!("--root={}", root.display()))
        .args(["is-enabled", "etcd-bootstrap.service"])
        .output()
        .unwrap();
    assert_eq!(stdout(&enabled).trim(), "enabled");
    assert!(
        fs::read_to_string(root.join("etc/passwd"))
            .unwrap()
            .lines()
            .any(|l| l.starts_with("etcd:")),
        "sysusers made the etcd user"
    );
    for f in [
        "usr/lib/sysusers.d/etcd-bootstrap.conf",
        "usr/share/man/man1/etcd-bootstrap.1.gz",
        "usr/share/man/man1/etcd-bootstrap-apply.1.gz",
        "usr/share/bash-completion/completions/etcd-bootstrap",
        "usr/share/zsh/vendor-completions/_etcd-bootstrap",
        "usr/share/fish/vendor_completions.d/etcd-bootstrap.fish",
    ] {
        assert!(root.join(f).is_file(), "{f} missing");
    }
    // Removal leaves no unit enabled behind.
    ok(Command::new("chroot")
        .arg(&root)
        .args(["dpkg", "--purge", "etcd-bootstrap"]));
    assert!(!root.join("usr/local/bin/etcd-bootstrap").exists());
    assert!(
        fs::symlink_metadata(&wants).is_err(),
        "the unit is no longer enabled"
    );
}

/// `packer validate` of the template for `arch` (its file uploads must exist: `make static` for
/// that architecture first).
fn packer_validate(arch: &str, repo_dir: &str) -> std::process::Output {
    run(Command::new("packer")
        .current_dir(repo())
        .args(["validate", "-var"])
        .arg(format!("repo={repo_dir}"))
        .arg("-var")
        .arg(format!("arch={arch}"))
        .arg("-var")
        .arg(format!("iso_checksum=sha256:{}", "0".repeat(64)))
        .arg("images/packer/etcd-node.pkr.hcl"))
}

#[test]
fn the_packer_template_validates() {
    let here = repo().display().to_string();
    for arch in ["amd64", "arm64"] {
        let out = packer_validate(arch, &here);
        assert!(
            out.status.success(),
            "{arch}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    let out = packer_validate("riscv64", &here);
    assert!(!out.status.success(), "an unknown arch passed validation");
    let said = stdout(&out) + &stderr(&out);
    assert!(said.contains("The arch must be amd64 or arm64"), "{said}");
    // The template really is checked: a missing upload fails validation.
    let out = packer_validate("amd64", "/nonexistent");
    assert!(!out.status.success(), "validation that cannot fail");
}

/// Serves `dir` over plain HTTP inside the node; returns the base URL.
fn http_server(node: &mut Node, dir: &std::path::Path) -> String {
    let mut cmd = node.cmd("python3");
    cmd.args(["-u", "-c", "import http.server,functools,sys; h=functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1]); s=http.server.ThreadingHTTPServer(('127.0.0.1',0),h); print(s.server_address[1],flush=True); s.serve_forever()"])
        .arg(dir)
        .stderr(Stdio::null());
    format!("http://127.0.0.1:{}", node.serve(cmd))
}

#[test]
fn a_seed_from_the_kernel_command_line() {
    let mut s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    let served = tempfile::tempdir().unwrap();
    fs::copy(&s.seed, served.path().join("cluster.yaml")).unwrap();
    let digest = etcd_bootstrap::util::io::sha256_file(&s.seed)
        .unwrap()
        .unwrap()
        .0
        .to_string();
    let base = http_server(&mut s.node, served.path());
    // A kernel command line of our own, bind-mounted over /proc/cmdline in the node's mount
    // namespace; and no default seed file there.
    let cmdline = s.dir.path().join("cmdline");
    let empty = tempfile::tempdir().unwrap();
    let set_cmdline = |text: &str| {
        fs::write(&cmdline, text).unwrap();
    };
    set_cmdline(&format!(
        "BOOT_IMAGE=/vmlinuz root=/dev/vda ro etcd_bootstrap.seed={base}/cluster.yaml etcd_bootstrap.seed_sha256={digest} quiet\n"
    ));
    ok(s.node
        .cmd("mount")
        .arg("--bind")
        .arg(&cmdline)
        .arg("/proc/cmdline"));
    if std::path::Path::new("/etc/etcd-bootstrap").exists() {
        ok(s.node
            .cmd("mount")
            .arg("--bind")
            .arg(empty.path())
            .arg("/etc/etcd-bootstrap"));
    }

    let root = s.root.path().to_str().unwrap().to_string();
    let out = run(&mut s.node.tool(&["apply", "--root", &root]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "seed from the kernel command line: {base}/cluster.yaml"
        )),
        "{}",
        stderr(&out)
    );
    assert!(s
        .root
        .path()
        .join("etc/systemd/system/etcd.service")
        .is_file());

    // A seed that is not the pinned one is refused, and nothing changes.
    set_cmdline(&format!(
        "etcd_bootstrap.seed={base}/cluster.yaml etcd_bootstrap.seed_sha256={}\n",
        "0".repeat(64)
    ));
    let before = content_manifest(s.root.path());
    let out = run(&mut s.node.tool(&["apply", "--root", &root]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("was pinned; refusing a seed that is not the one meant"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        content_manifest(s.root.path()),
        before,
        "a refused seed changed the install"
    );
    // Plain http without a pinned digest is refused.
    set_cmdline(&format!("etcd_bootstrap.seed={base}/cluster.yaml\n"));
    let out = run(&mut s.node.tool(&["check", "--root", &root]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("without a pinned digest"),
        "{}",
        stderr(&out)
    );
    // No seed anywhere: a clear error.
    set_cmdline("root=/dev/vda\n");
    let out = run(&mut s.node.tool(&["check", "--root", &root]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no seed: /etc/etcd-bootstrap/seed.yaml does not exist"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_image_prestaged_with_fetch_boots_without_the_mirror() {
    let fx = fixtures();
    let mut s = Single::new(NAME, ADDR, "");
    let (base, mut server) = s.start_mirror("https_server.py", &fx);
    s.add_to_seed(&format!(
        "etcd_version: \"3.5.1\"\n\
         etcd_download_url: \"{base}/v3.5.1/etcd-v3.5.1-linux-amd64.tar.gz\"\n\
         etcd_download_url_checksum: \"sha256:{base}/v3.5.1/SHA256SUMS\"\n\
         etcd_download_ca_file: /srv/mirror-ca.pem\n\
         etcd_download_attempts: 1\n"
    ));
    // Image build: fetch only. Nothing is installed yet.
    let out = run(&mut s.tool(s.root.path(), "fetch", &[]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!s.root.path().join("usr/local/bin/etcd").exists());
    assert!(!s.root.path().join("etc/etcd").exists());
    // First boot, air-gapped: the mirror is gone.
    let _ = server.kill();
    let _ = server.wait();
    s.node.adopt(server);
    let out = s.apply(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("using cached"), "{}", stderr(&out));
    assert!(s.root.path().join("usr/local/bin/etcd").is_file());
}

/// The user-data example a new user copies (`images/cloud-init/user-data`) is in the shape
/// `node-config` prints: cloud-init only writes files (the image's unit runs apply; a runcmd that
/// did too would apply twice), and the seed it writes is one this tool reads.
#[test]
fn the_cloud_init_example_only_writes_files_and_its_seed_parses() {
    let text = std::fs::read_to_string(repo().join("images/cloud-init/user-data")).unwrap();
    assert!(text.starts_with("#cloud-config\n"));
    let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert!(
        v.get("runcmd").is_none(),
        "the example runs commands: {text}"
    );
    let files = v["write_files"].as_sequence().unwrap();
    assert_eq!(
        files[0]["path"].as_str(),
        Some("/etc/etcd-bootstrap/seed.yaml")
    );
    assert_eq!(files[0]["permissions"].as_str(), Some("0600"));
    let seed = etcd_bootstrap::seed::Seed::parse("example", files[0]["content"].as_str().unwrap())
        .unwrap();
    let data = seed.raw().etcd_certificate_data.clone().unwrap();
    for f in etcd_bootstrap::seed::DEFAULT_CERTIFICATES {
        assert!(data.contains_key(*f), "{f} is not in the example's seed");
    }
    assert!(files
        .iter()
        .any(|f| f["path"].as_str() == Some("/etc/wireguard/wg0.conf")));
}
