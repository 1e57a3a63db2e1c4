//! Maintenance against a stand-in cluster (`etcd::mock`, with alarms and defragmentations that
//! block their member): NOSPACE recovery from many runs at once, disarming on every member's word,
//! members that trickle, no room for a defragmentation's copy. No root, no namespace.

use crate::cluster::lock;
use crate::etcd::api::Api;
use crate::etcd::mock::MockCluster;
use crate::util::testserver::Response;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn api(c: &MockCluster) -> Api {
    let n = c.with(|s| s.members.len());
    Api::new(c.client(), (0..n).map(|i| c.url(i)).collect())
}

/// Over 50 % fragmented and at least 1 MiB: defragment; wait up to `secs` for the turn.
fn options(secs: u64) -> super::Options {
    super::Options {
        fragmentation: 50,
        min_db_size: 1 << 20,
        compact_keep_revisions: 0,
        timeout: Duration::from_secs(secs),
    }
}

/// One byte every 4 s: each read is quick, the answer never ends in time.
fn trickling(body: &str) -> Response {
    Response::trickling(body, Duration::from_secs(4))
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
    let o = options(20);
    let outcomes: Vec<Result<String, String>> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..3)
            .map(|i| {
                let (c, r, o, extra) = (&c, &roots[i], &o, &extra);
                s.spawn(move || {
                    let cfg = c.config(i, extra);
                    super::run(&crate::cluster::node::offline_for_test(&cfg, r.path()), o)
                        .map_err(|e| format!("{e:#}"))
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
    let o = options(3);
    // Every member answers until the last defragmentation is over; then member 3 goes quiet.
    c.with(|s| s.silent_after_defrags = Some((3, 2)));
    let e = super::run(&crate::cluster::node::offline_for_test(&cfg, r.path()), &o).unwrap_err();
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
    let o = options(3);
    let start = Instant::now();
    let e = format!(
        "{:#}",
        super::run(&crate::cluster::node::offline_for_test(&cfg, r.path()), &o).unwrap_err()
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
    let o = options(3);
    let e = format!(
        "{:#}",
        super::run(&crate::cluster::node::offline_for_test(&cfg, r.path()), &o).unwrap_err()
    );
    assert!(
        e.contains("was not defragmented: it needs room for a copy of its 1024.0 PiB db"),
        "{e}"
    );
    assert!(c.with(|s| s.defrags.is_empty()));
}
