//! `etcd-bootstrap apply` end to end: real release tarballs over real HTTPS, a real wg0 in a network
//! namespace, then the real etcd started from the unit it wrote, answering /health over TLS.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const ADDR: &str = "10.8.0.1";
const NAME: &str = "etcd-node1";

type Setup = Single;

fn setup(release: &str) -> Setup {
    Single::new(NAME, ADDR, release)
}

fn apply(s: &Setup, extra: &[&str]) -> std::process::Output {
    s.apply(extra)
}

fn assert_installed(s: &Setup, version: &str, tarball: &Path) {
    let r = s.root.path();
    let etcd_uid = etcd_bootstrap::host::users::uid(r, "etcd")
        .unwrap()
        .expect("etcd user created in the root");
    let etcd_gid = etcd_bootstrap::host::users::gid(r, "etcd")
        .unwrap()
        .expect("etcd group created in the root");
    assert_ne!(etcd_uid, 0);
    assert_eq!(meta(&r.join("etc/etcd")), (0o750, 0, etcd_gid));
    assert_eq!(meta(&r.join("var/lib/etcd")), (0o700, etcd_uid, etcd_gid));
    for key in [
        "cert-etcd-server-key.pem",
        "cert-etcd-peer-key.pem",
        "cert-etcd-client-key.pem",
    ] {
        assert_eq!(
            meta(&r.join("etc/etcd").join(key)),
            (0o640, 0, etcd_gid),
            "{key}"
        );
    }
    for cert in [
        "ca-etcd.pem",
        "cert-etcd-server.pem",
        "cert-etcd-peer.pem",
        "etcdctl.env",
    ] {
        assert_eq!(meta(&r.join("etc/etcd").join(cert)).0, 0o644, "{cert}");
    }
    assert_eq!(
        fs::read(r.join("etc/etcd/cert-etcd-server.pem")).unwrap(),
        fs::read(s.pki.node_dir(NAME).join("cert-etcd-server.pem")).unwrap()
    );
    assert!(
        !r.join("etc/etcd/ca-etcd-key.pem").exists(),
        "the CA key must never be installed"
    );

    // The binaries are exactly the tarball's.
    let mut want = std::process::Command::new("sh");
    want.arg("-c").arg(format!(
        "tar xzfO {} etcd-v{version}-linux-amd64/etcd | sha256sum | cut -d' ' -f1",
        tarball.display()
    ));
    let want = ok(&mut want);
    let got = ok(std::process::Command::new("sha256sum").arg(r.join("usr/local/bin/etcd")));
    assert_eq!(got.split_whitespace().next(), Some(want.trim()));
    for b in ["etcd", "etcdctl"] {
        assert_eq!(meta(&r.join("usr/local/bin").join(b)), (0o755, 0, 0), "{b}");
    }
    let v = ok(s
        .node
        .cmd(r.join("usr/local/bin/etcd").to_str().unwrap())
        .arg("--version"));
    assert!(v.contains(version), "{v}");

    // The unit: the role's options, the ordering, and one sorted flag per line.
    let unit = fs::read_to_string(r.join("etc/systemd/system/etcd.service")).unwrap();
    for line in [
        "User=etcd",
        "Group=etcd",
        "Type=notify",
        "TimeoutStartSec=0",
        "Wants=network-online.target",
        "After=network-online.target wg-quick@wg0.service",
        "WantedBy=multi-user.target",
        "ExecStart=/usr/local/bin/etcd \\",
        &format!("  --advertise-client-urls=\"https://{ADDR}:2379\" \\"),
        &format!("  --initial-cluster=\"{NAME}=https://{ADDR}:2380\" \\"),
        &format!("  --listen-client-urls=\"https://{ADDR}:2379,https://127.0.0.1:2379\" \\"),
        &format!("  --name=\"{NAME}\" \\"),
        "  --log-outputs=\"stderr\" \\",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "unit lacks {line:?}:\n{unit}"
        );
    }
    assert!(
        !unit.contains("wal-dir"),
        "an empty setting renders no flag:\n{unit}"
    );
    assert!(!unit.contains("enable-v2"), "{unit}");
    let flags: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("  --"))
        .map(|l| l.split('=').next().unwrap())
        .collect();
    let mut sorted = flags.clone();
    sorted.sort();
    assert_eq!(flags, sorted, "flags are sorted");

    // Enabled offline: the symlink systemctl --root makes.
    let link = r.join("etc/systemd/system/multi-user.target.wants/etcd.service");
    assert_eq!(
        fs::read_link(&link).unwrap(),
        Path::new("/etc/systemd/system/etcd.service")
    );

    let env = fs::read_to_string(r.join("etc/etcd/etcdctl.env")).unwrap();
    assert!(
        env.contains(&format!("ETCDCTL_ENDPOINTS=https://{ADDR}:2379\n")),
        "{env}"
    );
    assert!(
        env.contains("ETCDCTL_CERT=/etc/etcd/cert-etcd-client.pem\n"),
        "{env}"
    );
    assert!(
        env.contains("ETCDCTL_KEY=/etc/etcd/cert-etcd-client-key.pem\n"),
        "{env}"
    );
    assert!(
        env.contains("ETCDCTL_CACERT=/etc/etcd/ca-etcd.pem\n"),
        "{env}"
    );

    let stamp = fs::read_to_string(r.join("var/lib/etcd-bootstrap/applied")).unwrap();
    assert!(
        stamp.contains(&format!("etcd_version={version}")),
        "{stamp}"
    );
}

