//! The cluster services against a stand-in cluster (`etcd::mock`) and a service manager as
//! asynchronous as systemd (`host::systemd::fake`): the lock, a restart in its turn, the upgrade
//! path from the members' answers, and status. No root, no namespace.

use super::lock::{self, ClusterLock};
use super::restart;
use super::upgrade::{self, Verdict};
use crate::etcd::api::Api;
use crate::etcd::mock::{now, MockCluster};
use crate::host::systemd::fake::FakeServices;
use std::sync::Arc;
use std::time::{Duration, Instant};

const UNIT: &str = "etcd.service";
const HOLD: Duration = Duration::from_secs(60);

fn api(c: &MockCluster) -> Api {
    let n = c.with(|s| s.members.len());
    Api::new(c.client(), (0..n).map(|i| c.url(i)).collect())
}

fn root() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A service manager whose jobs stop and start mock member `i`'s etcd.
fn services_of(c: &Arc<MockCluster>, i: usize, stop_delay: Duration) -> FakeServices {
    let m = c.clone();
    let mut sm = FakeServices::new(true, move |event, _| match event {
        "stop" => m.stop(i),
        _ => m.restart(i),
    });
    sm.stop_delay = stop_delay;
    // Already running: the mock's process is the one the manager knows.
    sm.running(UNIT)
}

#[test]
fn the_lock_is_taken_once_and_freed_when_dropped() {
    let c = MockCluster::start(3);
    let a = api(&c);
    let held = ClusterLock::acquire(&a, lock::RESTART, "etcd-node1", HOLD)
        .unwrap()
        .unwrap();
    assert_eq!(a.get(lock::RESTART).unwrap().as_deref(), Some("etcd-node1"));
    assert!(ClusterLock::acquire(&a, lock::RESTART, "etcd-node2", HOLD)
        .unwrap()
        .is_none());
    drop(held);
    assert_eq!(a.get(lock::RESTART).unwrap(), None);
    assert!(ClusterLock::acquire(&a, lock::RESTART, "etcd-node2", HOLD)
        .unwrap()
        .is_some());
}

#[test]
fn a_single_member_restarts_without_a_lock_and_waits_for_the_new_process() {
    let c = Arc::new(MockCluster::start(1));
    let cfg = c.config(0, "");
    let r = root();
    let sm = services_of(&c, 0, Duration::from_millis(200));
    let turn = restart::take_turn(
        &crate::cluster::node::for_test(&cfg, r.path(), &sm),
        "unit changed",
    )
    .unwrap();
    assert_eq!(restart::pending(r.path()).as_deref(), Some("unit changed"));
    let before = c.with(|s| s.members[0].started_at);
    turn.restart(r.path(), &sm).unwrap();
    assert!(
        c.with(|s| s.members[0].started_at) > before,
        "returned before the new process ran"
    );
    assert_eq!(restart::pending(r.path()), None);
    assert!(
        c.with(|s| s.log.iter().all(|(_, p)| !p.starts_with("/v3/kv"))),
        "a lock was taken"
    );
}

/// The old process keeps answering healthy through a slow stop: the turn is held until the new
/// one runs, and only then is the lock released.
#[test]
fn the_turn_is_held_until_a_new_process_answers_not_the_old_one() {
    let c = Arc::new(MockCluster::start(3));
    let cfg = c.config(0, "etcd_restart_timeout: 10s\n");
    let r = root();
    let sm = services_of(&c, 0, Duration::from_millis(500));
    let turn = restart::take_turn(
        &crate::cluster::node::for_test(&cfg, r.path(), &sm),
        "binary changed",
    )
    .unwrap();
    assert_eq!(
        api(&c).get(lock::RESTART).unwrap().as_deref(),
        Some("etcd-node1")
    );
    let asked = now();
    turn.restart(r.path(), &sm).unwrap();
    let started = c.with(|s| s.members[0].started_at);
    assert!(
        started >= asked + 0.4,
        "the new process started {started}, asked {asked}"
    );
    let ev: Vec<String> = sm
        .events
        .lock()
        .unwrap()
        .iter()
        .map(|(e, _)| e.clone())
        .collect();
    assert_eq!(
        ev,
        ["start", "stop", "start"],
        "returned before the job ran"
    );
    assert_eq!(
        api(&c).get(lock::RESTART).unwrap(),
        None,
        "the lock is still held"
    );
}

