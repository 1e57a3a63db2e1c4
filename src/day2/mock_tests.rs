//! Joining a running cluster against a stand-in cluster (`etcd::mock`): added when every member is
//! started, waiting while another join is pending, reusing its own entry, replacing only a member
//! that is gone, promoted once a learner, and never writing what a member sent into a unit.

use super::join::{self, Preview};
use crate::etcd::mock::MockCluster;
use crate::state::MemberRecord;
use crate::util::testserver::Response;
use serde_json::json;

const JOIN: &str = "etcd_settings_user:\n  initial-cluster-state: existing\n";

fn adds(c: &MockCluster) -> usize {
    c.with(|s| {
        s.log
            .iter()
            .filter(|(_, p)| p.ends_with("member/add"))
            .count()
    })
}

#[test]
fn a_new_node_is_added_once_every_member_is_started_and_records_it() {
    let c = MockCluster::start(3);
    let cfg = c.joining("etcd-node4", "127.0.0.4", JOIN);
    let spec = cfg.join.clone().unwrap();
    let r = tempfile::tempdir().unwrap();
    let j = join::join(
        &crate::cluster::node::offline_for_test(&cfg, r.path()),
        &spec,
    )
    .unwrap();
    assert_eq!(adds(&c), 1);
    let peer = |i: u32| format!("https://127.0.0.{i}:{}", c.port + 1);
    let want: Vec<String> = (1..=4)
        .map(|i| format!("etcd-node{i}={}", peer(i)))
        .collect();
    assert_eq!(j.initial_cluster, want.join(","));
    assert!(!j.learner);
    let rec = MemberRecord::load(r.path()).unwrap();
    assert_eq!(rec.initial_cluster, j.initial_cluster);
    // The lock it took is free again.
    assert_eq!(c.with(|s| s.kv.len()), 0);
    // Once etcd ran from it, a re-run asks the cluster nothing.
    std::fs::create_dir_all(r.path().join("var/lib/etcd/member")).unwrap();
    let asked = c.with(|s| s.log.len());
    let again = join::join(
        &crate::cluster::node::offline_for_test(&cfg, r.path()),
        &spec,
    )
    .unwrap();
    assert_eq!(again.initial_cluster, j.initial_cluster);
    assert_eq!(c.with(|s| s.log.len()), asked);
}

#[test]
fn a_join_waits_while_another_member_is_added_but_not_started() {
    let c = MockCluster::start(3);
    c.with(|s| {
        let mut m = s.members[2].clone();
        m.id = 0x77;
        m.name.clear();
        m.started = false;
        m.learner = true;
        m.addr = "127.0.0.9".into();
        s.members.push(m);
    });
    let cfg = c.joining(
        "etcd-node4",
        "127.0.0.4",
        &format!("{JOIN}etcd_join_timeout: 1s\n"),
    );
    let r = tempfile::tempdir().unwrap();
    let e = format!(
        "{:#}",
        join::join(
            &crate::cluster::node::offline_for_test(&cfg, r.path()),
            cfg.join.as_ref().unwrap()
        )
        .unwrap_err()
    );
    assert!(
        e.contains("within etcd_join_timeout (1s)") && e.contains("members join one at a time"),
        "{e}"
    );
    assert_eq!(adds(&c), 0);
    match join::preview(
        &crate::cluster::node::offline_for_test(&cfg, r.path()),
        cfg.join.as_ref().unwrap(),
    )
    .unwrap()
    {
        Preview::Busy(why) => assert!(why.contains("(not started) 77"), "{why}"),
        Preview::Would(j) => panic!("{}", j.action),
    }
}

#[test]
fn a_node_whose_entry_was_added_before_reuses_it() {
    let c = MockCluster::start(3);
    c.with(|s| {
        let mut m = s.members[2].clone();
        m.id = 0x99;
        m.name.clear();
        m.started = false;
        m.addr = "127.0.0.4".into();
        s.members.push(m);
    });
    let cfg = c.joining("etcd-node4", "127.0.0.4", JOIN);
    let r = tempfile::tempdir().unwrap();
    let j = join::join(
        &crate::cluster::node::offline_for_test(&cfg, r.path()),
        cfg.join.as_ref().unwrap(),
    )
    .unwrap();
    assert_eq!(adds(&c), 0);
    assert_eq!(j.id, Some(0x99));
    assert!(j.action.contains("reusing member 99"), "{}", j.action);
}

