//! `status` against a stand-in cluster (`etcd::mock`): each member from the cluster's own list,
//! what it sent escaped, a pending restart, promotion and backup age, and a member that trickles.
//! No root, no namespace.

use crate::cluster::restart;
use crate::etcd::mock::MockCluster;
use crate::host::systemd::fake::FakeServices;
use crate::host::systemd::ServiceManager;
use crate::util::testserver::Response;
use std::time::{Duration, Instant};

const UNIT: &str = "etcd.service";

fn root() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn stamp(root: &std::path::Path, version: &str) {
    crate::state::Stamp {
        etcd_version: version.into(),
        ..Default::default()
    }
    .save(root)
    .unwrap();
}

#[test]
fn status_tells_each_member_from_the_cluster_s_own_list_escaped() {
    let c = MockCluster::start(3);
    let cfg = c.config(0, "");
    let r = root();
    stamp(r.path(), "3.5.1");
    let s = super::gather(&crate::cluster::node::offline_for_test(&cfg, r.path()));
    let text = s.checks.text();
    for i in 1..=3 {
        assert!(
            text.contains(&format!(
                "ok       members  etcd-node{i} at https://127.0.0.{i}:"
            )),
            "{text}"
        );
    }
    c.stop(1);
    c.with(|s| s.members[2].name = "n3\u{1b}[2J".into());
    let text = super::gather(&crate::cluster::node::offline_for_test(&cfg, r.path()))
        .checks
        .text();
    assert!(
        text.contains("error    members  etcd-node2 at https://127.0.0.2:"),
        "{text}"
    );
    assert!(
        text.contains("n3\\u{1b}[2J at https://127.0.0.3:"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'));
}

#[test]
fn status_says_a_restart_is_pending() {
    let c = MockCluster::start(1);
    let cfg = c.config(0, "");
    let r = root();
    stamp(r.path(), "3.5.1");
    restart::want(r.path(), "unit changed").unwrap();
    let text = super::gather(&crate::cluster::node::offline_for_test(&cfg, r.path()))
        .checks
        .text();
    assert!(
        text.contains(
            "warning  pending  a restart of etcd.service is pending (unit changed): run apply"
        ),
        "{text}"
    );
    let sm = FakeServices::new(true, |_, _| {});
    assert!(!sm.is_active(UNIT));
}

#[test]
fn status_warns_of_a_pending_promotion_and_a_backup_twice_as_old_as_its_interval() {
    let c = MockCluster::start(2);
    c.with(|s| s.members[0].learner = true);
    let cfg = c.config(0, "etcd_backup: {dir: /var/backups/etcd, interval: 1h}\n");
    let r = root();
    stamp(r.path(), "3.5.1");
    let dir = r.path().join("var/backups/etcd");
    std::fs::create_dir_all(&dir).unwrap();
    let snap = dir.join("etcd-snapshot-20260101T000000Z-rev9.db");
    std::fs::write(&snap, "x").unwrap();
    let three_hours_ago = std::time::SystemTime::now() - Duration::from_secs(3 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&snap)
        .unwrap()
        .set_modified(three_hours_ago)
        .unwrap();
    let s = super::gather(&crate::cluster::node::offline_for_test(&cfg, r.path()));
    let text = s.checks.text();
    assert!(
        text.contains(
            "warning  pending  this member is a learner: promotion is pending (run apply)"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "is 3h old, more than twice the interval (1h): is etcd-backup.timer running?"
        ),
        "{text}"
    );
    assert!(!s.well());
    // A fresh snapshot is fine.
    std::fs::File::options()
        .write(true)
        .open(&snap)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    let text = super::gather(&crate::cluster::node::offline_for_test(&cfg, r.path()))
        .checks
        .text();
    assert!(
        text.contains("ok       backup   the newest snapshot"),
        "{text}"
    );
}

/// `status` with every member trickling its health: it ends, each answer bounded, and says so.
#[test]
fn status_ends_when_members_trickle() {
    let c = MockCluster::start(3);
    let cfg = c.config(0, "");
    let r = root();
    c.with(|s| {
        s.overrides.insert(
            "/health".into(),
            Response::trickling(r#"{"health":"true"}"#, Duration::from_secs(4)),
        )
    });
    let start = Instant::now();
    let text = super::gather(&crate::cluster::node::offline_for_test(&cfg, r.path()))
        .checks
        .text();
    assert!(text.contains("no whole answer within 5s"), "{text}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
}
