//! The live path, without a VM: `apply` with no `--root` in a node whose /etc, /var/lib, /opt,
//! /usr/local/bin, /srv and /run are its own, with /run/systemd/system present and a supervising
//! `systemctl` first on PATH (it records each call and really runs etcd). What the tool asks of
//! systemd is asserted call by call.

mod common;

use common::*;
use std::fs;

const NAME: &str = "etcd-node1";
const ADDR: &str = "10.8.0.1";

#[test]
fn without_root_apply_enables_and_starts_and_restarts_only_when_etcd_reads_a_change() {
    let mut node = Node::bare(NAME, ADDR, Mounts::Live, None);
    node.add_wg0();
    let s = Single::with_node(node, &file_release("3.5.1"));
    let srv = s.node.private("/srv");
    s.pki.install(NAME, &srv.join("pki"));
    let seed = s.seed.to_str().unwrap();
    let apply = || run(&mut s.node.tool(&["apply", "--seed", seed]));

    // cloud-init wrote wg0's config: apply enables wg-quick@wg0 so wg0 comes up at every boot.
    let etc = s.node.private("/etc");
    fs::create_dir_all(etc.join("wireguard")).unwrap();
    fs::write(etc.join("wireguard/wg0.conf"), "[Interface]\n").unwrap();

    // First install: enable (no reload: systemd reads a new unit when it starts it), start
    // without blocking; then the maintenance timer, live.
    let out = apply();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        s.node.changing_systemctl_calls(0),
        vec![
            "enable --quiet --no-reload etcd.service",
            "enable --quiet --no-reload wg-quick@wg0.service",
            "start --no-block etcd.service",
            // etcd_maintenance is on by default: its timer, once etcd runs.
            "enable --quiet --no-reload etcd-maintain.timer",
            "start --no-block etcd-maintain.timer"
        ]
    );
    assert!(etc.join("etcd/etcdctl.env").is_file());
    assert!(etc.join("systemd/system/etcd.service").is_file());
    for unit in ["etcd-maintain.service", "etcd-maintain.timer"] {
        assert!(etc.join("systemd/system").join(unit).is_file(), "{unit}");
    }
    assert!(s.node.private("/usr/local/bin").join("etcd").is_file());
    assert!(s
        .node
        .private("/var/lib")
        .join("etcd-bootstrap/applied")
        .is_file());
    assert!(
        !std::path::Path::new("/etc/etcd/etcdctl.env").exists() || {
            // The host's own file, if any, is not ours: the node's /etc is a private copy.
            !fs::read_to_string("/etc/etcd/etcdctl.env")
                .unwrap_or_default()
                .contains(ADDR)
        }
    );

    // Nothing changed: no reload, no enable, no start, no restart.
    let n = s.node.systemctl_calls().len();
    let out = apply();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("nothing changed"), "{}", stderr(&out));
    assert_eq!(s.node.changing_systemctl_calls(n), Vec::<String>::new());

    // Only etcdctl.env differs (etcd never reads it): rewritten, no restart.
    fs::write(etc.join("etcd/etcdctl.env"), "ETCDCTL_API=3\n").unwrap();
    let n = s.node.systemctl_calls().len();
    let out = apply();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("update    file   /etc/etcd/etcdctl.env (content)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(s.node.changing_systemctl_calls(n), Vec::<String>::new());

    // New certificates (every leaf reissued by the same CA): exactly one restart.
    let seed_of_pki = s.pki.dir.with_extension("seed.yaml");
    let pki = Pki::for_seed(&s.pki.dir, &seed_of_pki, &["--renew-before", "3650days"]);
    pki.install(NAME, &srv.join("pki"));
    let n = s.node.systemctl_calls().len();
    let out = apply();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("update    cert   /etc/etcd/cert-etcd-server.pem (content)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        s.node.changing_systemctl_calls(n),
        vec!["restart --no-block etcd.service"]
    );

    // A changed setting rewrites the unit systemd has loaded: one reload, then one restart.
    SeedText::new(&file_release("3.5.1"))
        .member(NAME, ADDR)
        .settings("heartbeat-interval: \"150\"")
        .write(&s.seed);
    let n = s.node.systemctl_calls().len();
    let out = apply();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        s.node.changing_systemctl_calls(n),
        vec!["daemon-reload", "restart --no-block etcd.service"]
    );
    let unit = fs::read_to_string(etc.join("systemd/system/etcd.service")).unwrap();
    assert!(unit.contains("--heartbeat-interval=\"150\""), "{unit}");
}
