//! The second hardening round (#23): each test is one attack seen against an earlier build — by a
//! hostile seed or cluster-file author, a local user without privileges, a hostile mirror, or a
//! member of the cluster that sends anything — run against the real binary.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const NAME: &str = "etcd-node1";
const ADDR: &str = "10.8.0.1";
/// A private key as someone might paste it by mistake: it must never be echoed.
const PASTED_KEY: &str = "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE KEY-----";

fn pki(args: &[&str]) -> std::process::Output {
    run(Command::new(bin()).arg("pki").args(args))
}

/// A cluster file with one member `name` at `address` and `extra` lines.
fn cluster_file(dir: &Path, file: &str, name: &str, address: &str, extra: &str) -> PathBuf {
    let p = dir.join(file);
    fs::write(
        &p,
        format!("etcd_members:\n  - {{name: \"{name}\", address: \"{address}\"}}\n{extra}"),
    )
    .unwrap();
    p
}

/// Row 1 and 7: a member's name is a name, never a path, in `pki` and `node-config`; and what
/// someone pasted into a name or address is never echoed.
#[test]
fn member_names_are_never_paths_and_pasted_keys_never_echoed() {
    let d = scratch("pki");
    let out = d.path().join("out");
    let victim = d.path().join("victim");
    fs::create_dir_all(&victim).unwrap();
    let outside = d.path().join("x");
    for (name, extra) in [
        (
            victim.to_str().unwrap(),
            "etcd_settings_user:\n  cert-file: /etc/etcd/.profile\n",
        ),
        ("../../x", ""),
        ("../victim", ""),
    ] {
        let seed = cluster_file(d.path(), "bad.yaml", name, "10.8.0.1", extra);
        let o = pki(&[
            "--seed",
            seed.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", all_output(&o));
        assert!(
            stderr(&o).contains("etcd_members[0].name is not a plain name"),
            "{name}: {}",
            stderr(&o)
        );
        assert!(!victim.join(".profile").exists() && !outside.exists());
        assert!(
            fs::read_dir(&victim).unwrap().next().is_none(),
            "{name} wrote into victim/"
        );
    }
    // A certificate file name from a setting is a name too.
    let seed = cluster_file(
        d.path(),
        "profile.yaml",
        NAME,
        "10.8.0.1",
        "etcd_settings_user:\n  cert-file: /etc/etcd/.profile\n",
    );
    let o = pki(&[
        "--seed",
        seed.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
    assert!(
        stderr(&o).contains("the file name of cert-file (member etcd-node1) is not a plain name"),
        "{}",
        stderr(&o)
    );
    assert!(!out.join(NAME).exists());

    // A key pasted into a name or an address is refused without being shown.
    for (name, address) in [(PASTED_KEY, "10.8.0.1"), (NAME, PASTED_KEY)] {
        let seed = cluster_file(d.path(), "pasted.yaml", name, address, "");
        let o = pki(&[
            "--seed",
            seed.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
        assert!(
            !all_output(&o).contains("MIIEvQIBADAN"),
            "{}",
            all_output(&o)
        );
    }

    // node-config: --node is a name too, so nothing outside --pki is read (the victim's key).
    let good = cluster_file(
        d.path(),
        "good.yaml",
        NAME,
        "10.8.0.1",
        "etcd_certificates: [ca-etcd.pem, id_ed25519]\n",
    );
    fs::write(
        victim.join("id_ed25519"),
        "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n",
    )
    .unwrap();
    let o = pki(&[
        "--seed",
        good.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", all_output(&o));
    for node in [victim.to_str().unwrap(), "../victim"] {
        let o = run(Command::new(bin())
            .args(["node-config", "--seed"])
            .arg(&good)
            .arg("--pki")
            .arg(&out)
            .args(["--node", node]));
        assert_eq!(o.status.code(), Some(2), "{node}: {}", all_output(&o));
        assert!(
            stderr(&o).contains("--node is not a plain name"),
            "{}",
            stderr(&o)
        );
        assert!(!all_output(&o).contains("OPENSSH"), "{}", all_output(&o));
    }
}

/// Row 6: `pki --out` in a dir another user made (or can write) holding their CA is refused, not
/// used; a CA key others can read is a warning.
#[test]
fn pki_refuses_an_out_dir_others_control_and_warns_of_a_readable_ca_key() {
    let d = scratch("pki");
    let seed = cluster_file(d.path(), "c.yaml", NAME, "10.8.0.1", "");
    // The attacker's CA, made where they like, then put into a dir everyone can write.
    let theirs = d.path().join("theirs");
    assert!(pki(&[
        "--seed",
        seed.to_str().unwrap(),
        "--out",
        theirs.to_str().unwrap()
    ])
    .status
    .success());
    let shared = d.path().join("shared");
    fs::create_dir_all(&shared).unwrap();
    for f in ["ca-etcd.pem", "ca-etcd-key.pem"] {
        fs::copy(theirs.join(f), shared.join(f)).unwrap();
    }
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    let o = pki(&[
        "--seed",
        seed.to_str().unwrap(),
        "--out",
        shared.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    assert!(
        stderr(&o).contains("is writable by everyone"),
        "{}",
        stderr(&o)
    );
    assert!(
        !all_output(&o).contains("keep     ca"),
        "{}",
        all_output(&o)
    );
    assert!(
        !shared.join(NAME).exists(),
        "certificates were issued from their CA"
    );
    // Owned by another user: the same.
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&shared, Some(1000), Some(1000)).unwrap();
    let o = pki(&[
        "--seed",
        seed.to_str().unwrap(),
        "--out",
        shared.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    assert!(
        stderr(&o).contains("is owned by uid 1000"),
        "{}",
        stderr(&o)
    );
    assert!(!shared.join(NAME).exists());

    // Our own out dir, but the CA key made readable by everyone: a warning naming the fix.
    let ours = d.path().join("ours");
    assert!(pki(&[
        "--seed",
        seed.to_str().unwrap(),
        "--out",
        ours.to_str().unwrap()
    ])
    .status
    .success());
    fs::set_permissions(
        ours.join("ca-etcd-key.pem"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let o = pki(&[
        "--seed",
        seed.to_str().unwrap(),
        "--out",
        ours.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", all_output(&o));
    assert!(
        stderr(&o).contains("is readable by other users (mode 0644)")
            && stderr(&o).contains("chmod 0600"),
        "{}",
        stderr(&o)
    );
}

/// Row 13: certificates name only real hosts: no wildcard or path-like name from a URL goes into a
/// SAN, and a member name that is no host name (`node_1`) is simply not a SAN.
#[test]
fn certificates_name_only_hosts() {
    let d = scratch("pki");
    let out = d.path().join("out");
    for url in [
        "https://*.corp.example.com:2379",
        "https://*:2379",
        "https://a..b:2379",
    ] {
        let seed = cluster_file(
            d.path(),
            "wild.yaml",
            NAME,
            "10.8.0.1",
            &format!("etcd_settings_user:\n  advertise-client-urls: \"{url}\"\n"),
        );
        let o = pki(&[
            "--seed",
            seed.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{url}: {}", all_output(&o));
        assert!(
            stderr(&o).contains(
                "a host in advertise-client-urls is neither an IP address nor a host name"
            ),
            "{url}: {}",
            stderr(&o)
        );
        assert!(!out.join(NAME).exists());
    }
    let seed = cluster_file(d.path(), "under.yaml", "node_1", "10.8.0.1", "");
    let o = pki(&[
        "--seed",
        seed.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", all_output(&o));
    let text = ok(Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(out.join("node_1/cert-etcd-server.pem")));
    assert!(
        text.contains("IP Address:10.8.0.1") && !text.contains("node_1"),
        "{text}"
    );
}

/// Rows 2 and 3: what runs as root is verified. A bin dir others can write is refused; an etcdctl
/// replaced after the install is never run by `backup` (the timer's command); a backup dir another
/// user owns is refused before a snapshot is written into it.
#[test]
fn backup_runs_only_the_etcdctl_installed_from_a_dir_only_root_writes() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    let r = s.root.path();
    let out = s.apply(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let backup = |extra: &[&str]| {
        let mut args = vec![
            "backup",
            "--root",
            r.to_str().unwrap(),
            "--dir",
            "/var/backups/etcd",
        ];
        args.extend_from_slice(extra);
        run(&mut s.node.tool(&args))
    };

    // A backup dir another user owns: refused, nothing written there.
    let dir = r.join("var/backups/etcd");
    fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(1000), Some(1000)).unwrap();
    let o = backup(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is owned by uid 1000"),
        "{}",
        stderr(&o)
    );
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    fs::remove_dir(&dir).unwrap();

    // etcdctl replaced by another user's program: never run.
    let marker = s.dir.path().join("ran");
    let etcdctl = r.join("usr/local/bin/etcdctl");
    fs::remove_file(&etcdctl).unwrap();
    fs::write(&etcdctl, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    fs::set_permissions(&etcdctl, fs::Permissions::from_mode(0o755)).unwrap();
    let o = backup(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("etcdctl is not the file etcd-bootstrap installed")
            && stderr(&o).contains("refusing to run it as root"),
        "{}",
        stderr(&o)
    );
    assert!(!marker.exists(), "backup ran the replaced etcdctl");

    // A bin dir others can write: apply refuses it (and so would backup).
    fs::set_permissions(r.join("usr/local/bin"), fs::Permissions::from_mode(0o777)).unwrap();
    let o = s.apply(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("usr/local/bin is writable by everyone"),
        "{}",
        stderr(&o)
    );
    let o = backup(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("writable by everyone"),
        "{}",
        stderr(&o)
    );
    assert!(!marker.exists());
}

/// Row 5: the run lock is root's alone (0600): no other user can open it to hold every run off.
#[test]
fn the_run_lock_is_root_s_alone() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    let lock = s.root.path().join("run/etcd-bootstrap.lock");
    let out = s.apply(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::metadata(&lock).unwrap().mode() & 0o777, 0o600);
    // One an older version left readable is tightened.
    fs::set_permissions(&lock, fs::Permissions::from_mode(0o644)).unwrap();
    let out = s.apply(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::metadata(&lock).unwrap().mode() & 0o777, 0o600);
}

/// Row 8: a hostile mirror's endless body is not written to the end: the download stops as soon as
/// the archive is refused, and a body announced past the cap is refused before it is read.
#[test]
fn a_hostile_mirror_s_endless_body_is_cut_off() {
    let mut s = Single::new(NAME, ADDR, "");
    let sent = s.dir.path().join("sent");
    let (base, server) = s.start_mirror("endless_server.py", &sent);
    s.node.adopt(server);
    let seed_for = |mode: &str| {
        format!(
            "etcd_version: \"3.5.1\"\n\
             etcd_download_url: \"{base}/{mode}/etcd-v3.5.1-linux-amd64.tar.gz\"\n\
             etcd_download_url_checksum: \"sha256:{}\"\n\
             etcd_download_ca_file: /srv/mirror-ca.pem\n",
            "ab".repeat(32)
        )
    };
    let seed0 = fs::read_to_string(&s.seed).unwrap();
    for (mode, why) in [
        (
            "symlink",
            "a symbolic link; an etcd release holds only plain files",
        ),
        ("huge", "is larger than 1024 MiB"),
    ] {
        fs::write(&s.seed, format!("{seed0}{}", seed_for(mode))).unwrap();
        let _ = fs::remove_file(&sent);
        let out = s.apply(&[]);
        assert_eq!(out.status.code(), Some(1), "{mode}: {}", stderr(&out));
        assert!(stderr(&out).contains(why), "{mode}: {}", stderr(&out));
        wait_until(
            Duration::from_secs(10),
            "the mirror to count what it sent",
            || fs::read_to_string(&sent).is_ok_and(|t| !t.trim().is_empty()),
        );
        let bytes: u64 = fs::read_to_string(&sent)
            .unwrap()
            .lines()
            .map(|l| l.parse::<u64>().unwrap())
            .sum();
        // The symlink comes first: one buffer or two, far from the 1 GiB cap.
        assert!(bytes < 64 << 20, "{mode}: the mirror sent {bytes} bytes");
        assert!(!s.root.path().join("usr/local/bin/etcd").exists());
    }
}

/// Row 9: a FIFO (or a link) where the seed names its restore snapshot is refused at once: it
/// would otherwise hold `check` and `apply`, with the run lock, forever.
#[test]
fn a_fifo_for_the_restore_snapshot_is_refused_not_waited_on() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    let r = s.root.path();
    fs::create_dir_all(r.join("srv")).unwrap();
    ok(Command::new("mkfifo").arg(r.join("srv/snap.db")));
    s.add_to_seed(&format!(
        "etcd_restore: {{snapshot: /srv/snap.db, sha256: \"{}\"}}\n",
        "cd".repeat(32)
    ));
    for cmd in ["check", "apply"] {
        let start = Instant::now();
        let mut child = s
            .tool(r, cmd, &[])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                panic!("{cmd} hangs on the FIFO");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", all_output(&out));
        assert!(
            all_output(&out).contains("srv/snap.db is not a regular file (a FIFO)"),
            "{cmd}: {}",
            all_output(&out)
        );
    }
    assert!(!r.join("var/lib/etcd/member").exists());
}

/// Row 10: a file name in `etcd_certificate_data` with a control character (it would become a
/// file name and a line of etcdctl.env) is a seed error.
#[test]
fn control_characters_in_certificate_data_names_are_seed_errors() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    s.add_to_seed("etcd_certificate_data:\n  \"ca\\retcd.pem\": \"x\"\n");
    let out = s.apply(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("etcd_certificate_data: a key is not a plain name"),
        "{}",
        stderr(&out)
    );
    assert!(!s.root.path().join("etc/etcd").exists());
}

/// Row 11: the version is the binary's. A seed naming 3.5.2 whose URL and digest are 3.4.23's is
/// refused before anything is installed (it was installed over 3.5.1 as "a patch upgrade").
#[test]
fn a_release_that_is_not_the_seed_s_version_is_refused() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    let out = s.apply(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let etcd = s.root.path().join("usr/local/bin/etcd");
    let before = fs::read(&etcd).unwrap();
    let sums = fs::read_to_string(fixtures().join("v3.4.23/SHA256SUMS")).unwrap();
    let text = fs::read_to_string(&s.seed)
        .unwrap()
        .replace(&file_release("3.5.1"), "");
    fs::write(
        &s.seed,
        format!(
            "{text}etcd_version: \"3.5.2\"\n\
             etcd_download_url: \"file://{}/v3.4.23/etcd-v3.4.23-linux-amd64.tar.gz\"\n\
             etcd_download_url_checksum: \"sha256:{}\"\n",
            fixtures().display(),
            sums.split_whitespace().next().unwrap()
        ),
    )
    .unwrap();
    let out = s.apply(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("etcd_version is 3.5.2, but the etcd in the release from etcd_download_url reports 3.4.23"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        fs::read(&etcd).unwrap(),
        before,
        "3.4.23 was installed over 3.5.1"
    );
}

/// The answers of a stand-in member at 10.8.0.2 that sends what no etcd would: a name with a
/// carriage return, a health reason that clears the screen and forges a line.
fn hostile_answers() -> serde_json::Value {
    serde_json::json!({
        // Shaped like etcd's answers (a header each): what it sends inside them is the attack.
        "/v3/lease/grant": {"body": {"header": {}, "ID": "7", "TTL": "30"}},
        "/v3/kv/txn": {"body": {"header": {}, "succeeded": true}},
        "/v3/kv/range": {"body": {"header": {}}},
        "/v3/lease/revoke": {"body": {"header": {}}},
        "/v3/lease/keepalive": {"body": {"result": {"header": {}, "ID": "7", "TTL": "30"}}},
        "/v3/cluster/member/list": {"body": {"header": {}, "members": [{
            "ID": "4660", "name": "etcd-node2\r--data-dir=/etc",
            "peerURLs": ["https://10.8.0.2:2380"], "clientURLs": ["https://10.8.0.2:2379"]
        }]}},
        "/v3/maintenance/status": {"body": {"header": {"member_id": "4660"}, "leader": "4660", "version": "3.5.1\u{1b}[31m"}},
        "/version": {"body": {"etcdserver": "3.5.1", "etcdcluster": "3.5.0"}},
        "/health": {"status": 503, "body": {"health": "false", "reason": "\u{1b}[2J\u{1b}[1;1Hetcd-node9 is healthy\r"}},
    })
}

/// Rows 4 and 12: what a member sends is input. A name holding `\r` never reaches the unit (the
/// join is refused, naming the member by ID); `health` and `status` print what it sent escaped.
#[test]
fn a_member_that_sends_anything_reaches_neither_the_unit_nor_the_terminal() {
    let mut s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    let pki = Pki::new(
        &s.dir.path().join("pki2"),
        &[(NAME, ADDR), ("etcd-node2", "10.8.0.2")],
    );
    pki.install(NAME, &s.root.path().join("srv/pki"));
    ok(s.node
        .cmd("ip")
        .args(["addr", "add", "10.8.0.2/32", "dev", "lo"]));
    let answers = s.dir.path().join("answers.json");
    fs::write(&answers, hostile_answers().to_string()).unwrap();
    let mut member = s.node.cmd("python3");
    member
        .arg(support("member_api.py"))
        .arg(pki.ca())
        .arg(pki.node_dir("etcd-node2").join("cert-etcd-server.pem"))
        .arg(pki.node_dir("etcd-node2").join("cert-etcd-server-key.pem"))
        .arg(&answers)
        .args(["10.8.0.2", "2379"]);
    assert_eq!(s.node.serve(member), "serving");
    fs::write(
        &s.seed,
        SeedText::new(&file_release("3.5.1"))
            .member(NAME, ADDR)
            .member("etcd-node2", "10.8.0.2")
            .settings("initial-cluster-state: existing")
            .extra("etcd_join_timeout: 20s\n")
            .text(),
    )
    .unwrap();
    let out = s.apply(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the cluster's member list cannot be written into this node's unit: member 1234 has a name that is not a plain name"),
        "{}",
        stderr(&out)
    );
    assert!(!s
        .root
        .path()
        .join("etc/systemd/system/etcd.service")
        .exists());

    let r = s.root.path().to_str().unwrap();
    let seed = s.seed.to_str().unwrap();
    let health = run(&mut s.node.tool(&[
        "health",
        "--seed",
        seed,
        "--root",
        r,
        "--endpoints",
        "https://10.8.0.2:2379",
    ]));
    let status = run(&mut s.node.tool(&["status", "--seed", seed, "--root", r]));
    for (what, o) in [("health", &health), ("status", &status)] {
        let text = all_output(o);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\r'),
            "{what} printed raw control characters: {text:?}"
        );
    }
    assert!(
        stdout(&health).contains(
            "is unhealthy: health check failed: \\u{1b}[2J\\u{1b}[1;1Hetcd-node9 is healthy\\r"
        ),
        "{}",
        stdout(&health)
    );
    assert!(
        stdout(&status).contains("etcd-node2\\r--data-dir=/etc"),
        "{}",
        stdout(&status)
    );
}

/// A release whose etcd is a program for this machine that does not say it is etcd (here
/// `/bin/true`): refused, nothing installed (#32: it was installed with a warning).
#[test]
fn a_release_whose_etcd_does_not_answer_its_version_is_refused() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    let dir = s.dir.path().join("mute");
    fs::create_dir_all(&dir).unwrap();
    let tarball = dir.join("etcd-v3.5.1-linux-amd64.tar.gz");
    let script = format!(
        "import tarfile,sys\n\
         src=tarfile.open('{fx}/v3.5.1/etcd-v3.5.1-linux-amd64.tar.gz')\n\
         out=tarfile.open('{out}','w:gz')\n\
         for m in src.getmembers():\n\
         \x20   if m.name.endswith('/etcd'):\n\
         \x20       out.add('/bin/true', arcname=m.name)\n\
         \x20   else:\n\
         \x20       out.addfile(m, src.extractfile(m) if m.isfile() else None)\n\
         out.close()\n",
        fx = fixtures().display(),
        out = tarball.display()
    );
    ok(std::process::Command::new("python3").arg("-c").arg(script));
    let sha = ok(std::process::Command::new("sha256sum").arg(&tarball));
    let text = fs::read_to_string(&s.seed)
        .unwrap()
        .replace(&file_release("3.5.1"), "");
    fs::write(
        &s.seed,
        format!(
            "{text}etcd_version: \"3.5.1\"\n\
             etcd_download_url: \"file://{}\"\n\
             etcd_download_url_checksum: \"sha256:{}\"\n",
            tarball.display(),
            sha.split_whitespace().next().unwrap()
        ),
    )
    .unwrap();
    let out = s.apply(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("does not answer --version as etcd 3.5.1 would: refusing to install it")
            || stderr(&out).contains("--help"),
        "{}",
        stderr(&out)
    );
    assert!(
        !s.root.path().join("usr/local/bin/etcd").exists(),
        "installed"
    );
}
