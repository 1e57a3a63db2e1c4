//! The v3 API client, health checks and version answers against a stand-in cluster
//! (`etcd::mock`), including members that are down, busy, or send what no etcd would.

use super::api::{process_start, Api, MAX_BODY};
use super::health::Checker;
use super::mock::MockCluster;
use super::version::ask_versions;
use crate::util::error::Kind;
use crate::util::testserver::Response;
use serde_json::json;

fn api(c: &MockCluster) -> Api {
    let n = c.with(|s| s.members.len());
    Api::new(c.client(), (0..n).map(|i| c.url(i)).collect())
}

#[test]
fn the_member_list_comes_through_whichever_member_answers() {
    let c = MockCluster::start(3);
    c.stop(0);
    let members = api(&c).list().unwrap();
    assert_eq!(members.len(), 3);
    assert!(members.iter().all(|m| m.started() && !m.learner));
    assert_eq!(members[1].client_urls, vec![c.url(1)]);
}

#[test]
fn with_every_member_down_a_call_is_busy_naming_each() {
    let c = MockCluster::start(2);
    c.stop(0);
    c.stop(1);
    let e = api(&c).list().unwrap_err();
    assert_eq!(e.kind, Kind::Busy);
    assert!(
        e.message.contains(&c.url(0)) && e.message.contains(&c.url(1)),
        "{e}"
    );
}

#[test]
fn a_refusal_is_final_and_not_asked_of_the_next_member_but_no_leader_is_busy() {
    let c = MockCluster::start(3);
    c.with(|s| {
        s.overrides.insert(
            "/v3/cluster/member/remove".into(),
            Response::json(400, &json!({"message": "etcdserver: member not found"})),
        )
    });
    let e = api(&c).remove(7).unwrap_err();
    assert_eq!(e.kind, Kind::Other);
    let asked = c.with(|s| s.log.iter().filter(|(_, p)| p.ends_with("remove")).count());
    assert_eq!(asked, 1, "a definite refusal was asked again elsewhere");
    c.with(|s| {
        s.overrides.insert(
            "/v3/cluster/member/list".into(),
            Response::json(503, &json!({"message": "etcdserver: no leader"})),
        )
    });
    let e = api(&c).list().unwrap_err();
    assert!(e.is_busy(), "{e:?}");
}

#[test]
fn leases_keys_and_transactions_behave_as_a_lock_needs() {
    let c = MockCluster::start(1);
    let a = api(&c);
    let lease = a.grant(30).unwrap();
    assert!(a.create("k", "first", lease).unwrap());
    assert!(!a.create("k", "second", lease).unwrap(), "created twice");
    assert_eq!(a.get("k").unwrap().as_deref(), Some("first"));
    a.revoke(lease).unwrap();
    assert_eq!(a.get("k").unwrap(), None, "the lease's key outlived it");
}

#[test]
fn members_are_added_removed_and_promoted() {
    let c = MockCluster::start(3);
    let a = api(&c);
    let (added, all) = a.add(&["https://127.0.0.4:2380".into()], true).unwrap();
    assert!(!added.started() && added.learner);
    assert_eq!(all.len(), 4);
    // A learner that never started is not in sync with the leader: etcd refuses it.
    let e = a.promote(added.id).unwrap_err();
    assert!(e.message.contains("in sync with leader"), "{e}");
    c.with(|s| {
        let m = s.members.iter_mut().find(|m| m.id == added.id).unwrap();
        m.started = true;
        m.name = "etcd-node4".into();
    });
    a.promote(added.id).unwrap();
    assert!(!a.list().unwrap().iter().any(|m| m.learner));
    let e = a.promote(added.id).unwrap_err();
    assert!(
        e.message.contains("can only promote a learner member"),
        "{e}"
    );
    a.remove(added.id).unwrap();
    assert_eq!(a.list().unwrap().len(), 3);
}

#[test]
fn status_leadership_and_the_process_start_time() {
    let c = MockCluster::start(3);
    let a = api(&c);
    let st = a.status_of(&c.url(0)).unwrap();
    assert_eq!(
        (st.member_id, st.leader, st.raft_index),
        (0x1000, 0x1000, 100)
    );
    a.move_leader(&c.url(0), 0x1001).unwrap();
    assert_eq!(a.status_of(&c.url(2)).unwrap().leader, 0x1001);
    assert!(
        a.move_leader(&c.url(0), 0x1002).is_err(),
        "a follower handed leadership over"
    );
    let before = process_start(&c.client(), &c.url(1)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    c.restart(1);
    assert!(process_start(&c.client(), &c.url(1)).unwrap() > before);
}

#[test]
fn an_answer_past_the_cap_is_refused_not_read_to_the_end() {
    let c = MockCluster::start(1);
    c.with(|s| {
        s.overrides.insert(
            "/v3/cluster/member/list".into(),
            Response {
                endless: true,
                ..Response::new(200, vec![])
            },
        )
    });
    let e = api(&c).list().unwrap_err();
    assert!(
        e.message.contains(&format!("larger than {MAX_BODY} bytes")),
        "{e}"
    );
}

#[test]
fn health_lines_read_like_etcdctl_and_escape_what_a_member_sends() {
    let c = MockCluster::start(2);
    c.with(|s| s.members[1].unhealthy = Some("\u{1b}[2Jall good\r".into()));
    c.stop(0);
    let h = Checker::from_client(c.client());
    let all = h.check_all(&[c.url(0), c.url(1)]);
    assert!(!all[0].healthy && !all[1].healthy);
    let line = all[1].line();
    assert!(
        line.ends_with("is unhealthy: health check failed: \\u{1b}[2Jall good\\r"),
        "{line}"
    );
    c.restart(0);
    c.with(|s| s.members[1].unhealthy = None);
    let all = h.wait_all(&[c.url(0), c.url(1)], std::time::Duration::from_secs(5));
    assert!(all.iter().all(|s| s.healthy), "{all:?}");
}

#[test]
fn versions_are_asked_of_every_member_at_once() {
    let c = MockCluster::start(3);
    c.with(|s| s.members[2].version = "3.4.23".into());
    c.stop(1);
    let targets: Vec<(String, String)> = (0..3).map(|i| (format!("n{i}"), c.url(i))).collect();
    let answers = ask_versions(&c.client(), &targets);
    assert_eq!(answers.len(), 3);
    assert_eq!(
        answers[0].1.as_ref().unwrap(),
        &("3.5.1".into(), "3.5.0".into())
    );
    assert!(answers[1].1.is_err());
    assert_eq!(answers[2].1.as_ref().unwrap().0, "3.4.23");
    c.with(|s| {
        s.overrides.insert(
            "/version".into(),
            Response::new(200, "<html>\u{1b}]0;x</html>"),
        )
    });
    let e = super::version::version(&c.client(), &c.url(0)).unwrap_err();
    assert!(
        e.message.contains("not JSON") && !e.message.contains('\u{1b}'),
        "{e}"
    );
}

#[test]
fn a_member_whose_certificate_another_ca_signed_is_not_trusted() {
    let ours = MockCluster::start(1);
    let theirs = MockCluster::start(1);
    let h = Checker::from_client(ours.client());
    let s = h.check(&theirs.url(0));
    assert!(!s.healthy, "{s:?}");
    assert!(h.check(&ours.url(0)).healthy);
}