#[test]
fn the_leader_hands_leadership_over_before_it_restarts() {
    let c = Arc::new(MockCluster::start(3));
    assert_eq!(c.with(|s| s.leader), 0x1000);
    let cfg = c.config(0, "");
    let r = root();
    let sm = services_of(&c, 0, Duration::ZERO);
    restart::take_turn(&crate::cluster::node::for_test(&cfg, r.path(), &sm), "x")
        .unwrap()
        .restart(r.path(), &sm)
        .unwrap();
    let leader = c.with(|s| s.leader);
    assert!(leader != 0x1000 && leader != 0, "{leader:x}");
}

#[test]
fn a_turn_waits_for_the_holder_and_is_taken_once_it_is_freed() {
    let c = Arc::new(MockCluster::start(3));
    let a = api(&c);
    let other = ClusterLock::acquire(&a, lock::RESTART, "etcd-node2", HOLD)
        .unwrap()
        .unwrap();
    let cfg = c.config(0, "etcd_restart_timeout: 10s\n");
    let r = root();
    let sm = FakeServices::new(true, |_, _| {}).running(UNIT);
    let freed = std::thread::scope(|s| {
        let t = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(700));
            drop(other);
            Instant::now()
        });
        let turn =
            restart::take_turn(&crate::cluster::node::for_test(&cfg, r.path(), &sm), "x").unwrap();
        let taken = Instant::now();
        drop(turn);
        (t.join().unwrap(), taken)
    });
    assert!(
        freed.1 >= freed.0,
        "the turn was taken while another member held it"
    );
}

#[test]
fn an_unstarted_voter_or_an_unhealthy_one_blocks_the_turn_and_nothing_is_marked() {
    let c = MockCluster::start(3);
    let sm = FakeServices::new(true, |_, _| {}).running(UNIT);
    let id = c.with(|s| {
        let mut m = s.members[2].clone();
        m.id = 0x4242;
        m.name = String::new();
        m.started = false;
        m.addr = "127.0.0.9".into();
        s.members.push(m);
        0x4242u64
    });
    let cfg = c.config(0, "etcd_restart_timeout: 1s\n");
    let r = root();
    let e = format!(
        "{:#}",
        restart::take_turn(
            &crate::cluster::node::for_test(&cfg, r.path(), &sm),
            "unit changed"
        )
        .err()
        .unwrap()
    );
    assert!(
        e.contains(&format!("(not started) {id:x} at https://127.0.0.9:")),
        "{e}"
    );
    assert!(
        e.contains("is listed but has not started; nothing was changed"),
        "{e}"
    );
    assert_eq!(restart::pending(r.path()), None);
    c.with(|s| {
        s.members.pop();
        s.members[1].unhealthy = Some("NOSPACE".into());
    });
    let e = format!(
        "{:#}",
        restart::take_turn(
            &crate::cluster::node::for_test(&cfg, r.path(), &sm),
            "unit changed"
        )
        .err()
        .unwrap()
    );
    assert!(
        e.contains("waiting for etcd-node2 (https://127.0.0.2:"),
        "{e}"
    );
    assert!(e.contains("health check failed: NOSPACE"), "{e}");
    assert_eq!(api(&c).get(lock::RESTART).unwrap(), None);
}

#[test]
fn a_learner_is_not_waited_for() {
    let c = MockCluster::start(3);
    c.with(|s| {
        s.members[2].learner = true;
        s.members[2].unhealthy = Some("not caught up".into());
    });
    let cfg = c.config(0, "etcd_restart_timeout: 1s\n");
    let sm = FakeServices::new(true, |_, _| {}).running(UNIT);
    assert!(restart::take_turn(
        &crate::cluster::node::for_test(&cfg, root().path(), &sm),
        "x"
    )
    .is_ok());
}

