//! The promises that were broken while the doubles were kinder than etcd and systemd (#32): a
//! member that trickles hangs nothing, a lease that expired ends its holder's claim, a member list
//! that is not etcd's is never "alone", an `activating` etcd is restarted. No root, no namespace.

use super::lock::{self, ClusterLock};
use super::restart;
use crate::etcd::api::{Api, ANSWER};
use crate::etcd::health::Checker;
use crate::etcd::mock::MockCluster;
use crate::host::systemd::fake::FakeServices;
use crate::host::systemd::{Active, ServiceManager};
use crate::util::testserver::Response;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const UNIT: &str = "etcd.service";

fn api(c: &MockCluster) -> Api {
    let n = c.with(|s| s.members.len());
    Api::new(c.client(), (0..n).map(|i| c.url(i)).collect())
}

/// A service manager whose jobs stop and start mock member `i`, already running it; its
/// processes are ready at once unless `ready` is false (then `activating`, as an etcd waiting
/// for its peers).
fn services_ready(c: &Arc<MockCluster>, i: usize, ready: bool) -> FakeServices {
    let m = c.clone();
    let mut sm = FakeServices::new(true, move |event, _| match event {
        "stop" => m.stop(i),
        _ => m.restart(i),
    });
    sm.ready_on_start = ready;
    sm.running(UNIT)
}

fn services_of(c: &Arc<MockCluster>, i: usize) -> FakeServices {
    services_ready(c, i, true)
}

/// One byte every 4 s: each read is quick, the answer never ends in time.
fn trickling(body: &str) -> Response {
    Response::trickling(body, Duration::from_secs(4))
}

#[test]
fn a_member_that_trickles_is_a_member_that_did_not_answer() {
    let c = MockCluster::start(3);
    for path in [
        "/health",
        "/v3/maintenance/status",
        "/v3/cluster/member/list",
    ] {
        c.with(|s| {
            s.overrides.insert(
                path.into(),
                trickling(r#"{"health":"true","header":{},"members":[]}"#),
            )
        });
    }
    let a = api(&c);
    let start = Instant::now();
    let e = a.status_of(&c.url(1)).unwrap_err();
    assert!(e.is_busy(), "{e}");
    assert!(e.message.contains("no whole answer within 5s"), "{e}");
    assert!(e.message.contains(&c.url(1)), "names the member: {e}");
    let h = Checker::from_client(c.client()).check(&c.url(2));
    assert!(!h.healthy);
    assert!(
        h.error.as_deref().unwrap().contains("no whole answer"),
        "{h:?}"
    );
    // Every endpoint is asked in turn, each within its own deadline.
    assert!(a.list().is_err());
    let took = start.elapsed();
    assert!(
        took < ANSWER * 6,
        "{took:?}: a deadline did not bound the answer"
    );
}

#[test]
fn a_keep_alive_that_finds_the_lease_gone_ends_the_claim_and_frees_nothing_of_another() {
    let c = MockCluster::start(3);
    let a = api(&c);
    let held = ClusterLock::acquire_ttl(
        &a,
        lock::RESTART,
        "etcd-node1",
        Duration::from_secs(60),
        Duration::from_secs(3),
    )
    .unwrap()
    .unwrap();
    held.still_held().unwrap();
    // The holder is paused past its TTL: its lease expires, another member takes the lock.
    c.advance(10.0);
    let other = ClusterLock::acquire(&a, lock::RESTART, "etcd-node2", Duration::from_secs(60))
        .unwrap()
        .expect("the expired lock is free");
    let e = held.still_held().unwrap_err();
    assert!(e.message.contains("etcd-node2 holds it now"), "{e}");
    // Its keeper hears the same from etcd within a third of the TTL, and stops.
    std::thread::sleep(Duration::from_millis(1500));
    drop(held);
    assert_eq!(
        a.get(lock::RESTART).unwrap().as_deref(),
        Some("etcd-node2"),
        "the lost holder released another's lock"
    );
    other.still_held().unwrap();
}

#[test]
fn a_holder_whose_lease_expired_does_not_restart() {
    let c = Arc::new(MockCluster::start(3));
    let cfg = c.config(0, "etcd_restart_timeout: 5s\n");
    let r = tempfile::tempdir().unwrap();
    let sm = services_of(&c, 0);
    let turn = restart::take_turn(
        &crate::cluster::node::for_test(&cfg, r.path(), &sm),
        "unit changed",
    )
    .unwrap();
    // Paused past its TTL while another member takes the turn.
    c.advance(lock::TTL.as_secs_f64() + 1.0);
    let a = api(&c);
    let _other = ClusterLock::acquire(&a, lock::RESTART, "etcd-node2", Duration::from_secs(60))
        .unwrap()
        .unwrap();
    let e = format!("{:#}", turn.restart(r.path(), &sm).unwrap_err());
    assert!(e.contains("was not restarted (unit changed): lost"), "{e}");
    assert!(e.contains("the restart is left pending"), "{e}");
    let ev: Vec<String> = sm
        .events
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.0.clone())
        .collect();
    assert_eq!(ev, ["start"], "the member restarted without its turn");
    assert_eq!(restart::pending(r.path()).as_deref(), Some("unit changed"));
}

