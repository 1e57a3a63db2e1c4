use super::*;

fn o() -> Options {
    Options {
        fragmentation: 50,
        min_db_size: 100 << 20,
        compact_keep_revisions: 0,
        timeout: Duration::from_secs(60),
    }
}

#[test]
fn defragments_only_a_large_fragmented_db() {
    let big = |in_use| Db {
        size: 200 << 20,
        in_use,
    };
    assert_eq!(why_not_defrag(&big(50 << 20), &o()), None);
    assert_eq!(
        why_not_defrag(&big(100 << 20), &o()),
        None,
        "exactly at the threshold"
    );
    let why = why_not_defrag(&big(150 << 20), &o()).unwrap();
    assert!(
        why.contains("25% fragmented") && why.contains("50% threshold"),
        "{why}"
    );
    let small = Db {
        size: 10 << 20,
        in_use: 1 << 20,
    };
    let why = why_not_defrag(&small, &o()).unwrap();
    assert!(why.contains("under the 100.0 MiB"), "{why}");
    assert_eq!(Db { size: 0, in_use: 0 }.fragmentation(), 0.0);
}

#[test]
fn recovery_goes_by_id_with_the_leader_last() {
    let m = |id: u64| ApiMember {
        id,
        name: format!("n{id}"),
        peer_urls: vec![],
        client_urls: vec![],
        learner: false,
    };
    let members = [m(7), m(3), m(9)];
    let ids: Vec<u64> = recovery_order(&members, 3).iter().map(|m| m.id).collect();
    assert_eq!(ids, [7, 9, 3]);
    let ids: Vec<u64> = recovery_order(&members, 0).iter().map(|m| m.id).collect();
    assert_eq!(ids, [3, 7, 9]);
}
