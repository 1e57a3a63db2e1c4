//! Offsite backups against a real S3-compatible store (SeaweedFS, TLS from its own CA, SigV4):
//! one verified object per interval from a 3-member cluster, its meta true to `etcdutl`,
//! retention; and the failures an operator meets — a wrong secret, a missing bucket, a store
//! whose certificate is not from `ca_file`, a store that stops answering — each exit 1 with the
//! store's own word, the local snapshot kept, no partial object ever counted — and one that
//! answers, slowly, forever (a relay that trickles), which only a deadline ends.

mod common;
use common::*;
use std::fs;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BUCKET: &str = "etcd-backups";
const CREDS: &str = "etc/etcd-bootstrap/s3-credentials";
const CA: &str = "etc/etcd-bootstrap/s3-ca.pem";

fn offsite_seed(bucket: &str, extra: &str) -> String {
    format!(
        "etcd_backup:\n  dir: /var/backups/etcd\n  interval: 1h\n  keep: 2\n  offsite:\n    \
         url: https://{STORE_ADDR}:8333/{bucket}/prod\n    \
         credentials: /etc/etcd-bootstrap/s3-credentials\n    \
         ca_file: /etc/etcd-bootstrap/s3-ca.pem\n    keep: 2\n{extra}"
    )
}

/// apply + start every node, then wait until all are healthy.
fn up(c: &mut Cluster) {
    for i in 0..c.nodes.len() {
        c.apply(i);
    }
    for i in 0..c.nodes.len() {
        c.start(i);
    }
    c.wait_all_healthy();
}

/// The store's credentials and CA in node i's root.
fn give_store(c: &Cluster, s: &S3Store, i: usize, secret: &str) {
    let root = c.roots[i].path();
    s.write_credentials(&root.join(CREDS), secret);
    fs::copy(&s.ca, root.join(CA)).unwrap();
}

/// What the backup timer runs on node i (its unit's ExecStart), under the node's root.
fn backup(c: &Cluster, i: usize) -> Output {
    let root = c.roots[i].path();
    let argv = exec_start(&root.join("etc/systemd/system/etcd-backup.service"));
    let mut cmd = c.nodes[i].cmd(bin().to_str().unwrap());
    cmd.args(&argv[1..]).arg("--root").arg(root);
    run(&mut cmd)
}

/// The interval passes: the claim's lease ends (as its TTL would end it).
fn interval_passes(c: &Cluster) {
    let out = c.etcdctl(0, "get etcd-bootstrap/offsite-claim -w json");
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    if let Some(lease) = v["kvs"][0]["lease"].as_i64() {
        let out = c.etcdctl(0, &format!("lease revoke {lease:x}"));
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

fn local_snapshots(c: &Cluster, i: usize) -> usize {
    fs::read_dir(c.roots[i].path().join("var/backups/etcd"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".db")
            })
            .count()
        })
        .unwrap_or(0)
}