#[test]
fn a_lock_is_not_renewed_past_its_holder_s_deadline() {
    let c = MockCluster::start(1);
    let a = api(&c);
    let held = ClusterLock::acquire_ttl(
        &a,
        lock::RESTART,
        "etcd-node1",
        Duration::from_millis(500),
        Duration::from_secs(3),
    )
    .unwrap()
    .unwrap();
    // The keeper's first renewal comes after the deadline: it renews no more.
    std::thread::sleep(Duration::from_millis(1300));
    let e = held.still_held().unwrap_err();
    assert!(e.message.contains("passed its deadline"), "{e}");
    c.advance(4.0);
    assert_eq!(
        a.get(lock::RESTART).unwrap(),
        None,
        "renewed past its deadline"
    );
}

#[test]
fn a_member_list_that_is_not_etcd_s_never_reads_as_alone() {
    for (what, answer) in [
        ("an empty object", Response::json(200, &json!({}))),
        (
            "no members",
            Response::json(200, &json!({"header": {}, "members": []})),
        ),
        ("text", Response::new(200, "ok")),
        (
            "one foreign member",
            Response::json(
                200,
                &json!({"header": {}, "members": [{"ID": "77", "name": "stranger",
                    "peerURLs": ["https://10.9.9.9:2380"], "clientURLs": ["https://10.9.9.9:2379"]}]}),
            ),
        ),
    ] {
        let c = Arc::new(MockCluster::start(3));
        c.with(|s| {
            s.overrides
                .insert("/v3/cluster/member/list".into(), answer.clone())
        });
        let cfg = c.config(0, "etcd_restart_timeout: 1s\n");
        let r = tempfile::tempdir().unwrap();
        let sm = services_of(&c, 0);
        let e = match restart::take_turn(
            &crate::cluster::node::for_test(&cfg, r.path(), &sm),
            "unit changed",
        ) {
            Ok(_) => panic!("{what}: read as alone"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            e.contains("not etcd's") || e.contains("does not hold etcd-node1"),
            "{what}: {e}"
        );
        assert_eq!(restart::pending(r.path()), None, "{what}");
        assert_eq!(sm.events.lock().unwrap().len(), 1, "{what}: restarted");
    }
}

/// The first member of a new cluster waits for its peers: systemd says `activating` until etcd
/// sends READY, and no member answers. A changed flag restarts it at once; the new process is
/// all there is to wait for.
#[test]
fn an_activating_member_without_quorum_is_restarted_at_once() {
    let c = Arc::new(MockCluster::start(3));
    let cfg = c.config(0, "etcd_restart_timeout: 5s\n");
    c.stop(1);
    c.stop(2);
    // Its own port answers nothing either (an etcd without quorum serves no linearizable read).
    c.with(|s| {
        s.overrides.insert(
            "/v3/cluster/member/list".into(),
            Response::json(503, &json!({"message": "etcdserver: request timed out"})),
        )
    });
    let r = tempfile::tempdir().unwrap();
    let sm = services_ready(&c, 0, false);
    assert_eq!(sm.active_state(UNIT), Active::Activating);
    let before = sm.main_process(UNIT).unwrap();
    let turn = restart::take_turn(
        &crate::cluster::node::for_test(&cfg, r.path(), &sm),
        "unit changed",
    )
    .unwrap();
    turn.restart(r.path(), &sm).unwrap();
    let after = sm.main_process(UNIT).unwrap();
    assert!(after.pid != before.pid, "the old process still runs");
    assert_eq!(restart::pending(r.path()), None);
    assert!(
        c.with(|s| s.log.iter().all(|(_, p)| !p.starts_with("/v3/lease"))),
        "a lock was asked of a cluster without quorum"
    );
}

/// One member's word cannot hold every restart: a member reporting a raft index no leader has
/// (a number it made up) is not the target; the leader's own index is.
#[test]
fn a_member_reporting_a_made_up_raft_index_does_not_stall_a_restart() {
    let c = Arc::new(MockCluster::start(3));
    let cfg = c.config(0, "etcd_restart_timeout: 4s\n");
    let r = tempfile::tempdir().unwrap();
    c.with(|s| s.members[2].raft_index = u64::MAX - 1);
    let sm = services_of(&c, 0);
    let start = Instant::now();
    restart::take_turn(
        &crate::cluster::node::for_test(&cfg, r.path(), &sm),
        "unit changed",
    )
    .unwrap()
    .restart(r.path(), &sm)
    .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_restart_turn_ends_when_a_member_trickles_and_the_lock_is_free_after() {
    let c = Arc::new(MockCluster::start(3));
    let cfg = c.config(0, "etcd_restart_timeout: 3s\n");
    let r = tempfile::tempdir().unwrap();
    c.with(|s| {
        s.overrides
            .insert("/health".into(), trickling(r#"{"health":"true"}"#))
    });
    let start = Instant::now();
    let sm = services_of(&c, 0);
    let e = format!(
        "{:#}",
        restart::take_turn(
            &crate::cluster::node::for_test(&cfg, r.path(), &sm),
            "unit changed"
        )
        .err()
        .expect("a turn with every other member trickling")
    );
    assert!(e.contains("no turn within etcd_restart_timeout"), "{e}");
    assert!(e.contains("etcd-node2"), "names the member: {e}");
    assert!(
        start.elapsed() < Duration::from_secs(40),
        "{:?}",
        start.elapsed()
    );
    c.with(|s| s.overrides.clear());
    assert_eq!(
        api(&c).get(lock::RESTART).unwrap(),
        None,
        "the lock is held"
    );
}
