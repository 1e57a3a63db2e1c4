use super::*;

fn t(s: &str) -> Version {
    s.parse().unwrap()
}

#[test]
fn every_flag_rule_is_listed_once_with_a_source() {
    let mut names: Vec<&str> = FLAGS.iter().map(|r| r.flag).collect();
    names.sort();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "a flag listed twice");
    // 3.7's guide lists 23 removed experimental flags; each has a rule here (and so does
    // --experimental-max-learners, which 3.6's guide renamed and 3.7 removed with the rest).
    for f in "bootstrap-defrag-threshold-megabytes compact-hash-check-enabled \
              compact-hash-check-time compaction-batch-limit compaction-sleep-interval \
              corrupt-check-time distributed-tracing-address distributed-tracing-instance-id \
              distributed-tracing-sampling-rate distributed-tracing-service-name \
              downgrade-check-time enable-distributed-tracing enable-lease-checkpoint \
              enable-lease-checkpoint-persist initial-corrupt-check memory-mlock \
              peer-skip-client-san-verification snapshot-catchup-entries \
              stop-grpc-service-on-defrag txn-mode-write-with-shared-buffer \
              warning-apply-duration warning-unary-request-duration \
              watch-progress-notify-interval"
        .split_whitespace()
    {
        let flag = format!("experimental-{f}");
        assert!(
            FLAGS
                .iter()
                .any(|r| r.flag == flag && r.deprecated == (3, 6) && r.removed == (3, 7)),
            "{flag}"
        );
    }
    assert!(FLAGS.iter().all(|r| r.source.starts_with("https://")));
}

#[test]
fn a_flag_judged_by_the_target_version() {
    // The role's enable-v2, pasted into a 3.6 seed: the guide's advice.
    match fate("enable-v2", "true", t("3.6.14")) {
        Some(Fate::Removed(m)) => assert!(
            m.contains("--enable-v2 was removed in etcd 3.6")
                && m.contains("etcdutl check v2store")
                && m.contains("upgrade_3_6"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        fate("enable-v2", "true", t("3.5.32")),
        Some(Fate::Deprecated(_))
    ));
    assert_eq!(fate("enable-v2", "true", t("3.4.23")), None);
    // Renamed into a feature gate: a warning for 3.6, an error for 3.7, both naming the gate.
    let gate = "--feature-gates=InitialCorruptCheck=true";
    match fate("experimental-initial-corrupt-check", "true", t("3.6.14")) {
        Some(Fate::Deprecated(m)) => assert!(m.contains(gate), "{m}"),
        other => panic!("{other:?}"),
    }
    match fate("experimental-initial-corrupt-check", "true", t("3.7.1")) {
        Some(Fate::Removed(m)) => assert!(m.contains(gate) && m.contains("3.7"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        fate("experimental-initial-corrupt-check", "true", t("3.5.1")),
        None
    );
    match fate("experimental-max-learners", "2", t("3.7.0")) {
        Some(Fate::Removed(m)) => assert!(m.contains("use --max-learners"), "{m}"),
        other => panic!("{other:?}"),
    }
    // An experimental flag no guide names is still gone in 3.7.
    assert!(matches!(
        fate("experimental-something-new", "1", t("3.7.0")),
        Some(Fate::Removed(_))
    ));
    // A 3.6 name on a 3.5 target (a downgrade): named with what 3.5 calls it.
    match fate("max-learners", "2", t("3.5.33")) {
        Some(Fate::NotYet(m)) => assert!(m.contains("--experimental-max-learners"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        fate("feature-gates", "X=true", t("3.5.33")),
        Some(Fate::NotYet(_))
    ));
    assert_eq!(fate("max-learners", "2", t("3.6.0")), None);
    assert_eq!(fate("name", "n1", t("3.7.1")), None);
}

#[test]
fn the_roles_snapshot_count_is_named_for_3_6_on() {
    let m = overridden_default("snapshot-count", "100000", t("3.6.14")).unwrap();
    assert!(
        m.contains("10000") && m.contains("kept as the seed says"),
        "{m}"
    );
    assert_eq!(
        overridden_default("snapshot-count", "100000", t("3.5.1")),
        None
    );
    assert_eq!(
        overridden_default("snapshot-count", "10000", t("3.7.1")),
        None
    );
}

#[test]
fn the_path_tables() {
    assert_eq!(upgrade_to(t("3.6.14")).unwrap().floor, t("3.5.32"));
    assert_eq!(upgrade_to(t("3.7.0")).unwrap().floor, t("3.6.11"));
    assert!(upgrade_to(t("3.8.0")).is_none());
    assert!(downgrade_from(t("3.6.14")).is_some());
    assert!(downgrade_from(t("3.5.1")).is_none());
}