#[test]
fn three_members_upload_one_verified_snapshot_per_interval_true_to_etcdutl() {
    let mut c = Cluster::new(
        3,
        &format!("{}{}", file_release("3.5.1"), offsite_seed(BUCKET, "")),
    );
    let s = S3Store::start(c.bridge_ns(), BUCKET);
    up(&mut c);
    for i in 0..3 {
        give_store(&c, &s, i, &s.secret.clone());
    }
    let mut uploaded = Vec::new();
    for round in 0..3 {
        for k in 0..20 {
            let out = c.etcdctl(
                k % 3,
                &format!("put /registry/r{round}/k{k} value-{round}-{k}"),
            );
            assert!(out.status.success(), "{}", stderr(&out));
        }
        // Every member's timer fires in the interval; one uploads, the others find it taken.
        let mut said = Vec::new();
        for i in [round % 3, (round + 1) % 3, (round + 2) % 3] {
            let out = backup(&c, i);
            let text = all_output(&out);
            assert!(out.status.success(), "backup on node {i}: {text}");
            assert!(!text.contains(&s.secret), "the secret was shown: {text}");
            said.push(text);
        }
        let ups: Vec<&String> = said
            .iter()
            .filter(|t| t.contains("uploaded and checked"))
            .collect();
        assert_eq!(ups.len(), 1, "round {round}: {said:#?}");
        assert!(
            said[0].contains("uploaded and checked"),
            "the first run takes the interval"
        );
        assert_eq!(
            said.iter()
                .filter(|t| t.contains("not this member's turn"))
                .count(),
            2,
            "{said:#?}"
        );
        uploaded.push(ups[0].clone());
        interval_passes(&c);
    }
    // keep 2 offsite: the newest two intervals, each an object and its meta.
    let keys = s.keys(BUCKET, "prod/");
    assert_eq!(keys.len(), 4, "{keys:#?}");
    let token = "etcd-cluster-0";
    let dirs: Vec<&str> = keys
        .iter()
        .map(|k| {
            let rest = k.strip_prefix(&format!("prod/{token}/")).expect(k);
            rest.split_once('/').unwrap().0
        })
        .collect();
    for (k, d) in keys.iter().zip(&dirs) {
        // <UTC time, RFC 3339 basic>-rev<16 hex digits>/(etcd.backup.gz | _etcd_backup.meta)
        assert_eq!(d.len(), 36, "{k}");
        assert!(d.as_bytes()[8] == b'T' && &d[15..20] == "Z-rev", "{k}");
        assert!(d[20..].bytes().all(|b| b.is_ascii_hexdigit()), "{k}");
        assert!(
            k.ends_with("/etcd.backup.gz") || k.ends_with("/_etcd_backup.meta"),
            "{k}"
        );
    }
    let newest = dirs.iter().max().unwrap();
    assert!(uploaded[2].contains(newest), "{}", uploaded[2]);
    // The newest object, read back by another client: its meta is true to the snapshot.
    let tmp = scratch("offsite-get");
    let gz = tmp.path().join("snap.db.gz");
    s.get(
        BUCKET,
        &format!("prod/{token}/{newest}/etcd.backup.gz"),
        &gz,
    );
    s.get(
        BUCKET,
        &format!("prod/{token}/{newest}/_etcd_backup.meta"),
        &tmp.path().join("meta"),
    );
    let stored = fs::metadata(&gz).unwrap().len();
    ok(Command::new("gunzip").arg(&gz));
    let db = tmp.path().join("snap.db");
    let meta: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(tmp.path().join("meta")).unwrap()).unwrap();
    let etcdutl = c.roots[0].path().join("usr/local/bin/etcdutl");
    let status: serde_json::Value = serde_json::from_str(&ok(Command::new(&etcdutl)
        .args(["snapshot", "status", "-w", "json"])
        .arg(&db)))
    .unwrap();
    assert_eq!(meta["revision"], status["revision"], "{meta}");
    assert_eq!(meta["total_keys"], status["totalKey"], "{meta}");
    assert_eq!(
        u64::from_str_radix(&newest[20..], 16).unwrap(),
        status["revision"].as_u64().unwrap()
    );
    let sum = ok(Command::new("sha256sum").arg(&db));
    assert_eq!(
        meta["sha256"].as_str().unwrap(),
        sum.split_whitespace().next().unwrap()
    );
    assert_eq!(
        meta["size"].as_u64().unwrap(),
        fs::metadata(&db).unwrap().len()
    );
    assert_eq!(meta["stored_size"].as_u64().unwrap(), stored);
    assert_eq!(meta["members"], 3);
    assert_eq!(meta["etcd_version"], "3.5.1");
    assert_eq!(meta["encrypted"], false);
    // The last round's keys are in it.
    let restored = tmp.path().join("restored");
    ok(Command::new(&etcdutl)
        .args(["snapshot", "restore"])
        .arg(&db)
        .arg("--data-dir")
        .arg(&restored));
    assert!(status["totalKey"].as_u64().unwrap() >= 60, "{status}");
    watched_listed_and_checked(&c, &s, &keys);
}

/// Every snapshot the store counts (its meta written) has its object, of the size the meta says.
fn counted_objects_are_whole(s: &S3Store) {
    let keys = s.keys(BUCKET, "prod/");
    let tmp = scratch("offsite-whole");
    for meta_key in keys.iter().filter(|k| k.ends_with("/_etcd_backup.meta")) {
        let dir = meta_key.rsplit_once('/').unwrap().0;
        let m = tmp.path().join("meta");
        s.get(BUCKET, meta_key, &m);
        let meta: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&m).unwrap()).unwrap();
        let object = format!("{dir}/{}", meta["object"].as_str().unwrap());
        let head = ok(&mut s.aws(&["s3api", "head-object", "--bucket", BUCKET, "--key", &object]));
        let head: serde_json::Value = serde_json::from_str(&head).unwrap();
        assert_eq!(
            head["ContentLength"], meta["stored_size"],
            "{object}: {meta}"
        );
    }
}