/// Every path, mode, owner, mtime and inode under the root (but /run, runtime state such as the
/// lock): "nothing changed" means this is equal.
fn manifest(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    let run = root.join("run");
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.starts_with(&run) {
                continue;
            }
            let m = fs::symlink_metadata(&p).unwrap();
            let mut line = format!(
                "{} {:o} {}:{} {}",
                p.strip_prefix(root).unwrap().display(),
                m.mode(),
                m.uid(),
                m.gid(),
                m.mtime_nsec() + m.mtime() * 1_000_000_000
            );
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                line.push_str(&format!(" {}", m.ino()));
            }
            out.push(line);
        }
    }
    out.sort();
    out
}

/// Starts etcd from the unit inside the node and checks /health over TLS with the client certificate,
/// then a put/get through etcdctl configured only by etcdctl.env.
fn start_and_check(s: &mut Setup) {
    let log = s.dir.path().join("etcd.log");
    let root = s.root.path().to_path_buf();
    s.node.start_etcd(&root, "etcd.service", &log);
    s.node.wait_healthy(&s.pki, &log);
    let script = format!(
        "set -a; . {r}/etc/etcd/etcdctl.env; set +a; \
         export ETCDCTL_CACERT={r}$ETCDCTL_CACERT ETCDCTL_CERT={r}$ETCDCTL_CERT ETCDCTL_KEY={r}$ETCDCTL_KEY; \
         {r}/usr/local/bin/etcdctl put /bootstrap/test works >/dev/null && {r}/usr/local/bin/etcdctl get --print-value-only /bootstrap/test",
        r = root.display()
    );
    let got = ok(s.node.cmd("sh").arg("-c").arg(script));
    assert_eq!(got.trim(), "works");
}

