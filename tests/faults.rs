//! Never half-installed: SIGKILL at many points then a re-run converges to the uninterrupted
//! install; concurrent runs; seed changes; a flaky mirror; a full disk; keys kept out of output.

mod common;

use common::*;
use std::fs;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ADDR: &str = "10.8.0.1";
const NAME: &str = "etcd-node1";

#[test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features failpoints (make test builds with it)"
)]
fn killed_at_every_point_a_rerun_converges_to_the_same_install() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    let out = s.apply(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let reference = content_manifest(s.root.path());
    // Points, named by what they interrupt: mid-download, downloaded but not renamed, mid-unpack,
    // staged but not renamed, file writes (temp written, not renamed / renamed; the first is the
    // digest record in the state dir; binaries are written before every other item, renamed in turn), between items, the unit, before enabling, before the stamp.
    let points = [
        "download-mid:1MiB",
        "download-mid:8MiB",
        "download-done",
        "unpack-mid:etcd",
        "unpack-mid:etcdctl",
        "stage-rename",
        "write-tmp:/usr/local/bin/etcd",
        "write-tmp:/var/lib/etcd-bootstrap/release-digests",
        "write-tmp:/etc/sysusers.d/etcd-bootstrap.conf",
        "write-tmp:/etc/etcd/cert-etcd-peer-key.pem",
        "write-renamed:/etc/etcd/cert-etcd-server.pem",
        "write-renamed:/etc/etcd/etcdctl.env",
        "write-renamed:/usr/local/bin/etcdctl",
        "apply-item:/etc/etcd",
        "apply-item:/etc/etcd/cert-etcd-peer-key.pem",
        "write-tmp:/etc/systemd/system/etcd.service",
        "write-renamed:/etc/systemd/system/etcd.service",
        "before-enable",
        "before-stamp",
    ];
    for point in points {
        use std::os::unix::process::ExitStatusExt;
        let root = s.another_root();
        let out = s.apply_in(root.path(), &[], &[("ETCD_BOOTSTRAP_FAILPOINT", point)]);
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{point}: not killed there: {}",
            stderr(&out)
        );
        let out = s.apply_in(root.path(), &[], &[]);
        assert!(
            out.status.success(),
            "{point}: the re-run failed: {}",
            stderr(&out)
        );
        assert_eq!(
            content_manifest(root.path()),
            reference,
            "{point}: the re-run differs from an uninterrupted install"
        );
    }
}

