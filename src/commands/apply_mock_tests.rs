//! `apply`'s phases on a scratch root, without root: the run context from a seed, the plan of a
//! first install, why a running etcd restarts, and what is asked of a service manager as
//! asynchronous as systemd (`host::systemd::fake`) — the restart first when a turn is held.

use super::*;
use crate::cluster::restart;
use crate::etcd::mock::MockCluster;
use crate::host::systemd::fake::FakeServices;
use crate::install::plan::Plan;
use crate::release::archive::StagedBinary;
use crate::util::error::Kind;
use std::path::Path;
use std::sync::Arc;

struct Scratch {
    _seed_dir: tempfile::TempDir,
    root: tempfile::TempDir,
    seed: String,
}

fn scratch(c: &MockCluster, extra: &str) -> Scratch {
    let d = tempfile::tempdir().unwrap();
    let seed = d.path().join("seed.yaml");
    std::fs::write(&seed, c.seed(0, extra)).unwrap();
    Scratch {
        seed: seed.display().to_string(),
        _seed_dir: d,
        root: tempfile::tempdir().unwrap(),
    }
}

fn run_of(s: &Scratch) -> Run {
    let common = crate::cli::Common {
        seed: Some(s.seed.clone()),
        seed_sha256: None,
        root: s.root.path().to_path_buf(),
    };
    Run::new(&Options::reading(&common)).unwrap()
}

fn cx<'a>(run: &'a Run, sm: &'a FakeServices) -> Node<'a> {
    crate::cluster::node::for_test(&run.cfg, &run.root, sm)
}

fn first_plan(run: &Run) -> Plan {
    plan(run, &run.cfg, None, vec![], true).unwrap()
}

