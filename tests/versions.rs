//! etcd 3.6 and 3.7, where no real build of either reaches this machine: stand-in releases
//! (tests/support/standin) whose `etcd --version` and `--help` answer as that version does (the
//! help rendered from etcd's own help.go of it) and whose `etcd` serves a one-member stand-in
//! cluster; packed as release tarballs with SHA256SUMS like the real ones. The upgrade path by
//! etcd's guides, flags judged by the target version before any download, the v2 store check
//! before 3.6, and a downgrade through etcd's API, on a live node (the `systemctl` double runs the
//! stand-in as etcd).

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

const NAME: &str = "etcd-node1";
const ADDR: &str = "10.8.0.1";

fn seed_of(s: &Single, file: &str, release: &str, settings: &str, extra: &str) -> PathBuf {
    let mut t = SeedText::new(release).member(NAME, ADDR).extra(extra);
    if !settings.is_empty() {
        t = t.settings(settings);
    }
    t.write(&s.dir.path().join(file))
}

/// A live node (no `--root`) with wg0, its certificates at /srv/pki, installed with `release`
/// and healthy.
fn live(release: &str) -> Single {
    let mut node = Node::bare(NAME, ADDR, Mounts::Live, None);
    node.add_wg0();
    let s = Single::with_node(node, release);
    s.pki.install(NAME, &s.node.private("/srv").join("pki"));
    let out = apply_live(&s, &s.seed);
    assert!(out.status.success(), "{}", stderr(&out));
    s.wait_healthy_live();
    s
}

fn apply_live(s: &Single, seed: &Path) -> Output {
    run(&mut s.node.tool(&["apply", "--seed", seed.to_str().unwrap()]))
}

/// (etcdserver, etcdcluster) as the member says.
fn versions(s: &Single) -> (String, String) {
    let body = s
        .node
        .curl(&s.pki, &format!("https://{ADDR}:2379/version"))
        .expect("/version answers");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    (
        v["etcdserver"].as_str().unwrap().to_string(),
        v["etcdcluster"].as_str().unwrap().to_string(),
    )
}

