//! Root at first boot, on images others built: the tool trusts only what it verified. Each test
//! is an attack (or a careless operator) seen against an earlier build, run against the real
//! binary in a node's namespaces with `--root`.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

const NAME: &str = "etcd-node1";
const ADDR: &str = "10.8.0.1";

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// A script that, if anyone ever runs it, leaves `marker` behind.
fn planted(path: &Path, marker: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn nothing_unverified_in_the_download_dir_is_ever_run_or_installed() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    let r = s.root.path();
    let marker = s.dir.path().join("ran");
    planted(&r.join("opt/etcd/etcd-v3.5.1-linux-amd64/etcd"), &marker);
    for args in [&["check"][..], &["apply", "--dry-run"][..]] {
        let out = run(&mut s.tool(r, args[0], &args[1..]));
        let all = stdout(&out) + &stderr(&out);
        assert!(
            all.contains("the flags check is skipped: there is no verified etcd binary"),
            "{args:?}: {all}"
        );
        assert!(!marker.exists(), "{args:?} ran the planted binary");
    }
    // apply verifies the tarball, stages it anew, and installs the tarball's etcd, not the plant.
    let out = s.apply(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!marker.exists(), "apply ran the planted binary");
    let installed = fs::read(r.join("usr/local/bin/etcd")).unwrap();
    assert!(installed.starts_with(b"\x7fELF") && installed.len() > 1_000_000);
    // A staged binary changed after staging is not the verified one: restaged, never run.
    planted(&r.join("opt/etcd/etcd-v3.5.1-linux-amd64/etcd"), &marker);
    let out = s.apply(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!marker.exists(), "a tampered staged binary was run");
    assert!(fs::read(r.join("opt/etcd/etcd-v3.5.1-linux-amd64/etcd"))
        .unwrap()
        .starts_with(b"\x7fELF"));
}

