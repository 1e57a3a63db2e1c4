use super::*;

fn v(s: &str) -> Version {
    s.parse().unwrap()
}

fn cluster(c: &str, members: &[&str]) -> Running {
    Running {
        complete: true,
        answered: true,
        downgrade: None,
        cluster: v(c),
        members: members
            .iter()
            .enumerate()
            .map(|(i, m)| (format!("n{}", i + 1), v(m)))
            .collect(),
    }
}

fn refusal(from: &str, to: &str, on: &Running) -> String {
    match judge(v(from), v(to), on, false) {
        Verdict::Refused(why) => why,
        other => panic!("{from} → {to} was not refused: {other:?}"),
    }
}

fn allowed(from: &str, to: &str, on: &Running) -> String {
    judge(v(from), v(to), on, false).into_result().unwrap()
}

#[test]
fn a_cluster_version_not_decided_yet_or_held_back_by_a_silent_member() {
    // A new cluster says 3.0 until its leader has asked every member.
    let new = cluster("3.0.0", &["3.4.23", "3.4.23", "3.4.23"]);
    allowed("3.4.23", "3.5.1", &new);
    // One member did not answer and the cluster version is 3.3: it may still run 3.3.
    let held = Running {
        complete: false,
        ..cluster("3.3.0", &["3.4.23", "3.4.23"])
    };
    let e = refusal("3.4.23", "3.5.1", &held);
    assert!(
        e.contains("the cluster version is still 3.3 (a member that did not answer may run it)"),
        "{e}"
    );
}

#[test]
fn versions_parse_as_etcd_writes_them() {
    assert_eq!(v("v3.5.1"), v("3.5.1"));
    assert_eq!(v("3.5.0"), v("3.5"));
    assert_eq!(v("3.7.0-rc.0"), v("3.7.0"));
    assert!(v("3.5.26") > v("3.5.4"));
    assert!("three".parse::<Version>().is_err());
}

#[test]
fn the_paths_etcd_supports_and_the_ones_it_does_not() {
    let on34 = cluster("3.4.0", &["3.4.23", "3.4.23", "3.4.23"]);
    let ok = allowed("3.4.23", "3.5.1", &on34);
    assert!(
        ok.starts_with("3.4.23 → 3.5.1: one minor, all members on 3.4 at 3.4.0 or later")
            && ok.contains("upgrade_3_5"),
        "{ok}"
    );
    let e = refusal("3.4.23", "3.6.14", &on34);
    assert!(e.contains("it skips 3.5") && e.contains(GUIDE), "{e}");
    let on35 = cluster("3.5.0", &["3.5.1", "3.5.1", "3.5.1"]);
    let e = refusal("3.5.1", "3.4.23", &on35);
    assert!(
        e.contains("a downgrade below the cluster version 3.5")
            && e.contains("3.5 has no downgrade API"),
        "{e}"
    );
    assert!(allowed("3.5.4", "3.5.1", &on35).contains("patch downgrade"));
    assert!(allowed("3.5.1", "3.5.4", &on35).contains("patch upgrade"));
    // Mid-upgrade from 3.4: a member already on 3.5 may not move on to 3.6.
    let mixed = cluster("3.4.0", &["3.4.23", "3.5.1", "3.5.1"]);
    allowed("3.4.23", "3.5.1", &mixed);
    let e = refusal("3.5.1", "3.6.14", &mixed);
    assert!(
        e.contains("members still run an older minor (n1 at 3.4.23)"),
        "{e}"
    );
    // No guide known for the minor after 3.7: refused rather than guessed.
    let on37 = cluster("3.7.0", &["3.7.1"]);
    let e = refusal("3.7.1", "3.8.0", &on37);
    assert!(e.contains("knows etcd's upgrade guides up to 3.7"), "{e}");
}

/// The floors of etcd's guides (the issue named 3.5.26; the 3.6 guide asks 3.5.32 since
/// etcd 3.5.32): each member below is named, with the exact patch to apply first.
#[test]
fn every_member_below_the_floor_is_named_with_the_patch_to_install_first() {
    let on35 = cluster("3.5.0", &["3.5.25", "3.5.32", "3.5.26"]);
    let e = refusal("3.5.32", "3.6.14", &on35);
    assert!(
        e.contains("3.6 needs every member at 3.5.32 or later first (n1 at 3.5.25, n3 at 3.5.26;")
            && e.contains("https://etcd.io/docs/v3.6/upgrades/upgrade_3_6/")
            && e.contains(
                "set etcd_version: \"3.5.32\" in the seed and run `etcd-bootstrap apply` on n1, n3"
            )
            && e.contains("then etcd_version: \"3.6.14\""),
        "{e}"
    );
    let ready = cluster("3.5.0", &["3.5.32", "3.5.33", "3.6.14"]);
    allowed("3.5.32", "3.6.14", &ready);
    let on36 = cluster("3.6.0", &["3.6.10", "3.6.14", "3.6.14"]);
    let e = refusal("3.6.14", "3.7.1", &on36);
    assert!(
        e.contains("3.7 needs every member at 3.6.11 or later first (n1 at 3.6.10;")
            && e.contains("upgrade_3_7"),
        "{e}"
    );
    allowed("3.6.11", "3.7.1", &cluster("3.6.0", &["3.6.11", "3.6.14"]));
    // 3.5 → 3.7 is a skip, whatever the patch.
    let e = refusal("3.5.33", "3.7.1", &cluster("3.5.0", &["3.5.33"]));
    assert!(e.contains("it skips 3.6"), "{e}");
}

#[test]
fn a_minor_downgrade_only_when_the_seed_allows_it_and_through_etcds_api() {
    let on36 = cluster("3.6.0", &["3.6.14", "3.6.14", "3.6.14"]);
    let e = refusal("3.6.14", "3.5.33", &on36);
    assert!(
        e.contains("etcd_allow_downgrade: true") && e.contains("downgrade_3_6"),
        "{e}"
    );
    match judge(v("3.6.14"), v("3.5.33"), &on36, true) {
        Verdict::Downgrade {
            target, enabled, ..
        } => assert_eq!((target, enabled), (v("3.5.0"), false)),
        other => panic!("{other:?}"),
    }
    // Enabled already (another member went first): the cluster says 3.5, members are mixed.
    let going = Running {
        downgrade: Some(v("3.5.0")),
        ..cluster("3.5.0", &["3.5.33", "3.6.14", "3.6.14"])
    };
    match judge(v("3.6.14"), v("3.5.33"), &going, true) {
        Verdict::Downgrade { enabled, .. } => assert!(enabled),
        other => panic!("{other:?}"),
    }
    // An upgrade while a downgrade is enabled: refused, naming the way out.
    let e = match judge(v("3.5.33"), v("3.6.14"), &going, true) {
        Verdict::Refused(why) => why,
        other => panic!("{other:?}"),
    };
    assert!(e.contains("etcdctl downgrade cancel"), "{e}");
    // Two minors back, or with no member answering: refused even when allowed.
    let e = match judge(v("3.7.1"), v("3.5.33"), &on36, true) {
        Verdict::Refused(why) => why,
        other => panic!("{other:?}"),
    };
    assert!(e.contains("one minor at a time"), "{e}");
    let silent = Running {
        answered: false,
        ..cluster("3.6.0", &["3.6.14"])
    };
    let e = match judge(v("3.6.14"), v("3.5.33"), &silent, true) {
        Verdict::Refused(why) => why,
        other => panic!("{other:?}"),
    };
    assert!(e.contains("no member answered"), "{e}");
}