#[test]
fn a_second_run_waits_for_the_first_or_fails_clearly() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    fs::create_dir_all(s.root.path().join("run")).unwrap();
    let lock = s.root.path().join("run/etcd-bootstrap.lock");
    let mut holder = Command::new("flock")
        .arg("-o")
        .arg(&lock)
        .args(["sleep", "120"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(5), "the lock to be held", || {
        Command::new("flock")
            .args(["-n"])
            .arg(&lock)
            .arg("true")
            .status()
            .map(|s| !s.success())
            .unwrap_or(false)
    });
    let start = Instant::now();
    let out = s.apply(&["--lock-wait", "1s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("another etcd-bootstrap"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("etcd-bootstrap.lock"),
        "{}",
        stderr(&out)
    );
    // Given up after its 1 s, long before the holder lets go (120 s): the bound leaves room for
    // a loaded machine without letting a wait for the holder pass.
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    assert!(
        !s.root.path().join("etc/etcd").exists(),
        "nothing changed while locked out"
    );
    let _ = holder.kill();
    let _ = holder.wait();

    // Two at once: one waits for the other, both succeed, the install is one install.
    let spawn = || {
        s.tool(s.root.path(), "apply", &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(
        a.status.success() && b.status.success(),
        "{}\n{}",
        stderr(&a),
        stderr(&b)
    );
    let logs = stderr(&a) + &stderr(&b);
    assert!(
        logs.contains("nothing changed"),
        "the later run found the work done: {logs}"
    );
}

#[test]
fn a_seed_change_rewrites_only_what_changed() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    assert!(s.apply(&[]).status.success());
    let before = content_manifest(s.root.path());
    let seed = fs::read_to_string(&s.seed).unwrap().replace(
        "  log-outputs: stderr\n",
        "  log-outputs: stderr\n  heartbeat-interval: \"250\"\n",
    );
    fs::write(&s.seed, seed).unwrap();
    let out = s.apply(&["--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = stdout(&out);
    let changed: Vec<&str> = plan
        .lines()
        .filter(|l| !l.starts_with("unchanged") && !l.contains("planned"))
        .collect();
    assert_eq!(
        changed,
        vec!["update    unit   /etc/systemd/system/etcd.service (content)"],
        "{plan}"
    );
    let out = s.apply(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let after = content_manifest(s.root.path());
    // Both ways: a run that also removed or rewrote another file would show here.
    assert_eq!(
        changed_paths(&before, &after),
        vec![
            "etc/systemd/system/etcd.service",
            "var/lib/etcd-bootstrap/applied",
            // The seed the scheduled jobs act on: it changed.
            "var/lib/etcd-bootstrap/applied-seed.yaml"
        ]
    );
    let unit = fs::read_to_string(s.root.path().join("etc/systemd/system/etcd.service")).unwrap();
    assert!(unit.contains("--heartbeat-interval=\"250\""));
}

/// A node whose release comes from the flaky HTTPS mirror, path prefix `mode`.
fn flaky(mode: &str, extra: &str) -> (Single, String) {
    let fx = fixtures();
    let mut s = Single::new(NAME, ADDR, "");
    let (base, server) = s.start_mirror("flaky_server.py", &fx);
    s.node.adopt(server);
    s.add_to_seed(&format!(
        "etcd_version: \"3.5.1\"\n\
         etcd_download_url: \"{base}/{mode}/v3.5.1/etcd-v3.5.1-linux-amd64.tar.gz\"\n\
         etcd_download_url_checksum: \"sha256:{base}/ok/v3.5.1/SHA256SUMS\"\n\
         etcd_download_ca_file: /srv/mirror-ca.pem\n{extra}"
    ));
    (s, base)
}

fn requests(s: &Single, base: &str, mode: &str) -> u32 {
    let url = format!("{base}/count/{mode}/v3.5.1/etcd-v3.5.1-linux-amd64.tar.gz");
    ok(s.node.cmd("curl").args(["-sk", &url]))
        .trim()
        .parse()
        .unwrap()
}

/// The download dir holds nothing but a verified tarball (and its staging dir).
fn cache_is_verified_only(root: &Path) {
    let dir = root.join("opt/etcd");
    let want = fs::read_to_string(fixtures().join("v3.5.1/SHA256SUMS")).unwrap();
    for e in fs::read_dir(&dir).into_iter().flatten() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        if e.file_type().unwrap().is_dir() {
            assert_eq!(
                name, "etcd-v3.5.1-linux-amd64",
                "unexpected dir in the cache"
            );
            continue;
        }
        assert_eq!(
            name, "etcd-v3.5.1-linux-amd64.tar.gz",
            "unexpected file in the cache"
        );
        let got = etcd_bootstrap::util::io::sha256_file(&e.path())
            .unwrap()
            .unwrap()
            .0
            .to_string();
        assert!(
            want.starts_with(&got),
            "cached tarball is not the verified one"
        );
    }
}

#[test]
fn a_dropped_connection_resumes_with_range() {
    let (s, base) = flaky("drop", "");
    let out = s.apply(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("resuming at byte"),
        "{}",
        stderr(&out)
    );
    assert_eq!(requests(&s, &base, "drop"), 2);
    cache_is_verified_only(s.root.path());
}

#[test]
fn a_server_ignoring_range_restarts_the_download() {
    let (s, base) = flaky("norange", "");
    let out = s.apply(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot resume; downloading from the start"),
        "{}",
        stderr(&out)
    );
    assert_eq!(requests(&s, &base, "norange"), 2);
    cache_is_verified_only(s.root.path());
}

#[test]
fn repeated_503_is_retried_with_backoff() {
    let (s, base) = flaky("503x3", "");
    let out = s.apply(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).matches("the server answered 503").count(),
        3,
        "{}",
        stderr(&out)
    );
    assert_eq!(requests(&s, &base, "503x3"), 4);
    cache_is_verified_only(s.root.path());
}

#[test]
fn a_stalled_transfer_times_out_and_is_retried() {
    let (s, _) = flaky("stall", "etcd_download_read_timeout: 2s\n");
    let start = Instant::now();
    let out = s.apply(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("trying again"), "{}", stderr(&out));
    // The server stalls for 300 s: finishing in well under that proves the 2 s read timeout
    // cut it, with room for a loaded machine.
    assert!(
        start.elapsed() < Duration::from_secs(150),
        "the stall was not cut short by the read timeout: {:?}",
        start.elapsed()
    );
    cache_is_verified_only(s.root.path());
}

#[test]
fn too_many_failures_give_up_within_the_limits() {
    let (s, base) = flaky("503x3", "etcd_download_attempts: 2\n");
    let out = s.apply(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("giving up on"), "{}", stderr(&out));
    assert_eq!(requests(&s, &base, "503x3"), 2);
    assert!(!s
        .root
        .path()
        .join("opt/etcd/etcd-v3.5.1-linux-amd64.tar.gz")
        .exists());
    cache_is_verified_only(s.root.path());
}

#[test]
fn not_found_fails_at_once() {
    let (s, base) = flaky("404", "");
    let out = s.apply(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("/404/v3.5.1/etcd-v3.5.1-linux-amd64.tar.gz: the server answered 404"),
        "{err}"
    );
    assert!(!err.contains("trying again"), "{err}");
    assert_eq!(requests(&s, &base, "404"), 1);
    cache_is_verified_only(s.root.path());
}

#[test]
fn an_untrusted_mirror_certificate_fails_at_once_naming_the_url() {
    let (s, _) = flaky("ok", "");
    fs::remove_file(s.root.path().join("srv/mirror-ca.pem")).unwrap();
    fs::copy(s.pki.ca(), s.root.path().join("srv/mirror-ca.pem")).unwrap();
    let out = s.apply(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("https://127.0.0.1:") && err.contains("TLS failed"),
        "{err}"
    );
    assert!(err.contains("etcd_download_ca_file"), "{err}");
    assert!(!err.contains("trying again"), "{err}");
}

#[test]
fn plain_http_without_a_pinned_digest_is_refused() {
    let s = Single::new(
        NAME,
        ADDR,
        "etcd_download_url: http://127.0.0.1:1/etcd-v3.6.14-linux-amd64.tar.gz\n",
    );
    let out = s.apply(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is plain http"), "{}", stderr(&out));
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_fails_clearly_and_keeps_the_previous_install() {
    // Mounted before the node exists, so the node's mount namespace sees the same tmpfs.
    let mnt = Tmpfs(scratch("tmpfs"));
    ok(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=100m", "tmpfs"])
        .arg(mnt.0.path()));
    let s = Single::new(NAME, ADDR, &file_release("3.4.23"));
    let root = mnt.0.path();
    ok(Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", s.root.path().display()))
        .arg(root));
    let out = s.apply_in(root, &[], &[]);
    assert!(out.status.success(), "3.4.23 fits: {}", stderr(&out));
    let before = content_manifest(root);

    let seed = fs::read_to_string(&s.seed)
        .unwrap()
        .replace("3.4.23", "3.5.1");
    fs::write(&s.seed, seed).unwrap();
    let out = s.apply_in(root, &[], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("/opt/etcd/"), "names where: {err}");
    // Both ways: nothing added, changed or removed by the failed run.
    assert_eq!(
        content_manifest(root),
        before,
        "the failed run changed the install"
    );
    let v = ok(s
        .node
        .cmd(root.join("usr/local/bin/etcd").to_str().unwrap())
        .arg("--version"));
    assert!(v.contains("3.4.23"), "the previous etcd still runs: {v}");
}

#[test]
fn private_keys_stay_out_of_output_and_a_readable_seed_with_keys_warns() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    let mut seed = fs::read_to_string(&s.seed).unwrap();
    seed.push_str("etcd_certificate_data:\n  cert-etcd-server-key.pem: |\n");
    for l in fs::read_to_string(s.pki.node_dir(NAME).join("cert-etcd-server-key.pem"))
        .unwrap()
        .lines()
    {
        seed.push_str(&format!("    {l}\n"));
    }
    fs::write(&s.seed, &seed).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&s.seed, fs::Permissions::from_mode(0o644)).unwrap();
    // The key's own base64 lines: none may appear in any output, whole or as a 16-byte piece.
    let key = fs::read_to_string(s.pki.node_dir(NAME).join("cert-etcd-server-key.pem")).unwrap();
    let body: Vec<&str> = key
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .collect();
    assert!(!body.is_empty());
    for args in [&["--dry-run"][..], &[][..], &["-v"][..]] {
        let out = s.apply(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let all = stdout(&out) + &stderr(&out);
        assert!(
            !all.contains("PRIVATE KEY"),
            "key header in the output of {args:?}"
        );
        for line in &body {
            assert!(
                !all.contains(&line[..16]),
                "key material in the output of {args:?}"
            );
        }
        assert!(
            stderr(&out).contains("holds private keys but is readable by other users (mode 0644)"),
            "{}",
            stderr(&out)
        );
    }
    fs::set_permissions(&s.seed, fs::Permissions::from_mode(0o600)).unwrap();
    let out = s.apply(&[]);
    assert!(!stderr(&out).contains("readable by other users"));
}

#[test]
fn request_timeout_and_too_many_requests_are_retried() {
    for (mode, code) in [
        ("408x2", "408 Request Timeout"),
        ("429x2", "429 Too Many Requests"),
    ] {
        let (s, base) = flaky(mode, "");
        let out = s.apply(&[]);
        assert!(out.status.success(), "{mode}: {}", stderr(&out));
        assert_eq!(
            stderr(&out)
                .matches(&format!("the server answered {code}; trying again"))
                .count(),
            2,
            "{}",
            stderr(&out)
        );
        assert_eq!(requests(&s, &base, mode), 3);
        cache_is_verified_only(s.root.path());
    }
}

#[test]
fn a_mirror_that_never_answers_the_connect_times_out_and_is_retried() {
    let s = Single::new(NAME, ADDR, "");
    // Frames for 10.99.0.1 go out of blk0 to a MAC nobody has: blk1 drops them, nothing answers,
    // and the TCP handshake never completes.
    for args in [
        "link add blk0 type veth peer name blk1",
        "link set blk0 up",
        "link set blk1 up",
        "addr add 10.99.0.2/24 dev blk0",
        "neigh add 10.99.0.1 lladdr 02:00:00:00:00:01 dev blk0 nud permanent",
    ] {
        ok(s.node.cmd("ip").args(args.split(' ')));
    }
    s.add_to_seed(&format!(
        "etcd_version: \"3.5.1\"\n\
         etcd_download_url: https://10.99.0.1/etcd-v3.5.1-linux-amd64.tar.gz\n\
         etcd_download_url_checksum: \"sha256:{}\"\n\
         etcd_download_attempts: 2\n",
        "ab".repeat(32)
    ));
    let start = Instant::now();
    let out = s.apply(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "giving up on https://10.99.0.1/etcd-v3.5.1-linux-amd64.tar.gz after 2 attempt(s)"
        ),
        "{err}"
    );
    // Each attempt ended by the connect timeout, in the tool's words (the retry line, then the
    // final error): not the HTTP stack's own text, which differs with the layer that fired.
    assert_eq!(
        err.matches(
            "fetching https://10.99.0.1/etcd-v3.5.1-linux-amd64.tar.gz: no connection within 15s"
        )
        .count(),
        2,
        "{err}"
    );
    // Two connects, each cut by the 15 s connect timeout: not sooner, and not left to the
    // kernel's SYN retries (over two minutes each).
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(29), "{took:?}");
    assert!(took < Duration::from_secs(120), "{took:?}");
    assert!(!s.root.path().join("etc/etcd").exists());
}

#[test]
fn downloads_go_through_https_proxy_unless_no_proxy_names_the_host() {
    let fx = fixtures();
    let mut s = Single::new(NAME, ADDR, "");
    let (base, server) = s.start_mirror("https_server.py", &fx);
    s.node.adopt(server);
    s.add_to_seed(&format!(
        "etcd_version: \"3.5.1\"\n\
         etcd_download_url: \"{base}/v3.5.1/etcd-v3.5.1-linux-amd64.tar.gz\"\n\
         etcd_download_url_checksum: \"sha256:{base}/v3.5.1/SHA256SUMS\"\n\
         etcd_download_ca_file: /srv/mirror-ca.pem\n"
    ));
    let log = s.dir.path().join("proxy.log");
    let mut proxy = s.node.cmd("python3");
    proxy.arg(support("connect_proxy.py")).arg(&log);
    let port = s.node.serve(proxy);
    let proxy_url = format!("http://127.0.0.1:{port}");
    let mirror = base.trim_start_matches("https://").to_string();

    let out = s.apply_in(s.root.path(), &[], &[("https_proxy", &proxy_url)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let seen = fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        vec![mirror.as_str(), mirror.as_str()],
        "SHA256SUMS and the tarball through the proxy"
    );

    let root = s.another_root();
    fs::copy(
        s.root.path().join("srv/mirror-ca.pem"),
        root.path().join("srv/mirror-ca.pem"),
    )
    .unwrap();
    let out = s.apply_in(
        root.path(),
        &[],
        &[("https_proxy", &proxy_url), ("no_proxy", "127.0.0.1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(&log).unwrap_or_default(),
        seen,
        "no_proxy bypassed the proxy"
    );
}

#[test]
fn a_corrupt_cached_tarball_is_downloaded_again() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    assert!(s.apply(&[]).status.success());
    let cached = s
        .root
        .path()
        .join("opt/etcd/etcd-v3.5.1-linux-amd64.tar.gz");
    let mut bytes = fs::read(&cached).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&cached, &bytes).unwrap();
    let root = s.another_root();
    ok(Command::new("cp")
        .arg("-a")
        .arg(s.root.path().join("opt"))
        .arg(root.path()));
    let out = s.apply_in(root.path(), &[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("etcd-v3.5.1-linux-amd64.tar.gz has sha256 ")
            && err.contains("; downloading it again"),
        "{err}"
    );
    assert!(
        err.contains("downloaded ") && err.contains("sha256 verified"),
        "{err}"
    );
    let want = fs::read_to_string(fixtures().join("v3.5.1/SHA256SUMS")).unwrap();
    let got = etcd_bootstrap::util::io::sha256_file(
        &root.path().join("opt/etcd/etcd-v3.5.1-linux-amd64.tar.gz"),
    )
    .unwrap()
    .unwrap()
    .0
    .to_string();
    assert!(
        want.starts_with(&got),
        "the cache holds the verified tarball again"
    );
}

/// A tarball that inflates past 2 GiB (built once; 2.5 MiB on disk).
fn gzip_bomb() -> std::path::PathBuf {
    let dir = fixtures().join("bomb");
    fs::create_dir_all(&dir).unwrap();
    let t = dir.join("etcd-v9.9.9-linux-amd64.tar.gz");
    ok(Command::new("flock")
        .arg(dir.join(".lock"))
        .arg("sh")
        .arg("-c")
        .arg(format!(
            "[ -s {t} ] || python3 {bomb} {t}",
            t = t.display(),
            bomb = support("bomb.py").display()
        )));
    t
}

#[test]
fn a_tarball_inflating_past_2_gib_is_refused_and_nothing_is_installed() {
    let t = gzip_bomb();
    let digest = etcd_bootstrap::util::io::sha256_file(&t)
        .unwrap()
        .unwrap()
        .0;
    let s = Single::new(
        NAME,
        ADDR,
        &format!(
            "etcd_version: \"9.9.9\"\n\
             etcd_download_url: \"file://{}\"\n\
             etcd_download_url_checksum: \"sha256:{digest}\"\n",
            t.display()
        ),
    );
    let out = s.apply(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("inflates to more than 2048 MiB; refusing it (a gzip bomb?)"),
        "{}",
        stderr(&out)
    );
    for p in [
        "usr/local/bin/etcd",
        "etc/etcd",
        "etc/systemd/system/etcd.service",
    ] {
        assert!(!s.root.path().join(p).exists(), "{p} was installed");
    }
    assert!(
        !s.root
            .path()
            .join("opt/etcd/etcd-v9.9.9-linux-amd64")
            .exists(),
        "nothing of the bomb was staged"
    );
}

#[test]
fn by_default_a_second_run_waits_for_the_first() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    fs::create_dir_all(s.root.path().join("run")).unwrap();
    let lock = s.root.path().join("run/etcd-bootstrap.lock");
    // Another run holds the lock for 3 s; this one, with the default --lock-wait, waits it out.
    let mut holder = Command::new("flock")
        .arg("-o")
        .arg(&lock)
        .args(["sleep", "3"])
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(5), "the lock to be held", || {
        !run(Command::new("flock").arg("-n").arg(&lock).arg("true"))
            .status
            .success()
    });
    let out = s.apply(&[]);
    let _ = holder.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("waiting for another etcd-bootstrap"),
        "{}",
        stderr(&out)
    );
    assert!(s
        .root
        .path()
        .join("etc/systemd/system/etcd.service")
        .is_file());
}

/// `fetch` (image builds) takes the same run lock as `apply`: it waits for a run holding it.
#[test]
fn fetch_takes_the_run_lock_and_waits_for_a_run_holding_it() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    fs::create_dir_all(s.root.path().join("run")).unwrap();
    let lock = s.root.path().join("run/etcd-bootstrap.lock");
    let mut holder = Command::new("flock")
        .arg("-o")
        .arg(&lock)
        .args(["sleep", "3"])
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(5), "the lock to be held", || {
        !Command::new("flock")
            .args(["-n"])
            .arg(&lock)
            .arg("true")
            .status()
            .unwrap()
            .success()
    });
    let out = run(&mut s.tool(s.root.path(), "fetch", &[]));
    let _ = holder.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("waiting for another etcd-bootstrap"),
        "{}",
        stderr(&out)
    );
    assert!(s
        .root
        .path()
        .join("opt/etcd/etcd-v3.5.1-linux-amd64/etcd")
        .is_file());
}