fn tree(p: &Path) -> Vec<String> {
    let mut out: Vec<String> = walk(p)
        .into_iter()
        .map(|x| x.display().to_string())
        .collect();
    out.sort();
    out
}

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .flat_map(|e| {
                    let mut v = vec![e.path()];
                    v.extend(walk(&e.path()));
                    v
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_dry_run_plans_a_first_install_and_changes_nothing() {
    let c = MockCluster::start(1);
    let s = scratch(&c, "");
    let run = run_of(&s);
    assert_eq!(run.cfg.this_member.name, "etcd-node1");
    // No verified release cached: the binaries are pending, nothing is downloaded.
    assert!(release(&run, false, true).unwrap().is_none());
    let plan = first_plan(&run);
    let text = plan.render();
    for line in [
        "create    dir    /etc/etcd (0750 root:etcd)",
        "create    cert   /etc/etcd/ca-etcd.pem (0644 root:root)",
        "create    key    /etc/etcd/cert-etcd-client-key.pem (0640 root:etcd)",
        "create    binary /usr/local/bin/etcd (0755 root:root)",
        "create    unit   /etc/systemd/system/etcd.service (0644 root:root)",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    assert_eq!(plan.changed_lines().len(), plan.changes());
    assert!(tree(s.root.path()).is_empty(), "{:?}", tree(s.root.path()));
}

#[test]
fn a_running_etcd_restarts_only_for_what_it_reads_and_says_why() {
    let c = MockCluster::start(1);
    let s = scratch(&c, "");
    let run = run_of(&s);
    let plan = first_plan(&run);
    let live = FakeServices::new(true, |_, _| {}).running("etcd.service");
    let why = running_restart(&cx(&run, &live), &plan).unwrap();
    assert!(
        why.contains("certificates changed")
            && why.contains("binary changed")
            && why.contains("unit changed"),
        "{why}"
    );
    crate::state::Stamp {
        etcd_version: "3.4.23".into(),
        ..Default::default()
    }
    .save(s.root.path())
    .unwrap();
    let why = running_restart(&cx(&run, &live), &plan).unwrap();
    assert!(
        why.contains(&format!(
            "binary changed: 3.4.23 → {}",
            run.cfg.release.version
        )),
        "{why}"
    );
    // Under --root, or with etcd not running, nothing restarts.
    let offline = FakeServices::new(false, |_, _| {});
    assert_eq!(running_restart(&cx(&run, &offline), &plan), None);
    let stopped = FakeServices::new(true, |_, _| {});
    assert_eq!(running_restart(&cx(&run, &stopped), &plan), None);
    // Nothing changes, but an earlier run left a restart pending: it is done now.
    let nothing = Plan { changes: vec![] };
    restart::want(s.root.path(), "unit changed").unwrap();
    assert_eq!(
        running_restart(&cx(&run, &live), &nothing).as_deref(),
        Some("left pending by an earlier run: unit changed")
    );
}

#[test]
fn with_a_turn_held_the_restart_comes_before_the_enable_bookkeeping() {
    let c = Arc::new(MockCluster::start(1));
    let s = scratch(&c, "");
    let run = run_of(&s);
    let m = c.clone();
    let live = FakeServices::new(true, move |e, _| {
        if e == "start" {
            m.restart(0)
        }
    })
    .running("etcd.service");
    let turn = restart::take_turn(
        &crate::cluster::node::for_test(&run.cfg, &run.root, &live),
        "unit changed",
    )
    .unwrap();
    service(&cx(&run, &live), &Plan { changes: vec![] }, Some(turn)).unwrap();
    assert_eq!(
        *live.calls.lock().unwrap(),
        ["restart --no-block etcd.service", "enable etcd.service"]
    );
    assert_eq!(restart::pending(&run.root), None);
}

#[test]
fn a_stopped_member_is_started_without_waiting_and_nothing_starts_under_root() {
    let c = MockCluster::start(1);
    let s = scratch(&c, "");
    let run = run_of(&s);
    restart::want(&run.root, "binary changed").unwrap();
    let live = FakeServices::new(true, |_, _| {});
    service(&cx(&run, &live), &Plan { changes: vec![] }, None).unwrap();
    assert_eq!(
        *live.calls.lock().unwrap(),
        ["enable etcd.service", "start --no-block etcd.service"]
    );
    assert_eq!(
        restart::pending(&run.root),
        None,
        "a start makes a pending restart moot"
    );
    let offline = FakeServices::new(false, |_, _| {});
    service(&cx(&run, &offline), &Plan { changes: vec![] }, None).unwrap();
    assert_eq!(*offline.calls.lock().unwrap(), ["enable etcd.service"]);
}

#[test]
fn the_interface_s_wg_quick_unit_is_enabled_once_its_config_is_on_the_node() {
    let c = MockCluster::start(1);
    let s = scratch(&c, "");
    let run = run_of(&s);
    let offline = FakeServices::new(false, |_, _| {});
    assert_eq!(interface_unit(&cx(&run, &offline)), None);
    std::fs::create_dir_all(s.root.path().join("etc/wireguard")).unwrap();
    std::fs::write(s.root.path().join("etc/wireguard/lo.conf"), "[Interface]\n").unwrap();
    service(&cx(&run, &offline), &Plan { changes: vec![] }, None).unwrap();
    assert!(offline
        .calls
        .lock()
        .unwrap()
        .contains(&"enable wg-quick@lo.service".to_string()));
    assert_eq!(interface_unit(&cx(&run, &offline)), None, "enabled twice");
}

#[test]
fn a_staged_etcd_of_another_version_is_an_input_error() {
    use std::os::unix::fs::PermissionsExt;
    let c = MockCluster::start(1);
    let s = scratch(&c, "etcd_version: \"3.5.2\"\n");
    let run = run_of(&s);
    let d = tempfile::tempdir().unwrap();
    let etcd = d.path().join("etcd");
    std::fs::write(&etcd, "#!/bin/sh\necho 'etcd Version: 3.4.23'\n").unwrap();
    std::fs::set_permissions(&etcd, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Staged as the release stages it: by the digest of what is in the file.
    let staged = |etcd: &Path| Staged {
        dir: d.path().to_path_buf(),
        binaries: vec![StagedBinary {
            name: "etcd".into(),
            path: etcd.to_path_buf(),
            sha256: crate::util::io::Sha256::of(&std::fs::read(etcd).unwrap()),
            size: 0,
        }],
    };
    let e = staged_is_the_seeds_version(&run.cfg, &staged(&etcd), &run).unwrap_err();
    assert_eq!(crate::util::error::kind(&e), Kind::Input);
    assert!(e.to_string().contains("etcd_version is 3.5.2, but the etcd in the release from etcd_download_url reports 3.4.23"), "{e}");
    std::fs::write(&etcd, "#!/bin/sh\necho 'etcd Version: 3.5.2'\n").unwrap();
    assert!(staged_is_the_seeds_version(&run.cfg, &staged(&etcd), &run).is_ok());
}

#[test]
fn a_phase_names_itself_in_its_error() {
    let e = crate::commands::run::phase("release", || -> anyhow::Result<()> {
        anyhow::bail!("the mirror is down")
    })
    .unwrap_err();
    assert_eq!(crate::util::error::phase(&e), Some("release"));
    assert_eq!(format!("{e:#}"), "release: the mirror is down");
}

fn installed(root: &Path, version: &str) {
    crate::state::Stamp {
        etcd_version: version.into(),
        ..Default::default()
    }
    .save(root)
    .unwrap();
}

/// Every member of `c` runs `version`, the cluster version its minor.
fn all_on(c: &MockCluster, version: &str) {
    c.with(|s| {
        for m in s.members.iter_mut() {
            m.version = version.into();
        }
        let mut parts = version.split('.');
        s.cluster_version = format!("{}.{}.0", parts.next().unwrap(), parts.next().unwrap());
    });
}

#[test]
fn a_minor_downgrade_is_enabled_through_etcds_api_before_the_first_binary_changes() {
    let c = Arc::new(MockCluster::start(3));
    all_on(&c, "3.6.14");
    // Without the seed's consent: refused, etcd's API never asked.
    let s = scratch(&c, "etcd_version: \"3.5.33\"\n");
    installed(s.root.path(), "3.6.14");
    let e = upgrade_path(&run_of(&s).looking()).unwrap_err().to_string();
    assert!(
        e.contains("3.6.14 → 3.5.33 is refused")
            && e.contains("etcd_allow_downgrade: true")
            && e.contains("nothing was changed"),
        "{e}"
    );
    assert!(c.with(|s| s.downgrade_actions.is_empty()));

    let s = scratch(&c, "etcd_version: \"3.5.33\"\netcd_allow_downgrade: true\n");
    installed(s.root.path(), "3.6.14");
    let run = run_of(&s);
    let verdict = upgrade_path(&run.looking()).unwrap();
    assert!(
        matches!(verdict, Some(Verdict::Downgrade { enabled: false, .. })),
        "{verdict:?}"
    );
    let (m, armed) = (
        c.clone(),
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let arm = armed.clone();
    let live = FakeServices::new(true, move |e, _| {
        // Its first start is the etcd 3.6 running before this run; the next one runs 3.5.
        if e == "start" && arm.swap(true, std::sync::atomic::Ordering::SeqCst) {
            m.with(|s| s.members[0].version = "3.5.33".into());
            m.restart(0);
        }
    })
    .running("etcd.service");
    assert!(armed.load(std::sync::atomic::Ordering::SeqCst));
    let plan = first_plan(&run);
    let turn = turn(&cx(&run, &live), &plan, verdict.as_ref()).unwrap();
    // Validated, then enabled, with the turn held and before any binary changed or restarted.
    assert_eq!(
        c.with(|s| s.downgrade_actions.clone()),
        ["VALIDATE 3.5", "ENABLE 3.5"]
    );
    assert_eq!(c.with(|s| s.cluster_version.clone()), "3.5.0");
    assert!(live.calls.lock().unwrap().is_empty(), "{:?}", live.calls);
    assert!(!s.root.path().join("usr/local/bin/etcd").exists());
    service(&cx(&run, &live), &Plan { changes: vec![] }, turn).unwrap();
    assert_eq!(
        live.calls.lock().unwrap().first().map(String::as_str),
        Some("restart --no-block etcd.service")
    );

    // The next member finds the downgrade enabled: nothing more asked of the API.
    let s2 = scratch(&c, "etcd_version: \"3.5.33\"\netcd_allow_downgrade: true\n");
    installed(s2.root.path(), "3.6.14");
    match upgrade_path(&run_of(&s2).looking()).unwrap() {
        Some(Verdict::Downgrade {
            enabled: true,
            line,
            ..
        }) => {
            assert!(line.contains("enabled, cluster at 3.5"), "{line}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.with(|s| s.downgrade_actions.len()), 2);
}

#[test]
fn etcd_refusing_the_downgrade_stops_the_run_before_anything_changes() {
    let c = Arc::new(MockCluster::start(1));
    all_on(&c, "3.6.14");
    let s = scratch(&c, "etcd_version: \"3.5.33\"\netcd_allow_downgrade: true\n");
    installed(s.root.path(), "3.6.14");
    let run = run_of(&s);
    let verdict = upgrade_path(&run.looking()).unwrap();
    c.with(|s| {
        s.overrides.insert(
            "/v3/maintenance/downgrade".into(),
            crate::util::testserver::Response::json(
                400,
                &serde_json::json!({"error": "etcdserver: invalid downgrade target version", "code": 9}),
            ),
        )
    });
    let live = FakeServices::new(true, |_, _| {}).running("etcd.service");
    let e = turn(&cx(&run, &live), &first_plan(&run), verdict.as_ref())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("etcd refused to validate the downgrade to 3.5")
            && e.contains("invalid downgrade target version")
            && e.contains("nothing was changed"),
        "{e}"
    );
    assert_eq!(
        restart::pending(&run.root),
        None,
        "no restart left pending for a run that changed nothing"
    );
    assert!(live.calls.lock().unwrap().is_empty());
}

/// What an earlier apply of 3.5.32 installed, leaving for 3.6.14: the unit with --enable-v2,
/// etcdctl and a stand-in etcdutl 3.5 (digests recorded), and the member's data, whose WAL holds
/// custom v2 data. The scratch, its run, and the WAL file.
fn v2_custom_data() -> (Arc<MockCluster>, Scratch, Run, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let c = Arc::new(MockCluster::start(1));
    all_on(&c, "3.5.32");
    let s = scratch(&c, "etcd_version: \"3.6.14\"\n");
    let root = s.root.path();
    installed(root, "3.5.32");
    let run = run_of(&s);
    // What an earlier apply installed: the unit with --enable-v2, etcdctl and etcdutl (digests
    // recorded), and the member's data.
    let unit = root.join("etc/systemd/system/etcd.service");
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    std::fs::write(
        &unit,
        "[Service]\nExecStart=/usr/local/bin/etcd \\\n  --enable-v2=\"true\" \\\n  --name=\"etcd-node1\"\n\n[Install]\n",
    )
    .unwrap();
    let bin = root.join("usr/local/bin");
    std::fs::create_dir_all(&bin).unwrap();
    // A stand-in etcdutl 3.5: "custom" when the copied WAL holds the marker, as the real check
    // exits 1 with "detected custom content in v2store".
    let etcdutl = "#!/bin/sh\n[ \"$1 $2 $3\" = \"check v2store --data-dir\" ] || exit 3\n\
                   if grep -rqs v2-custom-data \"$4/member\"; then echo 'Error: detected custom content in v2store' >&2; exit 1; fi\n\
                   echo 'No custom content found in both v2store and WAL records.'\n";
    let digests = crate::state::digests::Digests::load(root);
    for (name, text) in [("etcdctl", "#!/bin/sh\nexit 0\n"), ("etcdutl", etcdutl)] {
        let p = bin.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        digests.remember(&p, crate::util::io::Sha256::of(text.as_bytes()));
    }
    digests.save().unwrap();
    let wal = root.join("var/lib/etcd/member/wal");
    std::fs::create_dir_all(&wal).unwrap();
    std::fs::create_dir_all(root.join("var/lib/etcd/member/snap")).unwrap();
    std::fs::write(
        wal.join("0000000000000000-0000000000000000.wal"),
        "entries v2-custom-data",
    )
    .unwrap();
    let file = wal.join("0000000000000000-0000000000000000.wal");
    (c, s, run, file)
}

/// Leaving 3.5 with the v2 API on: the installed (verified) etcdutl checks a private copy of the
/// member's snapshots and WAL; custom v2 data refuses the turn with the guide's remedy.
#[test]
fn custom_v2_data_refuses_the_move_to_3_6_before_the_turn() {
    let (_c, s, run, wal_file) = v2_custom_data();
    let root = s.root.path();
    let live = FakeServices::new(true, |_, _| {}).running("etcd.service");
    let plan = first_plan(&run);
    let e = turn(&cx(&run, &live), &plan, None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("keeps custom data in its v2 store")
            && e.contains("detected custom content in v2store")
            && e.contains("v2-migration")
            && e.contains("nothing was changed"),
        "{e}"
    );
    assert!(live.calls.lock().unwrap().is_empty());
    assert_eq!(restart::pending(&run.root), None);
    assert!(
        crate::util::fs::entries(&root.join("var/lib/etcd-bootstrap"))
            .iter()
            .all(|n| !n.starts_with("v2store-check")),
        "the copy of etcd's data is removed"
    );
    // No custom data: the check passes and the turn is taken (one member: no lock).
    std::fs::write(&wal_file, "membership only").unwrap();
    let taken = turn(&cx(&run, &live), &plan, None).unwrap();
    assert!(taken.is_some());
    drop(taken);
}

/// #32: etcd stopped is no reason to skip the check (it starts on 3.6 just the same); a copy a
/// killed run left behind is removed; a link planted in etcd's dir is refused, not followed.
#[test]
fn the_v2_check_runs_with_etcd_stopped_sweeps_old_copies_and_follows_no_link() {
    let (_c, s, run, _) = v2_custom_data();
    let root = s.root.path();
    let plan = first_plan(&run);
    let live = FakeServices::new(true, |_, _| {}).running("etcd.service");

    let stale = root.join("var/lib/etcd-bootstrap/v2store-check.999999999");
    std::fs::create_dir_all(stale.join("member/wal")).unwrap();
    let stopped = FakeServices::new(true, |_, _| {});
    let e = turn(&cx(&run, &stopped), &plan, None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("keeps custom data in its v2 store"), "{e}");
    assert!(!stale.exists(), "a killed run's copy of the WAL is left");
    let snap = root.join("var/lib/etcd/member/snap");
    std::fs::remove_dir(&snap).unwrap();
    std::os::unix::fs::symlink("/etc", &snap).unwrap();
    let e = turn(&cx(&run, &live), &plan, None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("is not a directory (a link?)"), "{e}");
}