#[test]
fn apply_3_5_1_over_https_then_etcd_serves_tls_health() {
    let fx = fixtures();
    // The mirror has its own CA, given to the tool as etcd_download_ca_file.
    let mut s = setup("");
    let (base, server) = s.start_mirror("https_server.py", &fx);
    s.node.adopt(server);
    s.add_to_seed(&format!(
        "etcd_version: \"3.5.1\"\n\
         etcd_download_url: \"{base}/v{{{{ etcd_version }}}}/etcd-v{{{{ etcd_version }}}}-linux-{{{{ etcd_architecture }}}}.tar.gz\"\n\
         etcd_download_url_checksum: \"sha256:{base}/v{{{{ etcd_version }}}}/SHA256SUMS\"\n\
         etcd_download_ca_file: /srv/mirror-ca.pem\n"
    ));

    // --dry-run first: it plans creates and changes nothing.
    let before = manifest(s.root.path());
    let out = apply(&s, &["--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = stdout(&out);
    assert!(
        plan.contains("create    dir    /etc/etcd (0750 root:etcd)"),
        "{plan}"
    );
    assert!(
        plan.contains("create    unit   /etc/systemd/system/etcd.service"),
        "{plan}"
    );
    assert!(
        plan.contains("create    binary /usr/local/bin/etcd"),
        "{plan}"
    );
    assert!(plan.contains("enable    unit   etcd.service"), "{plan}");
    assert!(!plan.contains("BEGIN"), "no key material in the plan");
    assert_eq!(
        manifest(s.root.path()),
        before,
        "--dry-run changed the root"
    );

    let out = apply(&s, &[]);
    assert!(out.status.success(), "apply failed: {}", stderr(&out));
    assert_installed(
        &s,
        "3.5.1",
        &fx.join("v3.5.1/etcd-v3.5.1-linux-amd64.tar.gz"),
    );
    assert!(
        s.root
            .path()
            .join("opt/etcd/etcd-v3.5.1-linux-amd64.tar.gz")
            .exists(),
        "tarball cached"
    );

    // Again with the same seed: nothing planned, nothing written.
    let before = manifest(s.root.path());
    let out = apply(&s, &["--dry-run"]);
    let plan = stdout(&out);
    assert!(plan.contains("0 change(s) planned"), "{plan}");
    assert!(
        plan.lines()
            .filter(|l| !l.contains("planned"))
            .all(|l| l.starts_with("unchanged")),
        "{plan}"
    );
    let out = apply(&s, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("nothing changed"), "{}", stderr(&out));
    assert_eq!(
        manifest(s.root.path()),
        before,
        "a second apply wrote something"
    );

    start_and_check(&mut s);
}

#[test]
fn apply_3_4_23_from_file_url_with_pinned_digest() {
    let fx = fixtures();
    let sums = fs::read_to_string(fx.join("v3.4.23/SHA256SUMS")).unwrap();
    let digest = sums.split_whitespace().next().unwrap().to_string();
    let mut s = setup(&format!(
        "etcd_version: \"3.4.23\"\n\
         etcd_download_url: \"file://{}/v3.4.23/etcd-v3.4.23-linux-amd64.tar.gz\"\n\
         etcd_download_url_checksum: \"sha256:{digest}\"\n",
        fx.display()
    ));
    let out = apply(&s, &[]);
    assert!(out.status.success(), "apply failed: {}", stderr(&out));
    assert_installed(
        &s,
        "3.4.23",
        &fx.join("v3.4.23/etcd-v3.4.23-linux-amd64.tar.gz"),
    );
    start_and_check(&mut s);
}

#[test]
fn wrong_checksum_installs_nothing() {
    let fx = fixtures();
    let s = setup(&format!(
        "etcd_version: \"3.5.1\"\n\
         etcd_download_url: \"file://{}/v3.5.1/etcd-v3.5.1-linux-amd64.tar.gz\"\n\
         etcd_download_url_checksum: \"sha256:{}\"\n",
        fx.display(),
        "ab".repeat(32)
    ));
    let out = apply(&s, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("checksum mismatch for file://"), "{err}");
    assert!(err.contains(&"ab".repeat(32)), "{err}");
    assert!(err.contains("nothing was installed"), "{err}");
    let r = s.root.path();
    for p in [
        "usr/local/bin/etcd",
        "etc/etcd",
        "etc/systemd/system/etcd.service",
        "var/lib/etcd",
    ] {
        assert!(!r.join(p).exists(), "{p} exists after a checksum failure");
    }
    let cached: Vec<_> = fs::read_dir(r.join("opt/etcd")).unwrap().collect();
    assert!(
        cached.is_empty(),
        "an unverified tarball was kept: {cached:?}"
    );
}

#[test]
fn unknown_key_is_exit_2_with_line_and_column() {
    let s = setup("etcd_versoin: \"3.5.1\"\n");
    let out = apply(&s, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    let line = fs::read_to_string(&s.seed)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("etcd_versoin"))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!(
            "line {line} column 1: unknown field `etcd_versoin`"
        )),
        "{err}"
    );
    assert!(!s.root.path().join("etc/etcd").exists());
}

