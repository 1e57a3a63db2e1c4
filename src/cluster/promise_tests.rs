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
    Response {
        trickle: Some(Duration::from_secs(4)),
        ..Response::new(200, body.to_string())
    }
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
fn status_and_a_restart_turn_end_when_a_member_trickles_and_the_lock_is_free_after() {
    let c = Arc::new(MockCluster::start(3));
    let cfg = c.config(0, "etcd_restart_timeout: 3s\n");
    let r = tempfile::tempdir().unwrap();
    c.with(|s| {
        s.overrides
            .insert("/health".into(), trickling(r#"{"health":"true"}"#))
    });
    let start = Instant::now();
    let text = super::status::gather(&cfg, r.path()).checks.text();
    assert!(text.contains("no whole answer within 5s"), "{text}");
    let sm = services_of(&c, 0);
    let e = format!(
        "{:#}",
        restart::take_turn(&cfg, r.path(), &sm, "unit changed")
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
    let turn = restart::take_turn(&cfg, r.path(), &sm, "unit changed").unwrap();
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
        let e = match restart::take_turn(&cfg, r.path(), &sm, "unit changed") {
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
    let turn = restart::take_turn(&cfg, r.path(), &sm, "unit changed").unwrap();
    turn.restart(r.path(), &sm).unwrap();
    let after = sm.main_process(UNIT).unwrap();
    assert!(after.pid != before.pid, "the old process still runs");
    assert_eq!(restart::pending(r.path()), None);
    assert!(
        c.with(|s| s.log.iter().all(|(_, p)| !p.starts_with("/v3/lease"))),
        "a lock was asked of a cluster without quorum"
    );
}

/// NOSPACE recovery asked on all three members at once (no lease can be had under NOSPACE), the
/// leader stopped in the middle and back a moment later: one run coordinates, the others defer,
/// and no two defragmentations overlap. The alarm is disarmed once every member said its db is
/// under 80 % of the quota.
#[test]
fn nospace_recovery_from_three_runs_at_once_never_defragments_two_members() {
    let c = Arc::new(MockCluster::start(3));
    c.with(|s| {
        s.defrag_time = Duration::from_millis(700);
        s.alarms.push((0x1002, "NOSPACE".into()));
        for m in &mut s.members {
            m.db_size = 16 << 20;
            m.db_in_use = 4 << 20;
        }
    });
    let extra = "etcd_settings_user:\n  quota-backend-bytes: \"16777216\"\n".to_string();
    let roots: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let o = super::maintain::Options {
        fragmentation: 50,
        min_db_size: 1 << 20,
        compact_keep_revisions: 0,
        timeout: Duration::from_secs(20),
    };
    let outcomes: Vec<Result<String, String>> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..3)
            .map(|i| {
                let (c, r, o, extra) = (&c, &roots[i], &o, &extra);
                s.spawn(move || {
                    let cfg = c.config(i, extra);
                    super::maintain::run(&cfg, r.path(), o).map_err(|e| format!("{e:#}"))
                })
            })
            .collect();
        // The leader stops once the first member is done, and is back a second later.
        let c2 = c.clone();
        s.spawn(move || {
            let t = Instant::now();
            while c2.with(|s| s.defrags.is_empty()) && t.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let leader = c2.with(|s| s.members.iter().position(|m| m.id == s.leader));
            if let Some(k) = leader {
                c2.stop(k);
                std::thread::sleep(Duration::from_secs(1));
                c2.restart(k);
            }
        });
        runs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let did: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(did.len(), 3, "{outcomes:?}");
    let coordinated: Vec<_> = did
        .iter()
        .filter(|l| l.contains("disarmed the NOSPACE alarm"))
        .collect();
    assert_eq!(coordinated.len(), 1, "{outcomes:?}");
    assert!(coordinated[0].matches("defragmented etcd-node").count() == 3);
    assert_eq!(
        did.iter()
            .filter(|l| l.contains("its recovery is the run of etcd-node1"))
            .count(),
        2,
        "{outcomes:?}"
    );
    let mut spans = c.with(|s| s.defrags.clone());
    assert_eq!(spans.len(), 3, "{spans:?}");
    spans.sort_by(|a, b| a.1.total_cmp(&b.1));
    for w in spans.windows(2) {
        assert!(w[1].1 >= w[0].2, "two defragmentations overlap: {spans:?}");
    }
    assert!(c.with(|s| s.alarms.is_empty()));
}

/// A member that does not say how much of its db is in use keeps the alarm: disarming is decided
/// from every member's word, never from the ones that answered.
#[test]
fn nospace_is_disarmed_only_when_every_member_said_it_has_room() {
    let c = Arc::new(MockCluster::start(3));
    c.with(|s| {
        s.alarms.push((0x1001, "NOSPACE".into()));
        for m in &mut s.members {
            m.db_size = 2 << 20;
            m.db_in_use = 1 << 20;
        }
    });
    let extra = "etcd_settings_user:\n  quota-backend-bytes: \"16777216\"\n";
    let cfg = c.config(0, extra);
    let r = tempfile::tempdir().unwrap();
    let o = super::maintain::Options {
        fragmentation: 50,
        min_db_size: 1 << 20,
        compact_keep_revisions: 0,
        timeout: Duration::from_secs(3),
    };
    // Every member answers until the last defragmentation is over; then member 3 goes quiet.
    c.with(|s| s.silent_after_defrags = Some((3, 2)));
    let e = super::maintain::run(&cfg, r.path(), &o).unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.contains("kept the NOSPACE alarm: etcd-node3 did not say how much of its db is in use"),
        "{e}"
    );
    assert_eq!(c.with(|s| s.alarms.len()), 1);
}

/// `maintain` with the other members trickling their health: the run ends within its timeout
/// (each answer bounded), names a member, and leaves no turn held.
#[test]
fn maintain_ends_in_time_when_members_trickle_and_frees_the_turn() {
    let c = Arc::new(MockCluster::start(3));
    c.with(|s| {
        for m in &mut s.members {
            m.db_size = 64 << 20;
            m.db_in_use = 8 << 20;
        }
        s.overrides.insert(
            "/health?exclude=NOSPACE".into(),
            trickling(r#"{"health":"true"}"#),
        );
    });
    let cfg = c.config(0, "");
    let r = tempfile::tempdir().unwrap();
    let o = super::maintain::Options {
        fragmentation: 50,
        min_db_size: 1 << 20,
        compact_keep_revisions: 0,
        timeout: Duration::from_secs(3),
    };
    let start = Instant::now();
    let e = format!(
        "{:#}",
        super::maintain::run(&cfg, r.path(), &o).unwrap_err()
    );
    assert!(e.contains("was not defragmented: no turn within 3s"), "{e}");
    assert!(e.contains("no whole answer"), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    c.with(|s| s.overrides.clear());
    assert_eq!(
        api(&c).get(lock::RESTART).unwrap(),
        None,
        "the turn is held"
    );
    assert!(c.with(|s| s.defrags.is_empty()));
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
    restart::take_turn(&cfg, r.path(), &sm, "unit changed")
        .unwrap()
        .restart(r.path(), &sm)
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(4), "{:?}", start.elapsed());
}

/// etcd writes a whole copy of the db when it defragments: a member whose disk has no room for it
/// is not defragmented, and says why.
#[test]
fn no_defragmentation_without_room_for_its_copy() {
    let c = Arc::new(MockCluster::start(1));
    c.with(|s| {
        s.members[0].db_size = 1 << 60;
        s.members[0].db_in_use = 1 << 20;
    });
    let cfg = c.config(0, "");
    let r = tempfile::tempdir().unwrap();
    let o = super::maintain::Options {
        fragmentation: 50,
        min_db_size: 1 << 20,
        compact_keep_revisions: 0,
        timeout: Duration::from_secs(3),
    };
    let e = format!("{:#}", super::maintain::run(&cfg, r.path(), &o).unwrap_err());
    assert!(
        e.contains("was not defragmented: it needs room for a copy of its 1024.0 PiB db"),
        "{e}"
    );
    assert!(c.with(|s| s.defrags.is_empty()));
}