/// node i's backup metrics file (node_exporter's textfile dir, the seed's default).
fn metrics(c: &Cluster, i: usize) -> String {
    fs::read_to_string(
        c.roots[i]
            .path()
            .join("var/lib/prometheus/node-exporter/etcd-bootstrap-backup.prom"),
    )
    .unwrap_or_default()
}

/// The value of one sample line `name` in a textfile.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// After the three intervals: every member's metrics show the cluster's last upload (not only
/// the uploader's), `backup --list` shows the objects in the store newest first, and `check`
/// probes the store and leaves nothing in it.
fn watched_listed_and_checked(c: &Cluster, s: &S3Store, keys: &[String]) {
    let off = "etcd_bootstrap_backup_last_success_timestamp_seconds{target=\"offsite\"}";
    let local = "etcd_bootstrap_backup_last_success_timestamp_seconds{target=\"local\"}";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let last: Vec<f64> = (0..3)
        .map(|i| {
            let m = metrics(c, i);
            assert!(sample(&m, local).is_some_and(|t| now - t < 600.0), "{m}");
            sample(&m, off).unwrap_or_else(|| panic!("node {i}: no offsite success in\n{m}"))
        })
        .collect();
    // The last round's uploader wrote the cluster's record; the two after it read it.
    assert!(
        last.iter().all(|t| *t == last[2] && now - t < 600.0),
        "{last:?}"
    );
    let m = metrics(c, 0);
    assert!(
        m.contains("etcd_bootstrap_backup_last_run_success{target=\"offsite\"} 1\n"),
        "{m}"
    );

    let out = c.run(1, "backup", &["--list"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", all_output(&out));
    let offsite: Vec<&str> = text.lines().filter(|l| l.starts_with("offsite")).collect();
    let objects: Vec<&String> = keys.iter().filter(|k| k.ends_with(".gz")).collect();
    assert_eq!(offsite.len(), objects.len(), "{text}");
    // Newest first; each verified, not encrypted, at its place in the store.
    let mut want: Vec<&String> = objects.clone();
    want.sort();
    want.reverse();
    for (line, key) in offsite.iter().zip(want) {
        assert!(
            line.contains(key.as_str()) && line.contains("no        yes"),
            "{line}"
        );
    }
    assert_eq!(
        text.lines().filter(|l| l.starts_with("local")).count(),
        2,
        "{text}"
    );
    let out = c.run(1, "backup", &["--list", "--output", "json"]);
    let rows: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), objects.len() + 2);
    let taken: Vec<i64> = rows.iter().map(|r| r["taken"].as_i64().unwrap()).collect();
    assert!(taken.windows(2).all(|w| w[0] >= w[1]), "{taken:?}");

    let out = c.run(2, "check", &[]);
    let text = stdout(&out);
    assert!(
        text.lines().any(|l| l.starts_with("ok")
            && l.contains("offsite")
            && l.contains("probe object written")),
        "{}",
        all_output(&out)
    );
    assert!(!all_output(&out).contains(&s.secret));
    assert_eq!(s.keys(BUCKET, "prod/"), keys, "the probe leaves nothing");
}

/// A single-member cluster backing up to `bucket`, and the store.
fn one(backup: &str) -> (Cluster, S3Store) {
    let mut c = Cluster::new(1, &file_release("3.5.1"));
    c.seed = c.seed_with("seed.yaml", &[0], "", backup);
    let s = S3Store::start(c.bridge_ns(), BUCKET);
    up(&mut c);
    (c, s)
}

/// Applies `seed` (offsite settings changed) on node 0.
fn reapply(c: &Cluster, seed: &std::path::Path) {
    let out = run(&mut c.tool(0, seed, "apply", &[]));
    assert!(out.status.success(), "apply: {}", stderr(&out));
}