#[test]
fn missing_interface_times_out_clearly() {
    let s = setup("etcd_interface: wg7\n");
    let start = std::time::Instant::now();
    let out = apply(&s, &["--wait-interface", "1s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(start.elapsed() >= std::time::Duration::from_secs(1));
    let err = stderr(&out);
    assert!(
        err.contains("interface wg7 does not exist after waiting 1s"),
        "{err}"
    );
    assert!(
        err.contains("wg0 (10.8.0.1"),
        "lists the interfaces there are: {err}"
    );
    assert!(!s.root.path().join("etc/etcd").exists());
}

#[test]
fn node_not_in_members_is_refused() {
    let s = setup("");
    let seed = fs::read_to_string(&s.seed)
        .unwrap()
        .replace(&format!("address: {ADDR}"), "address: 10.8.0.9");
    let seed = seed.replace(&format!("name: {NAME}"), "name: other-node");
    fs::write(&s.seed, seed).unwrap();
    let out = apply(&s, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "this node is not a member: its address is 10.8.0.1 and its hostname etcd-node1"
        ),
        "{err}"
    );
    assert!(err.contains("other-node (10.8.0.9)"), "{err}");
}

#[test]
fn by_default_apply_waits_for_a_wg0_that_comes_up_late() {
    let node = Node::bare(NAME, ADDR, Mounts::Plain, None);
    let mut s = Single::with_node(node, &file_release("3.5.1"));
    let child = s
        .tool(s.root.path(), "apply", &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Past one 10 s period: it says so again, naming what should bring wg0 up and whether its
    // config is there.
    std::thread::sleep(std::time::Duration::from_secs(12));
    s.node.add_wg0();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("waiting up to 60s for interface wg0 to carry an address (from wg-quick@wg0.service from /etc/wireguard/wg0.conf (missing))"),
        "{err}"
    );
    assert!(
        err.contains("still waiting for interface wg0 (")
            && err.contains("interface wg0 does not exist; expected from wg-quick@wg0.service"),
        "{err}"
    );
    assert!(
        err.contains("this node is member etcd-node1 at 10.8.0.1 (wg0)"),
        "{err}"
    );
}

#[test]
fn a_seed_from_stdin_and_a_pinned_seed_digest() {
    let s = Single::new("etcd-node1", "10.8.0.1", &file_release("3.5.1"));
    let text = fs::read(&s.seed).unwrap();
    let root = s.root.path().to_str().unwrap();
    // `--seed -`: the seed on stdin, rendered as from the file.
    let from_file =
        ok(&mut s
            .node
            .tool(&["render", "--seed", s.seed.to_str().unwrap(), "--root", root]));
    let mut child = s
        .node
        .tool(&["render", "--seed", "-", "--root", root])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&text).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), from_file);

    // --seed-sha256: the seed's own digest passes, any other is refused before anything is done.
    let digest = etcd_bootstrap::util::io::sha256_file(&s.seed)
        .unwrap()
        .unwrap()
        .0
        .to_string();
    let seed = s.seed.to_str().unwrap();
    let out = run(&mut s.node.tool(&[
        "apply",
        "--seed",
        seed,
        "--seed-sha256",
        &"0".repeat(64),
        "--root",
        root,
    ]));
    // A checksum that does not match: exit 1, as for a release.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&digest),
        "the message names the digest it got: {}",
        stderr(&out)
    );
    assert!(
        !s.root.path().join("etc/etcd").exists(),
        "a refused seed installed something"
    );
    let out = run(&mut s.node.tool(&[
        "apply",
        "--seed",
        seed,
        "--seed-sha256",
        &digest,
        "--root",
        root,
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The exit code comes from the kind of error alone (`src/util/error.rs`): what the operator must
/// change in the seed or on the command line is 2, wherever it is found (a misspelled etcd flag
/// is found only once the release is staged, and is still 2); everything else is 1.
#[test]
fn exit_codes_come_from_the_kind_of_error_alone() {
    let s = setup(&file_release("3.5.1"));
    let seed0 = fs::read_to_string(&s.seed).unwrap();
    let table: &[(&str, &[&str], &str, i32, &str)] = &[
        // (seed lines added, extra args, seed text replaced, exit code, what the error says)
        ("etcd_versoin: \"3.5.1\"\n", &[], "", 2, "unknown field `etcd_versoin`"),
        ("", &[], "  log-outputs: stderr\n", 2, "has no flag --log-outputz"),
        ("etcd_data_dir: /etc\n", &[], "", 2, "etcd_data_dir: is /etc, a system dir"),
        ("", &["--wait-interface", "banana"], "", 2, "invalid duration"),
        ("etcd_interface: wg7\n", &["--wait-interface", "1s"], "", 1, "interface wg7 does not exist"),
        (
            "etcd_download_url_checksum: \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"\n",
            &[],
            "",
            1,
            "checksum mismatch",
        ),
    ];
    for (add, args, replaced, code, says) in table {
        let mut text = format!("{add}{seed0}");
        if !replaced.is_empty() {
            text = text.replace(replaced, "  log-outputz: stderr\n");
        }
        // A later key wins in YAML only once: the checksum line replaces the fixture's.
        if add.starts_with("etcd_download_url_checksum") {
            text = seed0
                .lines()
                .filter(|l| !l.starts_with("etcd_download_url_checksum"))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                + add;
        }
        fs::write(&s.seed, &text).unwrap();
        let out = apply(&s, args);
        assert_eq!(
            out.status.code(),
            Some(*code),
            "{add}{args:?}: {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains(says), "{says}: {}", stderr(&out));
        assert!(
            !s.root.path().join("etc/etcd").exists(),
            "{add}: something was installed"
        );
    }
}

/// `health --wait` covers the interface too: asked before wg0 is up (at boot), it waits for wg0,
/// then for the member to answer healthy.
#[test]
fn health_wait_covers_a_wg0_that_comes_up_late() {
    let node = Node::bare(NAME, ADDR, Mounts::Plain, None);
    let mut s = Single::with_node(node, &file_release("3.5.1"));
    let child = s
        .tool(s.root.path(), "health", &["--wait", "90s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    s.node.add_wg0();
    let out = s.apply(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = s.dir.path().join("etcd.log");
    let root = s.root.path().to_path_buf();
    s.node.start_etcd(&root, "etcd.service", &log);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("waiting up to 90s for interface wg0"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("https://10.8.0.1:2379 is healthy"),
        "{}",
        stdout(&out)
    );
}

/// Seeds from URLs: `file://`, and `https://` trusted through the system's roots (here a CA given
/// by SSL_CERT_FILE, as on a node whose image trusts an internal CA).
#[test]
fn seeds_from_file_and_https_urls_render_as_the_file_does() {
    let mut s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    let root = s.root.path().to_str().unwrap().to_string();
    let from_file = ok(&mut s.node.tool(&[
        "render",
        "--seed",
        s.seed.to_str().unwrap(),
        "--root",
        &root,
    ]));
    let url = format!("file://{}", s.seed.display());
    let out = run(&mut s.node.tool(&["render", "--seed", &url, "--root", &root]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), from_file);

    let served = s.dir.path().join("served");
    fs::create_dir_all(&served).unwrap();
    fs::copy(&s.seed, served.join("seed.yaml")).unwrap();
    let (base, server) = s.start_mirror("https_server.py", &served);
    s.node.adopt(server);
    let ca = s.root.path().join("srv/mirror-ca.pem");
    let url = format!("{base}/seed.yaml");
    let mut cmd = s.node.tool(&["render", "--seed", &url, "--root", &root]);
    cmd.env("SSL_CERT_FILE", &ca);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), from_file);
    // Without the CA, the seed server is not trusted: refused, nothing rendered.
    let out = run(&mut s.node.tool(&["render", "--seed", &url, "--root", &root]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("TLS failed"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

/// With `--root`, systemd is driven offline and nothing is started: every `systemctl` call is
/// `--root=DIR enable ...` (a recording systemctl first on PATH sees them all).
#[test]
fn under_root_systemd_is_only_enabled_offline_never_started() {
    let s = setup(&file_release("3.5.1"));
    let bin = s.dir.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let calls = s.dir.path().join("calls");
    let fake = bin.join("systemctl");
    // Nothing is enabled yet, as on a fresh image.
    fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$*\" >> {}\ncase \"$*\" in *is-enabled*) exit 1;; esac\n",
            calls.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = s.apply_in(s.root.path(), &[], &[("PATH", path.as_str())]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = fs::read_to_string(&calls).unwrap_or_default();
    let root = format!("--root={}", s.root.path().display());
    assert!(!said.is_empty(), "systemctl was never asked");
    for line in said.lines() {
        assert!(
            line.starts_with(&root) && (line.contains(" enable ") || line.contains(" is-enabled ")),
            "{line:?} under --root: {said}"
        );
    }
    assert!(
        said.contains("enable --quiet --no-reload etcd.service"),
        "{said}"
    );
}