#[test]
fn a_member_that_does_not_come_back_frees_the_turn_and_leaves_the_restart_pending() {
    let c = Arc::new(MockCluster::start(3));
    let m = c.clone();
    // The new process never starts serving: the mock member stays down.
    let sm = FakeServices::new(true, move |e, _| {
        if e == "stop" {
            m.stop(0)
        }
    })
    .running(UNIT);
    let cfg = c.config(0, "etcd_restart_timeout: 1s\n");
    let r = root();
    let turn = restart::take_turn(
        &crate::cluster::node::for_test(&cfg, r.path(), &sm),
        "unit changed",
    )
    .unwrap();
    let e = format!("{:#}", turn.restart(r.path(), &sm).err().unwrap());
    assert!(
        e.contains(
            "etcd.service did not come back healthy and caught up within etcd_restart_timeout (1s)"
        ),
        "{e}"
    );
    assert_eq!(
        api(&c).get(lock::RESTART).unwrap(),
        None,
        "the turn was not freed"
    );
    assert_eq!(restart::pending(r.path()).as_deref(), Some("unit changed"));
}

#[test]
fn a_new_process_behind_the_leader_is_not_back_until_it_caught_up() {
    let c = Arc::new(MockCluster::start(3));
    let m = c.clone();
    let sm = FakeServices::new(true, move |e, _| match e {
        "stop" => m.stop(0),
        _ => {
            m.restart(0);
            // Started, but behind: it catches up a moment later.
            m.with(|s| s.members[0].raft_index = 1);
            let m = m.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(400));
                m.with(|s| s.members[0].raft_index = 100);
            });
        }
    })
    .running(UNIT);
    let cfg = c.config(0, "etcd_restart_timeout: 10s\n");
    let r = root();
    restart::take_turn(&crate::cluster::node::for_test(&cfg, r.path(), &sm), "x")
        .unwrap()
        .restart(r.path(), &sm)
        .unwrap();
    assert_eq!(
        c.with(|s| s.members[0].raft_index),
        100,
        "back before it caught up"
    );
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
fn the_upgrade_path_is_judged_from_what_every_member_says() {
    let c = MockCluster::start(3);
    c.with(|s| {
        for m in s.members.iter_mut() {
            m.version = "3.4.23".into();
        }
        s.cluster_version = "3.4.0".into();
    });
    let r = root();
    stamp(r.path(), "3.4.23");
    let cfg = c.config(0, "etcd_version: \"3.5.1\"\n");
    assert_eq!(
        upgrade::path(&crate::cluster::node::offline_for_test(&cfg, r.path())).unwrap(),
        Some(Verdict::Allowed(
            "3.4.23 → 3.5.1: one minor, all members on 3.4 at 3.4.0 or later \
             (https://etcd.io/docs/v3.5/upgrades/upgrade_3_5/)"
                .into()
        ))
    );
    c.with(|s| s.members[2].version = "3.3.27".into());
    c.with(|s| s.cluster_version = "3.3.0".into());
    match upgrade::path(&crate::cluster::node::offline_for_test(&cfg, r.path())).unwrap() {
        Some(Verdict::Refused(why)) => assert!(
            why.contains("the cluster version is still 3.3")
                || why.contains("etcd-node3 at 3.3.27"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    // The seed names the installed version: nothing to judge.
    stamp(r.path(), "3.5.1");
    assert_eq!(
        upgrade::path(&crate::cluster::node::offline_for_test(&cfg, r.path())).unwrap(),
        None
    );
}

#[test]
fn with_no_member_answering_the_path_is_judged_from_the_installed_version() {
    let c = MockCluster::start(3);
    for i in 0..3 {
        c.stop(i);
    }
    let r = root();
    stamp(r.path(), "3.4.23");
    let cfg = c.config(0, "etcd_version: \"3.6.0\"\n");
    match upgrade::path(&crate::cluster::node::offline_for_test(&cfg, r.path())).unwrap() {
        Some(Verdict::Refused(why)) => assert!(why.contains("it skips 3.5"), "{why}"),
        other => panic!("{other:?}"),
    }
}