#[test]
fn a_wrong_secret_a_missing_bucket_or_a_foreign_ca_fail_at_once_naming_the_store() {
    let (c, s) = one(&offsite_seed(BUCKET, ""));
    // A wrong secret: the store's own word, its endpoint, never the secret.
    give_store(&c, &s, 0, "not-the-secret-at-all");
    let out = backup(&c, 0);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    assert!(text.contains(&s.endpoint), "{text}");
    assert!(
        !text.contains("not-the-secret-at-all") && !text.contains(&s.secret),
        "{text}"
    );
    assert_eq!(local_snapshots(&c, 0), 1, "the local snapshot is kept");
    let m = metrics(&c, 0);
    assert!(
        m.contains("last_run_success{target=\"offsite\"} 0\n"),
        "{m}"
    );
    assert!(m.contains("last_run_success{target=\"local\"} 1\n"), "{m}");
    assert!(
        !m.contains("last_success_timestamp_seconds{target=\"offsite\"}"),
        "{m}"
    );
    // check says the same before any backup depends on it.
    let out = c.run(0, "check", &[]);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.lines().any(|l| l.contains("offsite")
            && l.contains("SignatureDoesNotMatch")
            && l.contains(&s.endpoint)),
        "{text}"
    );
    assert!(
        !text.contains("not-the-secret-at-all") && !text.contains(&s.secret),
        "{text}"
    );
    // status says so: an error naming the store's word.
    let status = c.run(0, "status", &[]);
    let text = stdout(&status);
    assert!(!status.status.success(), "{text}");
    assert!(
        text.lines().any(|l| l.contains("offsite")
            && l.contains("failed")
            && l.contains("SignatureDoesNotMatch")),
        "{text}"
    );
    // The claim was given back: the next run (right secret) uploads in the same interval.
    give_store(&c, &s, 0, &s.secret.clone());
    let out = backup(&c, 0);
    assert!(out.status.success(), "{}", all_output(&out));
    let keys = s.keys(BUCKET, "prod/");
    assert_eq!(keys.len(), 2);
    // ... and status shows the upload, no error.
    let status = c.run(0, "status", &[]);
    let text = stdout(&status);
    let object = keys.iter().find(|k| k.ends_with("etcd.backup.gz")).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("offsite") && l.contains(object.as_str()) && l.contains("old")),
        "{text}"
    );
    assert!(!text.contains("failed"), "{text}");
    interval_passes(&c);

    // A bucket that does not exist.
    let seed = c.seed_with(
        "nobucket.yaml",
        &[0],
        "",
        &offsite_seed("no-such-bucket", ""),
    );
    reapply(&c, &seed);
    let out = backup(&c, 0);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("NoSuchBucket"), "{text}");
    assert!(text.contains("no-such-bucket"), "{text}");
    let out = run(&mut c.tool(0, &seed, "check", &[]));
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with("error") && l.contains("NoSuchBucket")),
        "{}",
        all_output(&out)
    );
    interval_passes(&c);

    // The store's certificate is not from ca_file (the cluster's CA is given instead): refused.
    let seed = c.seed_with("wrongca.yaml", &[0], "", &offsite_seed(BUCKET, ""));
    reapply(&c, &seed);
    fs::copy(
        c.roots[0].path().join("srv/pki/ca-etcd.pem"),
        c.roots[0].path().join(CA),
    )
    .unwrap();
    let before = s.keys(BUCKET, "prod/");
    let out = backup(&c, 0);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("TLS") && text.contains("ca_file"), "{text}");
    assert_eq!(s.keys(BUCKET, "prod/"), before);
}

#[test]
fn a_store_that_stops_answering_meets_the_deadline_and_leaves_no_counted_object() {
    let (c, s) =
        one(&offsite_seed(BUCKET, "").replace("    keep: 2\n", "    keep: 2\n    timeout: 12s\n"));
    give_store(&c, &s, 0, &s.secret.clone());
    s.freeze(true);
    let started = Instant::now();
    let out = backup(&c, 0);
    let took = started.elapsed();
    s.freeze(false);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("deadline") || text.contains("timed out"),
        "{text}"
    );
    // Bounded by the seed's timeout (12 s), not by the store: generous slack for a loaded machine.
    assert!(took < Duration::from_secs(60), "{took:?}: {text}");
    assert!(
        !s.keys(BUCKET, "prod/")
            .iter()
            .any(|k| k.ends_with("_etcd_backup.meta")),
        "no snapshot counted"
    );
    assert_eq!(local_snapshots(&c, 0), 1);
    // Back: the next run uploads, verified.
    let out = backup(&c, 0);
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(s
        .keys(BUCKET, "prod/")
        .iter()
        .any(|k| k.ends_with("_etcd_backup.meta")));
}