/// Release tarballs in the download dir (under `dir`).
fn downloaded(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tar.gz"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn flags_are_judged_by_the_target_version_before_anything_is_downloaded() {
    let s = Single::new(NAME, ADDR, &standin_release("3.6.14"));
    let root = s.root.path();
    let download = root.join("opt/etcd");
    let tool = |cmd: &str, seed: &Path| {
        run(&mut s
            .node
            .tool(&refs(&with_seed_and_root(cmd, seed, root, &[]))))
    };
    let check = |seed: &Path| tool("check", seed);
    let apply = |seed: &Path| tool("apply", seed);

    // The role's enable-v2, pasted into a seed for 3.6: the guide's advice, before any download.
    let v2 = seed_of(
        &s,
        "v2.yaml",
        &standin_release("3.6.14"),
        "enable-v2: \"true\"",
        "",
    );
    for (what, out) in [("check", check(&v2)), ("apply", apply(&v2))] {
        assert_eq!(out.status.code(), Some(2), "{what}: {}", all_output(&out));
        let text = all_output(&out);
        assert!(
            text.contains("etcd 3.6.14 would not start: --enable-v2 was removed in etcd 3.6")
                && text.contains("run `etcdutl check v2store`")
                && text.contains("https://etcd.io/docs/v3.6/upgrades/upgrade_3_6/"),
            "{what}: {text}"
        );
    }
    assert_eq!(downloaded(&download), Vec::<String>::new());

    // A 3.5 flag 3.6 made a feature gate: a warning naming it, for 3.6 ...
    let gate = "experimental-initial-corrupt-check: \"true\"";
    let on36 = seed_of(&s, "gate36.yaml", &standin_release("3.6.14"), gate, "");
    let out = apply(&on36);
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(
        stderr(&out).contains(
            "--experimental-initial-corrupt-check is deprecated since etcd 3.6 and removed in 3.7: \
             use --feature-gates=InitialCorruptCheck=true"
        ),
        "{}",
        stderr(&out)
    );
    // ... and `check`, now asking the staged 3.6 binary too: it knows the old name, and the
    // role's snapshot-count is said to override 3.6's default.
    let out = check(&on36);
    assert!(out.status.success(), "{}", all_output(&out));
    let text = stdout(&out);
    for line in [
        "warning  versions etcd 3.6.14: --experimental-initial-corrupt-check is deprecated",
        "warning  versions snapshot-count 100000 overrides etcd 3.6's default of 10000",
        "ok       flags    all ",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    // ... an error for 3.7, before its release is downloaded.
    let on37 = seed_of(&s, "gate37.yaml", &standin_release("3.7.1"), gate, "");
    let out = apply(&on37);
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    assert!(
        stderr(&out).contains(
            "etcd 3.7.1 would not start: --experimental-initial-corrupt-check was removed in etcd 3.7: \
             use --feature-gates=InitialCorruptCheck=true"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        downloaded(&download),
        vec!["etcd-v3.6.14-linux-amd64.tar.gz".to_string()]
    );
    // The gate itself is what the 3.7 binary takes.
    let fixed = seed_of(
        &s,
        "gate37-fixed.yaml",
        &standin_release("3.7.1"),
        "feature-gates: \"InitialCorruptCheck=true\"",
        "",
    );
    let out = check(&fixed);
    assert!(
        !stdout(&out).contains("error    versions"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_member_moves_3_5_to_3_6_to_3_7_only_along_etcds_guides() {
    let s = live(&standin_release("3.5.25"));
    let download = s.node.private("/opt").join("etcd");
    assert_eq!(versions(&s).0, "3.5.25");

    // 3.5 → 3.7 skips 3.6.
    let skip = seed_of(&s, "37.yaml", &standin_release("3.7.1"), "", "");
    let out = apply_live(&s, &skip);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("3.5.25 → 3.7.1 is refused: it skips 3.6"),
        "{}",
        stderr(&out)
    );

    // 3.5.25 → 3.6: the guide's floor (3.5.32) named, with the patch to apply first; nothing
    // downloaded, nothing changed.
    let to36 = seed_of(&s, "36.yaml", &standin_release("3.6.14"), "", "");
    let before = s.node.live_tree();
    let out = apply_live(&s, &to36);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("3.5.25 → 3.6.14 is refused: 3.6 needs every member at 3.5.32 or later first (etcd-node1 at 3.5.25;")
            && err.contains("set etcd_version: \"3.5.32\" in the seed and run `etcd-bootstrap apply` on etcd-node1")
            && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(
        changed_paths(&before, &s.node.live_tree()),
        Vec::<String>::new()
    );
    assert!(!downloaded(&download).iter().any(|t| t.contains("3.6.14")));
    let out = run(&mut s.node.tool(&["check", "--seed", to36.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(
            "error    upgrade  3.5.25 → 3.6.14 is refused: 3.6 needs every member at 3.5.32"
        ),
        "{}",
        stdout(&out)
    );

    // The patch the refusal named, with the role's enable-v2 (3.5 takes it, deprecated).
    let v2 = "enable-v2: \"true\"";
    let floor = seed_of(&s, "3532.yaml", &standin_release("3.5.32"), v2, "");
    let out = apply_live(&s, &floor);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--enable-v2 is deprecated since etcd 3.5 and removed in 3.6"),
        "{}",
        stderr(&out)
    );
    assert_eq!(versions(&s).0, "3.5.32");

    // Custom data in the v2 store: etcd 3.6 would not start on it. The turn is refused with the
    // guide's remedy; the running 3.5.32 and everything installed stay as they were.
    let wal = s
        .node
        .private("/var/lib")
        .join("etcd/member/wal/0000000000000000-0000000000000000.wal");
    let clean = fs::read(&wal).unwrap();
    fs::write(
        &wal,
        [clean.clone(), b"v2-custom-data /foo\n".to_vec()].concat(),
    )
    .unwrap();
    let before = s.node.live_tree();
    let out = apply_live(&s, &to36);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("etcd-node1 keeps custom data in its v2 store (`etcdutl check v2store`: Error: detected custom content in v2store)")
            && err.contains("https://etcd.io/docs/v3.4/op-guide/v2-migration/")
            && err.contains("remove --enable-v2")
            && err.contains("nothing was changed"),
        "{err}"
    );
    let after = s.node.live_tree();
    // The download (the check comes after it, in the turn) and its cache records may change;
    // nothing installed does.
    let cache = [
        "/opt/etcd/",
        "/var/lib/etcd-bootstrap/staged/",
        "/var/lib/etcd-bootstrap/release-digests",
        // What the staged etcd answered to --help/--version, by its digest.
        "/var/lib/etcd-bootstrap/etcd-answers/",
    ];
    let changed: Vec<String> = changed_paths(&before, &after)
        .into_iter()
        .filter(|p| !cache.iter().any(|c| p.starts_with(c)))
        .collect();
    assert_eq!(
        changed,
        Vec::<String>::new(),
        "only the download cache may change"
    );
    assert_eq!(versions(&s).0, "3.5.32");

    // Without it: the check passes on a copy of the data, the member restarts as 3.6.
    fs::write(&wal, &clean).unwrap();
    let out = apply_live(&s, &to36);
    s.assert_applied(&out);
    assert!(
        stderr(&out).contains("`etcdutl check v2store` on a copy of this member's data")
            && stderr(&out).contains("No custom content found"),
        "{}",
        stderr(&out)
    );
    assert_eq!(versions(&s), ("3.6.14".into(), "3.6.0".into()));

    // 3.6.10 (a patch downgrade within 3.6) → 3.7: the 3.7 guide's floor, 3.6.11.
    let patch = seed_of(&s, "3610.yaml", &standin_release("3.6.10"), "", "");
    let out = apply_live(&s, &patch);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(versions(&s).0, "3.6.10");
    let out = apply_live(&s, &skip);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("3.6.10 → 3.7.1 is refused: 3.7 needs every member at 3.6.11 or later first (etcd-node1 at 3.6.10;")
            && stderr(&out).contains("https://etcd.io/docs/v3.7/upgrades/upgrade_3_7/"),
        "{}",
        stderr(&out)
    );
    let eleven = seed_of(&s, "3611.yaml", &standin_release("3.6.11"), "", "");
    assert!(apply_live(&s, &eleven).status.success());
    let out = apply_live(&s, &skip);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(versions(&s), ("3.7.1".into(), "3.7.0".into()));
}

/// The stand-in's request log: (time, path and downgrade action).
fn requests(s: &Single) -> Vec<(f64, String)> {
    fs::read_to_string(
        s.node
            .private("/var/lib")
            .join("etcd/member/standin-requests.log"),
    )
    .unwrap_or_default()
    .lines()
    .filter_map(|l| {
        let (t, rest) = l.split_once(' ')?;
        Some((t.parse().ok()?, rest.to_string()))
    })
    .collect()
}

#[test]
fn a_downgrade_goes_through_etcds_api_and_only_when_the_seed_allows_it() {
    let s = live(&standin_release("3.6.14"));
    let down = seed_of(&s, "35.yaml", &standin_release("3.5.33"), "", "");
    let out = apply_live(&s, &down);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("3.6.14 → 3.5.33 is refused: a downgrade to 3.5")
            && stderr(&out).contains("etcd_allow_downgrade: true")
            && stderr(&out).contains("https://etcd.io/docs/v3.6/downgrades/downgrade_3_6/"),
        "{}",
        stderr(&out)
    );
    assert!(!requests(&s)
        .iter()
        .any(|(_, r)| r.contains("/v3/maintenance/downgrade")));

    let allowed = seed_of(
        &s,
        "35-allowed.yaml",
        &standin_release("3.5.33"),
        "",
        "etcd_allow_downgrade: true\n",
    );
    let out = apply_live(&s, &allowed);
    s.assert_applied(&out);
    // validate, enable, and only then the binaries (the restart job) change.
    let api: Vec<(f64, String)> = requests(&s)
        .into_iter()
        .filter(|(_, r)| r.starts_with("/v3/maintenance/downgrade"))
        .collect();
    let actions: Vec<&str> = api.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(
        actions,
        [
            "/v3/maintenance/downgrade VALIDATE 3.5",
            "/v3/maintenance/downgrade ENABLE 3.5"
        ]
    );
    let restart = s
        .node
        .systemctl_events()
        .into_iter()
        .find(|e| e.what == "restart-begin")
        .expect("a restart job");
    assert!(
        api[1].0 < restart.t,
        "enabled at {}, restarted at {}",
        api[1].0,
        restart.t
    );
    assert_eq!(versions(&s), ("3.5.33".into(), "3.5.0".into()));
    assert!(
        stderr(&out).contains("downgrade complete: every member runs 3.5"),
        "{}",
        stderr(&out)
    );
}