#[test]
fn a_download_dir_others_can_write_is_refused_and_umask_000_changes_nothing() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    // umask 000: what the tool makes is still not group/other-writable.
    let root2 = s.another_root();
    let out = run(Command::new("sh").arg("-c").arg(format!(
        "umask 000; {} fetch --seed {} --root {}",
        bin().display(),
        s.seed.display(),
        root2.path().display()
    )));
    assert!(out.status.success(), "{}", stderr(&out));
    for d in [
        "opt/etcd",
        "opt/etcd/etcd-v3.5.1-linux-amd64",
        "var/lib/etcd-bootstrap",
        "run",
    ] {
        assert_eq!(
            mode(&root2.path().join(d)) & 0o022,
            0,
            "{d} is group/other-writable"
        );
    }
    assert_eq!(
        mode(&root2.path().join("opt/etcd/etcd-v3.5.1-linux-amd64.tar.gz")) & 0o077,
        0,
        "the tarball is readable by others"
    );
    // A download dir that others own, or can write, is refused: nothing is run or installed.
    let root3 = s.another_root();
    let dl = root3.path().join("opt/etcd");
    fs::create_dir_all(&dl).unwrap();
    fs::set_permissions(&dl, fs::Permissions::from_mode(0o777)).unwrap();
    let out = run(&mut s.tool(root3.path(), "apply", &[]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{} is writable by everyone (mode 0777)",
            dl.display()
        )) && err.contains("chmod go-w"),
        "{err}"
    );
    assert!(!root3.path().join("etc/etcd").exists());
    fs::set_permissions(&dl, fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&dl, Some(65534), None).unwrap();
    let out = run(&mut s.tool(root3.path(), "check", &[]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{} is owned by uid 65534", dl.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn downloads_never_write_through_a_planted_link() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    let r = s.root.path();
    let victim = s.dir.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    let dl = r.join("opt/etcd");
    fs::create_dir_all(&dl).unwrap();
    for name in [
        "etcd-v3.5.1-linux-amd64.tar.gz",
        "etcd-v3.5.1-linux-amd64.tar.gz.partial",
    ] {
        std::os::unix::fs::symlink(&victim, dl.join(name)).unwrap();
    }
    let out = run(&mut s.tool(r, "fetch", &[]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    let cached = dl.join("etcd-v3.5.1-linux-amd64.tar.gz");
    assert!(
        fs::symlink_metadata(&cached).unwrap().is_file(),
        "the cache entry is a link"
    );
}

/// The base64 lines of a private key, as 16-byte pieces no output may hold.
fn key_pieces(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(|l| l[..16].to_string())
        .collect()
}

#[test]
fn a_private_key_in_any_seed_position_never_reaches_the_output() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    let key = fs::read_to_string(s.pki.node_dir(NAME).join("cert-etcd-server-key.pem")).unwrap();
    let block =
        |indent: &str| -> String { key.lines().map(|l| format!("{indent}{l}\n")).collect() };
    let mut seeds: Vec<(String, String)> = Vec::new();
    for k in etcd_bootstrap::seed::schema::SCALARS {
        seeds.push((k.name.into(), format!("{}: |\n{}", k.name, block("  "))));
    }
    for (what, text) in [
        (
            "member name",
            format!(
                "etcd_members:\n  - name: |\n{}    address: 10.8.0.1\n",
                block("      ")
            ),
        ),
        (
            "member address",
            format!(
                "etcd_members:\n  - name: n\n    address: |\n{}",
                block("      ")
            ),
        ),
        (
            "a setting",
            format!("etcd_settings_user:\n  name: |\n{}", block("    ")),
        ),
        (
            "a setting name",
            format!("etcd_settings_user:\n  ? |\n{}  : x\n", block("    ")),
        ),
        (
            "a service option",
            format!("etcd_service_options:\n  - |\n{}", block("    ")),
        ),
        (
            "a certificate name",
            format!("etcd_certificates:\n  - |\n{}", block("    ")),
        ),
        (
            "the members, mistyped",
            format!("etcd_members: |\n{}", block("  ")),
        ),
        (
            "the settings, mistyped",
            format!("etcd_settings: |\n{}", block("  ")),
        ),
        (
            "the certificate data, mistyped",
            format!("etcd_certificate_data: |\n{}", block("  ")),
        ),
        (
            "the backup dir",
            format!("etcd_backup:\n  dir: |\n{}", block("    ")),
        ),
        (
            "the backup interval",
            format!("etcd_backup:\n  interval: |\n{}", block("    ")),
        ),
        (
            "the restore snapshot",
            format!(
                "etcd_restore:\n  sha256: x\n  snapshot: |\n{}",
                block("    ")
            ),
        ),
        (
            "the restore digest",
            format!(
                "etcd_restore:\n  snapshot: /s\n  sha256: |\n{}",
                block("    ")
            ),
        ),
        (
            "a template",
            format!(
                "etcd_version: \"{{{{ nope }}}}\"\netcd_interface: |\n{}",
                block("  ")
            ),
        ),
    ] {
        seeds.push((what.into(), text));
    }
    let pieces = key_pieces(&key);
    for (what, text) in seeds {
        let seed = s.dir.path().join("hostile.yaml");
        fs::write(&seed, &text).unwrap();
        for cmd in ["check", "apply", "render"] {
            let out = run(&mut s.node.tool(&[
                cmd,
                "--seed",
                seed.to_str().unwrap(),
                "--root",
                s.root.path().to_str().unwrap(),
                "-v",
            ]));
            assert!(!out.status.success(), "{what}: {cmd} accepted it");
            let all = stdout(&out) + &stderr(&out);
            assert!(
                !all.contains("PRIVATE KEY"),
                "{what}: {cmd} printed the key: {all}"
            );
            for p in &pieces {
                assert!(
                    !all.contains(p.as_str()),
                    "{what}: {cmd} printed key material: {all}"
                );
            }
        }
    }
}

#[test]
fn system_dirs_are_seed_errors_naming_the_key() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    for (line, key) in [
        (
            "etcd_data_dir: /var/lib\n",
            "etcd_data_dir: is /var/lib, a system dir",
        ),
        (
            "etcd_conf_dir: /etc/\n",
            "etcd_conf_dir: is /etc, a system dir",
        ),
        (
            "etcd_download_dir: /opt/etcd/..\n",
            "etcd_download_dir: is /opt, a system dir",
        ),
        ("  wal-dir: /var\n", "wal-dir: is /var, a system dir"),
        (
            "etcd_backup: {dir: /var/backups}\n",
            "etcd_backup.dir: is /var/backups, a system dir",
        ),
        ("etcd_data_dir: /\n", "etcd_data_dir: is /, a system dir"),
        // #23 row 14: systemd's and ssh's dirs, root's keys, the tool's own state.
        (
            "etcd_data_dir: /usr/lib/systemd\n",
            "etcd_data_dir: is /usr/lib/systemd, a system dir",
        ),
        (
            "etcd_data_dir: /usr/lib/systemd/system/etcd\n",
            "etcd_data_dir: is /usr/lib/systemd/system/etcd, a system dir",
        ),
        (
            "etcd_data_dir: /root/.ssh\n",
            "etcd_data_dir: is /root/.ssh, a system dir",
        ),
        (
            "etcd_conf_dir: /etc/ssh\n",
            "etcd_conf_dir: is /etc/ssh, a system dir",
        ),
        (
            "etcd_data_dir: /var/lib/etcd-bootstrap\n",
            "etcd_data_dir: is /var/lib/etcd-bootstrap, a system dir",
        ),
        (
            "etcd_backup: {dir: /var/lib/etcd-bootstrap/backups}\n",
            "etcd_backup.dir: is /var/lib/etcd-bootstrap/backups, a system dir",
        ),
        // #32: by rule, not by list: no data under /etc, /run, anyone's home.
        (
            "etcd_data_dir: /etc/profile.d\n",
            "etcd_data_dir: is /etc/profile.d, under /etc: etcd's data never goes there",
        ),
        (
            "etcd_data_dir: /etc/cron.daily\n",
            "etcd_data_dir: is /etc/cron.daily, under /etc",
        ),
        (
            "etcd_data_dir: /home/alice/etcd\n",
            "etcd_data_dir: is /home/alice/etcd, under /home",
        ),
        (
            "  wal-dir: /run/etcd-wal\n",
            "wal-dir: is /run/etcd-wal, under /run",
        ),
    ] {
        let seed = s.dir.path().join("sysdir.yaml");
        let text = fs::read_to_string(&s.seed).unwrap();
        let text = if line.starts_with(' ') {
            text.replace(
                "  log-outputs: stderr\n",
                &format!("  log-outputs: stderr\n{line}"),
            )
        } else {
            format!("{line}{text}")
        };
        fs::write(&seed, text).unwrap();
        let out = run(&mut s.node.tool(&[
            "apply",
            "--seed",
            seed.to_str().unwrap(),
            "--root",
            s.root.path().to_str().unwrap(),
        ]));
        assert_eq!(out.status.code(), Some(2), "{line}: {}", stderr(&out));
        assert!(stderr(&out).contains(key), "{line}: {}", stderr(&out));
        assert!(!s.root.path().join("etc/etcd").exists());
    }
}

#[test]
fn root_is_a_jail_for_paths_links_and_the_lock() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    let r = s.root.path();
    // `..` stops at the root.
    s.add_to_seed("etcd_download_dir: /../ESCAPED-ebt\n");
    let out = s.apply(&["--no-start"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(r
        .join("ESCAPED-ebt/etcd-v3.5.1-linux-amd64.tar.gz")
        .is_file());
    assert!(
        !Path::new("/ESCAPED-ebt").exists(),
        "wrote outside the root"
    );
    // An absolute link inside the root resolves against the root.
    let root2 = s.another_root();
    let r2 = root2.path();
    fs::create_dir_all(r2.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink("/elsewhere", r2.join("opt")).unwrap();
    let seed = fs::read_to_string(&s.seed)
        .unwrap()
        .replace("etcd_download_dir: /../ESCAPED-ebt\n", "");
    fs::write(&s.seed, seed).unwrap();
    let out = s.apply_in(r2, &[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(r2
        .join("elsewhere/etcd/etcd-v3.5.1-linux-amd64.tar.gz")
        .is_file());
    assert!(
        !Path::new("/elsewhere/etcd").exists(),
        "followed the link out of the root"
    );
    // The lock is never opened through a link.
    let root3 = s.another_root();
    let victim = s.dir.path().join("lock-victim");
    fs::write(&victim, "precious").unwrap();
    fs::create_dir_all(root3.path().join("run")).unwrap();
    std::os::unix::fs::symlink(&victim, root3.path().join("run/etcd-bootstrap.lock")).unwrap();
    let out = s.apply_in(root3.path(), &[], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("opening the lock"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    // A dir of the install that became a link is refused, not chmodded through.
    let victim_dir = s.dir.path().join("victim-dir");
    fs::create_dir_all(&victim_dir).unwrap();
    fs::set_permissions(&victim_dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::rename(r2.join("etc/etcd"), s.dir.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(&victim_dir, r2.join("etc/etcd")).unwrap();
    let out = s.apply_in(r2, &[], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("should be a directory but is not"),
        "{}",
        stderr(&out)
    );
    assert_eq!(mode(&victim_dir), 0o755);
}

#[test]
fn an_https_checksum_redirected_to_http_is_refused() {
    let fx = fixtures();
    let mut s = Single::new(NAME, ADDR, "");
    let (base, server) = s.start_mirror("https_server.py", &fx);
    s.node.adopt(server);
    // A plain-http server with the same files, and an https one that redirects to it.
    let mut plain = s.node.cmd("python3");
    plain.args(["-u", "-c", "import http.server,functools,sys; h=functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1]); s=http.server.ThreadingHTTPServer(('127.0.0.1',0),h); print(s.server_address[1],flush=True); s.serve_forever()"]).arg(&fx);
    let http_port = s.node.serve(plain);
    let mut redirect = s.node.cmd("python3");
    redirect
        .arg(support("redirect_server.py"))
        .arg(format!("http://127.0.0.1:{http_port}"))
        .arg(s.dir.path().join("mirror-pki/mirror/cert-etcd-server.pem"))
        .arg(
            s.dir
                .path()
                .join("mirror-pki/mirror/cert-etcd-server-key.pem"),
        );
    let redirect_port = s.node.serve(redirect);
    s.add_to_seed(&format!(
        "etcd_version: \"3.5.1\"\n\
         etcd_download_url: \"{base}/v3.5.1/etcd-v3.5.1-linux-amd64.tar.gz\"\n\
         etcd_download_url_checksum: \"sha256:https://127.0.0.1:{redirect_port}/v3.5.1/SHA256SUMS\"\n\
         etcd_download_ca_file: /srv/mirror-ca.pem\n"
    ));
    let out = s.apply(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "refusing the redirect from https://127.0.0.1:{redirect_port}/v3.5.1/SHA256SUMS to \
             http://127.0.0.1:{http_port}/v3.5.1/SHA256SUMS: it leaves https"
        )),
        "{err}"
    );
    assert!(!err.contains("trying again"), "{err}");
    assert!(!s.root.path().join("etc/etcd").exists());
}

#[test]
fn a_seed_that_expands_past_8_mib_is_refused() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    let mut y = format!("etcd_x_anchor: &big \"{}\"\n", "x".repeat(100_000));
    y = format!("# a billion laughs\n{y}");
    let bomb = format!(
        "{}etcd_certificates: [{}]\n",
        y.replace("etcd_x_anchor", "etcd_version"),
        vec!["*big"; 5000].join(", ")
    );
    assert!(bomb.len() < 140_000);
    let seed = s.dir.path().join("bomb.yaml");
    fs::write(&seed, bomb).unwrap();
    let out = run(&mut s.node.tool(&[
        "render",
        "--seed",
        seed.to_str().unwrap(),
        "--root",
        s.root.path().to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("expands to more than 8 MiB"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn control_characters_never_reach_the_unit() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    s.add_to_seed(
        "etcd_service_options: [\"Environment=A=1\\rExecStartPre=+/nonexistent/evil\"]\n",
    );
    let out = s.apply(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("etcd_service_options[0]: contains a control character"),
        "{}",
        stderr(&out)
    );
    assert!(!s
        .root
        .path()
        .join("etc/systemd/system/etcd.service")
        .exists());
}

/// #32: a data dir that holds files that are not etcd's is refused before anything is made
/// etcd's (0700, etcd:etcd): only etcd's member/ (and a file system's lost+found) may be there.
#[test]
fn a_data_dir_that_holds_files_not_etcds_is_refused() {
    let s = Single::new(NAME, ADDR, &file_release("3.5.1"));
    let data = s.root.path().join("srv/shared");
    fs::create_dir_all(data.join("lost+found")).unwrap();
    fs::write(data.join("report.txt"), "someone's\n").unwrap();
    let text = fs::read_to_string(&s.seed).unwrap();
    fs::write(&s.seed, format!("etcd_data_dir: /srv/shared\n{text}")).unwrap();
    let out = s.apply(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "etcd_data_dir /srv/shared holds files that are not etcd's (report.txt): refusing"
        ),
        "{}",
        stderr(&out)
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(&data).unwrap().uid(), 0, "made etcd's");
    assert!(!s.root.path().join("etc/etcd").exists());
    // Only lost+found (a file system of its own): accepted.
    fs::remove_file(data.join("report.txt")).unwrap();
    let out = s.apply(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
}