#[test]
fn a_store_that_trickles_its_answers_meets_the_deadline() {
    // The store answers through a relay that passes the TLS handshake, then one byte every
    // 200 ms: every read gets something, only a deadline for the whole request ends it.
    let seed = offsite_seed(BUCKET, "")
        .replace(":8333/", ":8334/")
        .replace("    keep: 2\n", "    keep: 2\n    timeout: 15s\n");
    let (c, s) = one(&seed);
    give_store(&c, &s, 0, &s.secret.clone());
    let _relay = s.trickle(8334, 1800, Duration::from_millis(200));
    let started = Instant::now();
    let out = backup(&c, 0);
    let took = started.elapsed();
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("deadline") || text.contains("timed out"),
        "{text}"
    );
    // Bounded by the seed's timeout (15 s), not by the store: generous slack for a loaded machine.
    assert!(took < Duration::from_secs(75), "{took:?}: {text}");
    // Where the deadline fell decides how far it got; what counts is whole either way.
    counted_objects_are_whole(&s);
    assert_eq!(local_snapshots(&c, 0), 1);
    // check meets a deadline too, and says the store did not answer in time.
    let started = Instant::now();
    let out = c.run(0, "check", &[]);
    assert!(started.elapsed() < Duration::from_secs(75));
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with("error") && l.contains("offsite")),
        "{}",
        all_output(&out)
    );
}