#[test]
fn a_learner_joins_and_is_promoted() {
    let c = MockCluster::start(3);
    let cfg = c.joining(
        "etcd-node4",
        "127.0.0.4",
        &format!("{JOIN}etcd_join_as_learner: true\n"),
    );
    let r = tempfile::tempdir().unwrap();
    let j = join::join(
        &crate::cluster::node::offline_for_test(&cfg, r.path()),
        cfg.join.as_ref().unwrap(),
    )
    .unwrap();
    assert!(j.learner);
    let id = j.id.unwrap();
    assert!(c.with(|s| s.members.iter().any(|m| m.id == id && m.learner)));
    // Not before it started: the promotion waits for the learner to run and catch up.
    let e = format!(
        "{:#}",
        join::promote(
            &crate::cluster::node::offline_for_test(&cfg, r.path()),
            id,
            std::time::Duration::from_millis(600)
        )
        .unwrap_err()
    );
    assert!(e.contains("in sync with leader"), "{e}");
    c.with(|s| {
        let m = s.members.iter_mut().find(|m| m.id == id).unwrap();
        m.started = true;
        m.name = "etcd-node4".into();
    });
    join::promote(
        &crate::cluster::node::offline_for_test(&cfg, r.path()),
        id,
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    assert!(c.with(|s| s.members.iter().all(|m| !m.learner)));
    assert!(!MemberRecord::load(r.path()).unwrap().learner);
}

#[test]
fn replace_removes_a_member_only_once_it_is_gone() {
    let c = MockCluster::start(3);
    let extra = format!(
        "{JOIN}etcd_replace_member: etcd-node3\netcd_replace_grace: 1s\netcd_join_timeout: 2s\n"
    );
    let cfg = c.joining("etcd-node4", "127.0.0.4", &extra);
    let r = tempfile::tempdir().unwrap();
    // etcd-node3 still answers: not removed.
    let e = format!(
        "{:#}",
        join::join(
            &crate::cluster::node::offline_for_test(&cfg, r.path()),
            cfg.join.as_ref().unwrap()
        )
        .unwrap_err()
    );
    assert!(
        e.contains("etcd_replace_member: etcd-node3")
            && e.contains("refusing to remove a working member"),
        "{e}"
    );
    assert_eq!(c.with(|s| s.members.len()), 3);
    c.stop(2);
    let j = join::join(
        &crate::cluster::node::offline_for_test(&cfg, r.path()),
        cfg.join.as_ref().unwrap(),
    )
    .unwrap();
    assert!(c.with(|s| s.members.iter().all(|m| m.name != "etcd-node3")));
    assert!(
        !j.initial_cluster.contains("etcd-node3="),
        "{}",
        j.initial_cluster
    );
    assert!(
        j.initial_cluster.contains("etcd-node4="),
        "{}",
        j.initial_cluster
    );
}

#[test]
fn a_member_list_that_cannot_go_into_a_unit_stops_the_join() {
    let c = MockCluster::start(1);
    c.with(|s| {
        s.overrides.insert(
            "/v3/cluster/member/list".into(),
            Response::json(200, &json!({"header": {}, "members": [{"ID": "4660", "name": "n1\r--data-dir=/etc",
                "peerURLs": ["https://127.0.0.1:2380"], "clientURLs": ["https://127.0.0.1:2379"]}]})),
        )
    });
    let cfg = c.joining("etcd-node4", "127.0.0.4", JOIN);
    let r = tempfile::tempdir().unwrap();
    let e = format!(
        "{:#}",
        join::join(
            &crate::cluster::node::offline_for_test(&cfg, r.path()),
            cfg.join.as_ref().unwrap()
        )
        .unwrap_err()
    );
    assert!(
        e.contains("member 1234 has a name that is not a plain name"),
        "{e}"
    );
    assert!(!e.contains('\r'));
    assert_eq!(adds(&c), 0);
    assert!(MemberRecord::load(r.path()).is_none());
}