#[test]
fn a_snapshot_of_many_parts_sent_two_at_a_time_comes_back_whole() {
    let (c, s) = one(&offsite_seed(BUCKET, ""));
    give_store(&c, &s, 0, &s.secret.clone());
    // 24 values of 768 KiB of base64 noise: a snapshot deflate does not shrink (stored blocks),
    // about four 8 MiB parts.
    let tmp = scratch("offsite-parts");
    for k in 0..24 {
        let v = tmp.path().join(format!("v{k}"));
        ok(Command::new("sh").arg("-c").arg(format!(
            "head -c 589824 /dev/urandom | base64 -w0 > {}",
            v.display()
        )));
        let out = c.etcdctl(
            0,
            &format!("put /registry/secrets/big{k} < {}", v.display()),
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = backup(&c, 0);
    assert!(out.status.success(), "{}", all_output(&out));
    let keys = s.keys(BUCKET, "prod/");
    let object = keys
        .iter()
        .find(|k| k.ends_with("/etcd.backup.gz"))
        .unwrap();
    let dir = object.rsplit_once('/').unwrap().0;
    s.get(BUCKET, object, &tmp.path().join("snap.db.gz"));
    s.get(
        BUCKET,
        &format!("{dir}/_etcd_backup.meta"),
        &tmp.path().join("meta"),
    );
    let meta: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(tmp.path().join("meta")).unwrap()).unwrap();
    assert!(meta["parts"].as_u64().unwrap() >= 3, "{meta}");
    // Stored, not inflated: within a thousandth of the snapshot.
    let (size, stored) = (
        meta["size"].as_u64().unwrap(),
        meta["stored_size"].as_u64().unwrap(),
    );
    assert!(stored < size + size / 1000, "{meta}");
    ok(Command::new("gzip")
        .arg("-t")
        .arg(tmp.path().join("snap.db.gz")));
    ok(Command::new("gunzip").arg(tmp.path().join("snap.db.gz")));
    let sum = ok(Command::new("sha256sum").arg(tmp.path().join("snap.db")));
    assert_eq!(
        meta["sha256"].as_str().unwrap(),
        sum.split_whitespace().next().unwrap()
    );
    counted_objects_are_whole(&s);
}

#[test]
fn with_recipients_only_age_ciphertext_leaves_the_node_and_age_opens_it() {
    let tmp = scratch("offsite-age");
    let id = tmp.path().join("identity.txt");
    ok(Command::new("age-keygen").arg("-o").arg(&id));
    let recipient = ok(Command::new("age-keygen").arg("-y").arg(&id));
    let extra = format!("    recipients: [{}]\n", recipient.trim());
    let mut c = Cluster::new(
        1,
        &format!("{}{}", file_release("3.5.1"), offsite_seed(BUCKET, &extra)),
    );
    let s = S3Store::start(c.bridge_ns(), BUCKET);
    up(&mut c);
    give_store(&c, &s, 0, &s.secret.clone());
    const MARKER: &str = "only-in-the-cluster-7f3a9c";
    for k in 0..50 {
        let out = c.etcdctl(0, &format!("put /registry/secrets/s{k} {MARKER}-{k}"));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = backup(&c, 0);
    assert!(out.status.success(), "{}", all_output(&out));
    let keys = s.keys(BUCKET, "prod/");
    assert_eq!(keys.len(), 2, "{keys:#?}");
    let object = keys
        .iter()
        .find(|k| k.ends_with("/etcd.backup.gz.age"))
        .unwrap_or_else(|| panic!("no .age object: {keys:#?}"));
    let dir = object.rsplit_once('/').unwrap().0;
    let enc = tmp.path().join("snap.db.gz.age");
    s.get(BUCKET, object, &enc);
    s.get(
        BUCKET,
        &format!("{dir}/_etcd_backup.meta"),
        &tmp.path().join("meta"),
    );
    let bytes = fs::read(&enc).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n-> X25519 "));
    assert!(
        !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
        "a value put in etcd is readable in the stored object"
    );
    let meta: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(tmp.path().join("meta")).unwrap()).unwrap();
    assert_eq!(meta["encrypted"], true, "{meta}");
    assert_eq!(meta["object"], "etcd.backup.gz.age", "{meta}");
    assert_eq!(meta["stored_size"].as_u64().unwrap(), bytes.len() as u64);
    // age itself opens it with the identity; what comes out is the snapshot the meta names.
    let gz = tmp.path().join("snap.db.gz");
    ok(Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&id)
        .arg("-o")
        .arg(&gz)
        .arg(&enc));
    ok(Command::new("gunzip").arg(&gz));
    let db = tmp.path().join("snap.db");
    let sum = ok(Command::new("sha256sum").arg(&db));
    assert_eq!(
        meta["sha256"].as_str().unwrap(),
        sum.split_whitespace().next().unwrap()
    );
    let plain = fs::read(&db).unwrap();
    assert!(
        plain.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
        "the decrypted snapshot holds the values (so the search above could find them)"
    );
    let etcdutl = c.roots[0].path().join("usr/local/bin/etcdutl");
    let status: serde_json::Value = serde_json::from_str(&ok(Command::new(&etcdutl)
        .args(["snapshot", "status", "-w", "json"])
        .arg(&db)))
    .unwrap();
    assert_eq!(meta["revision"], status["revision"], "{meta}");
    assert!(status["totalKey"].as_u64().unwrap() >= 50, "{status}");
    // The tool fetches it back itself: age's identity file, its sha256 the meta's.
    let root = c.roots[0].path();
    fs::copy(&id, root.join("etc/etcd-bootstrap/backup.key")).unwrap();
    let key = root.join("etc/etcd-bootstrap/backup.key");
    fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = c.run(
        0,
        "backup",
        &["--download", "--identity", "/etc/etcd-bootstrap/backup.key"],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{}", all_output(&out));
    let (sum, path) = text.trim().split_once("  ").unwrap();
    assert_eq!(sum, meta["sha256"].as_str().unwrap());
    assert_eq!(
        fs::read(path).unwrap(),
        plain,
        "the snapshot as it was saved"
    );
    assert!(
        !all_output(&out).contains("AGE-SECRET-KEY"),
        "the identity was shown"
    );
    // Without the identity, or with another, it says what is missing and leaves nothing.
    fs::remove_file(path).unwrap();
    let out = c.run(0, "backup", &["--download"]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("give the identity"),
        "{}",
        all_output(&out)
    );
    let other = tmp.path().join("other.txt");
    ok(Command::new("age-keygen").arg("-o").arg(&other));
    fs::copy(&other, &key).unwrap();
    let out = c.run(
        0,
        "backup",
        &["--download", "--identity", "/etc/etcd-bootstrap/backup.key"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("no stanza is for this identity"),
        "{}",
        all_output(&out)
    );
    assert!(!std::path::Path::new(path).exists());
    // Another identity cannot open it with age either.
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&other)
        .arg(&enc)
        .output()
        .unwrap();
    assert!(!out.status.success());
}
