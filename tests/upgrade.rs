//! Upgrades, certificate rotations and restarts on live nodes (no `--root`: the systemd-like
//! `systemctl` double really runs etcd, and its `restart --no-block` returns before the job runs),
//! every node applying the new seed at the same moment, with each stop taking 3 s longer (the old
//! etcd keeps answering meanwhile), a watcher asking every member's /health every 100 ms and a
//! client putting 50 keys a second through every member the whole time; and `status`.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WATCH: Duration = Duration::from_millis(100);
/// How much longer than etcd's own each stop takes: a busy job queue, or a large database.
const SLOW_STOP: Duration = Duration::from_secs(3);
/// The longest the cluster may be unavailable, and a client may wait: one election.
const ONE_ELECTION: Duration = Duration::from_secs(2);
const PUTS_PER_SECOND: u32 = 50;

/// A cluster of `n` live nodes on `release`, each applied and healthy, with `keys` keys written.
fn running(n: usize, release: &str, keys: usize) -> Cluster {
    let c = Cluster::live(n, release);
    for i in 0..n {
        c.apply(i);
    }
    c.wait_all_healthy();
    for k in 0..keys {
        let out = c.etcdctl(0, &format!("put key{k} value{k}"));
        assert!(out.status.success(), "put: {}", stderr(&out));
    }
    c
}

fn seed_on(c: &Cluster, name: &str, release: &str) -> PathBuf {
    let all: Vec<usize> = (0..c.nodes.len()).collect();
    SeedText::new(release)
        .nodes(&all)
        .write(&c.dir.path().join(name))
}

fn keys(c: &Cluster, i: usize) -> Vec<String> {
    let out = c.etcdctl(i, "get --prefix key --print-value-only");
    assert!(out.status.success(), "get: {}", stderr(&out));
    let mut v: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    v.sort();
    v
}

fn assert_all_succeeded(c: &Cluster, outs: &[std::process::Output]) {
    for (i, out) in outs.iter().enumerate() {
        assert!(
            out.status.success(),
            "apply on {} failed: {}\netcd's log:\n{}",
            c.nodes[i].name,
            stderr(out),
            c.nodes[i].unit_log("etcd.service")
        );
    }
}

/// One restart job of the `systemctl` double on a node: when it began, when etcd got SIGTERM,
/// when the new process started.
#[derive(Debug)]
struct Restarted {
    node: usize,
    began: f64,
    signalled: f64,
    started: f64,
}

/// The restart jobs of etcd.service since event `from[i]` of each node, in the order they began.
fn restarts(c: &Cluster, from: &[usize]) -> Vec<Restarted> {
    let mut all = Vec::new();
    for (i, n) in c.nodes.iter().enumerate() {
        let ev: Vec<JobEvent> = n.systemctl_events().into_iter().skip(from[i]).collect();
        let at = |what: &str, after: f64| {
            ev.iter()
                .find(|e| e.unit == "etcd.service" && e.what == what && e.t >= after)
                .map(|e| e.t)
        };
        for b in ev
            .iter()
            .filter(|e| e.unit == "etcd.service" && e.what == "restart-begin")
        {
            all.push(Restarted {
                node: i,
                began: b.t,
                signalled: at("stop-signalled", b.t).unwrap_or(f64::MAX),
                started: at("started", b.t).unwrap_or(f64::MAX),
            });
        }
    }
    all.sort_by(|a, b| a.began.total_cmp(&b.began));
    all
}

/// Each restart began only after the previous member's new process had started, and that
/// process answered healthy (as the watcher saw) before this member's etcd was signalled.
fn assert_one_after_another(c: &Cluster, done: &[Restarted], seen: &Watched) {
    for w in done.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let (an, bn) = (&c.nodes[a.node].name, &c.nodes[b.node].name);
        assert!(
            b.began >= a.started,
            "{bn}'s restart began at {:.3}, before {an}'s new etcd started at {:.3}: {done:?}",
            b.began,
            a.started
        );
        let url = format!("https://{}:2379", c.nodes[a.node].addr);
        let healthy = seen.healthy_from(&url, a.started);
        assert!(
            healthy.is_some_and(|h| h <= b.signalled),
            "{an}'s new etcd was not seen healthy ({healthy:?}) before {bn}'s was signalled at {:.3}",
            b.signalled
        );
    }
}

/// `apply --seed SEED` on every node at the same moment, stops slow, watched and written to:
/// each succeeds and says it restarted for `why`; the restarts came one after another; never
/// two members down, never unavailable longer than one election; every acknowledged put kept,
/// and no client waited longer than one election.
fn roll(c: &mut Cluster, seed: &Path, why: &str) -> (Watched, Written) {
    for n in &c.nodes {
        n.set_stop_delay(SLOW_STOP);
    }
    let from: Vec<usize> = c.nodes.iter().map(|n| n.systemctl_events().len()).collect();
    let watcher = c.watch(0, WATCH);
    let writer = c.write_load(0, PUTS_PER_SECOND);
    let outs = c.apply_all_at_once(seed, &[]);
    let written = writer.stop();
    let seen = watcher.stop();
    eprintln!("the watcher saw: {}", seen.summary());
    eprintln!("the writer saw: {}", written.summary());
    for o in &outs {
        eprintln!("{}", stderr(o));
    }
    assert_all_succeeded(c, &outs);
    for out in &outs {
        let err = stderr(out);
        assert!(
            err.contains(&format!("restarting etcd.service: {why}")),
            "{err}"
        );
        assert!(err.contains("is back: a new etcd process (pid "), "{err}");
    }
    let done = restarts(c, &from);
    for (k, r) in done.iter().enumerate() {
        let url = format!("https://{}:2379", c.nodes[r.node].addr);
        let healthy = seen.healthy_from(&url, r.started).unwrap_or(f64::NAN);
        let handed = k.checked_sub(1).map(|p| {
            let prev = &done[p];
            let url = format!("https://{}:2379", c.nodes[prev.node].addr);
            let h = seen.healthy_from(&url, prev.started).unwrap_or(f64::NAN);
            format!(
                ", {:.1} s after the previous one was seen healthy",
                r.began - h
            )
        });
        eprintln!(
            "restart of {}: job began {:.3}, etcd signalled +{:.1} s, new etcd started +{:.1} s, \
             seen healthy +{:.1} s{}",
            c.nodes[r.node].name,
            r.began,
            r.signalled - r.began,
            r.started - r.began,
            healthy - r.began,
            handed.unwrap_or_default()
        );
    }
    assert_eq!(done.len(), 3, "one restart per member: {done:?}");
    assert_one_after_another(c, &done, &seen);
    assert!(
        seen.rounds.len() > 20,
        "the watcher ran {} rounds",
        seen.rounds.len()
    );
    seen.assert_never_more_than_one_down(ONE_ELECTION);
    // The watcher did see the restarts (a restart of etcd takes far longer than a round).
    assert!(seen.rounds_with_one_down > 0, "{}", seen.summary());
    c.assert_writes_kept(0, &written);
    assert!(written.acked.len() > 50, "{}", written.summary());
    assert!(
        written.longest_gap() <= ONE_ELECTION.as_secs_f64(),
        "a client waited {:.1} s for a put: {}",
        written.longest_gap(),
        written.summary()
    );
    for n in &c.nodes {
        n.set_stop_delay(Duration::ZERO);
    }
    (seen, written)
}

/// A second apply of `seed` on every node changes nothing and restarts nothing.
fn assert_settled(c: &Cluster, seed: &Path) {
    for (i, n) in c.nodes.iter().enumerate() {
        let before = n.systemctl_calls().len();
        let out = run(&mut c.tool(i, seed, "apply", &[]));
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).contains("nothing changed"), "{}", stderr(&out));
        assert_eq!(n.changing_systemctl_calls(before), Vec::<String>::new());
    }
}

#[test]
fn three_members_upgraded_at_once_restart_one_at_a_time_and_keep_their_keys() {
    let mut c = running(3, &file_release("3.4.23"), 20);
    let written = keys(&c, 0);
    assert_eq!(written.len(), 20);
    let new = seed_on(&c, "seed-3.5.1.yaml", &file_release("3.5.1"));

    // What apply would do, and the path it judges, before anything is downloaded.
    let out = run(&mut c.tool(0, &new, "check", &[]));
    assert!(
        stdout(&out).contains("ok       upgrade  3.4.23 → 3.5.1: one minor, all members on 3.4"),
        "{}",
        stdout(&out)
    );
    let out = run(&mut c.tool(0, &new, "apply", &["--dry-run"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "restart   unit   etcd.service (binary changed: 3.4.23 → 3.5.1), waits for its turn"
        ),
        "{}",
        stdout(&out)
    );

    roll(&mut c, &new, "binary changed: 3.4.23 → 3.5.1");

    for i in 0..3 {
        wait_until(
            Duration::from_secs(60),
            "the cluster version to become 3.5",
            || {
                c.version(i)
                    .is_some_and(|(s, cv)| s == "3.5.1" && cv == "3.5.0")
            },
        );
        assert_eq!(keys(&c, i), written, "keys on {}", c.nodes[i].name);
    }
    assert_settled(&c, &new);

    // status: all is well, then a member is down.
    let out = run(&mut c.tool(0, &new, "status", &[]));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("ok       etcd     3.5.1 installed, as the seed says"),
        "{text}"
    );
    assert!(text.contains("ok       member   etcd-node1 (ID "), "{text}");
    assert!(
        text.contains("ok       cluster  cluster version 3.5.0"),
        "{text}"
    );
    for i in 0..3 {
        let line = format!(
            "ok       members  etcd-node{} at https://10.8.0.{}:2379 is healthy, etcd 3.5.1",
            i + 1,
            i + 1
        );
        assert!(text.contains(&line), "{text}");
    }
    ok(c.nodes[2].cmd("systemctl").args(["stop", "etcd.service"]));
    let out = run(&mut c.tool(0, &new, "status", &["--output", "json"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let members = v["members"].as_array().unwrap();
    let down: Vec<&str> = members
        .iter()
        .filter(|m| m["healthy"] == false)
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(down, vec!["etcd-node3"], "{v}");
    assert_eq!(v["installed_version"], "3.5.1");
    assert_eq!(v["member"]["name"], "etcd-node1");
    assert!(
        stderr(&out).contains("not all is well on etcd-node1"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn certificates_rotated_on_all_members_at_once_roll_and_status_warns_of_their_end() {
    let mut c = running(3, &file_release("3.5.1"), 5);
    let served_before = served_cert(&c, 1);
    // Every leaf reissued by the same CA, valid for 10 days only.
    let seed = c.seed.clone();
    c.reissue(&seed, &["--renew-before", "3650days", "--days", "10"]);

    roll(&mut c, &seed, "certificates changed");
    // Each member serves its new certificate.
    for i in 0..3 {
        let want =
            fs::read_to_string(c.pki.node_dir(&member(i).0).join("cert-etcd-server.pem")).unwrap();
        assert_eq!(served_cert(&c, i), pem_body(&want), "{}", c.nodes[i].name);
    }
    assert_ne!(served_cert(&c, 1), served_before);
    assert_settled(&c, &seed);

    let out = run(&mut c.tool(1, &seed, "status", &[]));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let warnings: Vec<String> = stdout(&out)
        .lines()
        .filter(|l| l.starts_with("warning"))
        .map(str::to_string)
        .collect();
    // The server, peer and client certificates; the CA is not near its end.
    assert_eq!(warnings.len(), 3, "{}", stdout(&out));
    for w in &warnings {
        assert!(w.contains("days: renew it"), "{w}");
        assert!(
            w.contains(", in 9 days") || w.contains(", in 10 days"),
            "{w}"
        );
    }
    // `check` says the same of the same certificates (one threshold, one sentence), and only
    // warns: the node works meanwhile.
    let out = run(&mut c.tool(1, &seed, "check", &[]));
    assert!(out.status.success(), "{}", stdout(&out));
    for name in ["cert-etcd-server.pem", "cert-etcd-peer.pem"] {
        assert!(
            stdout(&out).lines().any(|l| l.starts_with("warning  certs")
                && l.contains(name)
                && l.contains("days: renew it (etcd-bootstrap pki, then apply)")),
            "{name}: {}",
            stdout(&out)
        );
    }

    // Renewed as the warning says (`pki` with its defaults reissues what ends within 30 days,
    // keeping the CA), applied everywhere at once: rolling again, and then all is well.
    let ca_before = fs::read(c.pki.ca()).unwrap();
    c.reissue(&seed, &[]);
    assert_eq!(
        fs::read(c.pki.ca()).unwrap(),
        ca_before,
        "the CA was reissued"
    );
    roll(&mut c, &seed, "certificates changed");
    let out = run(&mut c.tool(1, &seed, "status", &[]));
    assert!(out.status.success(), "{}", stdout(&out));
}

/// The certificate node i serves on its client port, as PEM body text.
fn served_cert(c: &Cluster, i: usize) -> String {
    let addr = format!("{}:2379", c.nodes[i].addr);
    let (cert, key) = c.pki.client();
    let out = ok(c.nodes[i]
        .cmd("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {addr} -CAfile {} -cert {} -key {} </dev/null 2>/dev/null | openssl x509",
            c.pki.ca().display(),
            cert.display(),
            key.display()
        )));
    pem_body(&out)
}

fn pem_body(pem: &str) -> String {
    pem.lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .take_while(|l| !l.starts_with("-----END"))
        .collect()
}

#[test]
fn a_downgrade_or_a_skipped_minor_is_refused_before_anything_changes() {
    let mut node = Node::bare("etcd-node1", "10.8.0.1", Mounts::Live, None);
    node.add_wg0();
    let s = Single::with_node(node, &file_release("3.4.23"));
    s.pki
        .install("etcd-node1", &s.node.private("/srv").join("pki"));
    let apply = |seed: &Path| run(&mut s.node.tool(&["apply", "--seed", seed.to_str().unwrap()]));
    let out = apply(&s.seed);
    assert!(out.status.success(), "{}", stderr(&out));
    s.wait_healthy_live();

    // 3.4 → 3.6: refused before any download (no 3.6 release exists here).
    let skip = SeedText::new(
        "etcd_version: \"3.6.14\"\n\
         etcd_download_url: \"file:///nonexistent/etcd-v3.6.14-linux-amd64.tar.gz\"\n\
         etcd_download_url_checksum: \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"\n",
    )
    .member("etcd-node1", "10.8.0.1")
    .write(&s.dir.path().join("seed-3.6.yaml"));
    let before = s.node.live_tree();
    let out = apply(&skip);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("3.4.23 → 3.6.14 is refused: it skips 3.5"),
        "{err}"
    );
    assert!(
        err.contains("https://etcd.io/docs/latest/upgrades/"),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(
        changed_paths(&before, &s.node.live_tree()),
        Vec::<String>::new()
    );
    let out = run(&mut s.node.tool(&["check", "--seed", skip.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("error    upgrade  3.4.23 → 3.6.14 is refused: it skips 3.5"),
        "{}",
        stdout(&out)
    );

    // One member: the upgrade restarts it without a lock.
    let up = SeedText::new(&file_release("3.5.1"))
        .member("etcd-node1", "10.8.0.1")
        .write(&s.dir.path().join("seed-3.5.yaml"));
    let out = apply(&up);
    s.assert_applied(&out);
    assert!(
        stderr(&out).contains("restarting etcd.service: binary changed: 3.4.23 → 3.5.1"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("waits for its turn"),
        "{}",
        stderr(&out)
    );
    let url = "https://10.8.0.1:2379/version";
    wait_until(
        Duration::from_secs(60),
        "the cluster version to become 3.5",
        || {
            s.node
                .curl(&s.pki, url)
                .is_some_and(|b| b.contains("\"etcdcluster\":\"3.5.0\""))
        },
    );

    // 3.5 → 3.4 on a 3.5 cluster: refused, nothing changed.
    let before = s.node.live_tree();
    let out = apply(&s.seed);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("3.5.1 → 3.4.23 is refused: a downgrade below the cluster version 3.5"),
        "{err}"
    );
    assert_eq!(
        changed_paths(&before, &s.node.live_tree()),
        Vec::<String>::new()
    );
    assert!(s
        .node
        .curl(&s.pki, url)
        .is_some_and(|b| b.contains("\"etcdserver\":\"3.5.1\"")));
}

#[test]
fn a_restart_waits_for_its_turn_and_a_member_that_does_not_come_back_frees_it() {
    let mut c = running(3, &file_release("3.5.1"), 1);
    // A heartbeat etcd refuses at start (the election timeout must be 5 heartbeats or more).
    let bad = SeedText::new(&file_release("3.5.1"))
        .nodes(&[0, 1, 2])
        .settings("heartbeat-interval: 500")
        .extra("etcd_restart_timeout: 10s\n")
        .write(&c.dir.path().join("bad.yaml"));

    // Another member is down: no turn, and nothing changes.
    ok(c.nodes[2].cmd("systemctl").args(["stop", "etcd.service"]));
    let before = c.nodes[0].live_tree();
    let out = run(&mut c.tool(0, &bad, "apply", &[]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("etcd.service was not restarted (unit changed): no turn within etcd_restart_timeout (10s): \
             waiting for etcd-node3 (https://10.8.0.3:2379: "),
        "{err}"
    );
    assert!(err.contains("; nothing was changed"), "{err}");
    assert_eq!(
        changed_paths(&before, &c.nodes[0].live_tree()),
        Vec::<String>::new()
    );
    ok(c.nodes[2].cmd("systemctl").args(["start", "etcd.service"]));
    c.wait_all_healthy();

    // The bad seed on every node at once, stops slow: one member takes the turn and does not come
    // back; it frees the turn after etcd_restart_timeout, and no other member restarts meanwhile
    // (nor after: that member is down).
    for n in &c.nodes {
        n.set_stop_delay(SLOW_STOP);
    }
    let from: Vec<usize> = c.nodes.iter().map(|n| n.systemctl_events().len()).collect();
    let trees: Vec<Vec<String>> = c.nodes.iter().map(Node::live_tree).collect();
    let watcher = c.watch(1, WATCH);
    let outs = c.apply_all_at_once(&bad, &[]);
    let seen = watcher.stop();
    eprintln!("the watcher saw: {}", seen.summary());
    assert!(seen.most_down <= 1, "{}", seen.worst);
    let done = restarts(&c, &from);
    assert_eq!(done.len(), 1, "exactly one member restarted: {done:?}");
    let failed = done[0].node;
    for (i, out) in outs.iter().enumerate() {
        assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
        let err = stderr(out);
        if i == failed {
            assert!(
                err.contains("etcd.service did not come back healthy and caught up within etcd_restart_timeout (10s)"),
                "{err}"
            );
        } else {
            assert!(
                err.contains("no turn within etcd_restart_timeout (10s)")
                    && err.contains("; nothing was changed"),
                "{err}"
            );
            assert_eq!(
                changed_paths(&trees[i], &c.nodes[i].live_tree()),
                Vec::<String>::new(),
                "{}",
                c.nodes[i].name
            );
        }
    }
    let healthy = (failed + 1) % 3;
    let out = c.etcdctl(
        healthy,
        "get etcd-bootstrap/restart-lock --print-value-only",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "", "the restart lock is still held");

    let out = run(&mut c.tool(failed, &bad, "status", &[]));
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(
            "warning  pending  a restart of etcd.service is pending (unit changed): run apply"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "error    member   {} does not answer",
            c.nodes[failed].name
        )),
        "{text}"
    );

    // The seed put right: etcd is down, so the next apply starts it (no restart left pending).
    for n in &c.nodes {
        n.set_stop_delay(Duration::ZERO);
    }
    let out = run(&mut c.tool(failed, &c.seed, "apply", &[]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("starting etcd.service"),
        "{}",
        stderr(&out)
    );
    c.wait_all_healthy();
    let out = run(&mut c.tool(failed, &c.seed, "status", &[]));
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(!stdout(&out).contains("pending"), "{}", stdout(&out));

    // A voter the cluster lists but that never started (added by hand, its node never booted)
    // blocks the turn: the others are judged from the member list, not from the seed.
    // etcd adds a voter only once every member has been connected for a while (a member just
    // started is "unhealthy cluster" to it): asked until it accepts.
    let mut out = c.etcdctl(0, "member list");
    wait_until(
        Duration::from_secs(60),
        "etcd to accept a member add",
        || {
            out = c.etcdctl(0, "member add etcd-node4 --peer-urls=https://10.8.0.4:2380");
            out.status.success()
        },
    );
    let id = stdout(&out)
        .split_whitespace()
        .find_map(|w| u64::from_str_radix(w, 16).ok().filter(|_| w.len() >= 8))
        .expect("member add names the new ID");
    let changed = SeedText::new(&file_release("3.5.1"))
        .nodes(&[0, 1, 2])
        .settings("heartbeat-interval: 150")
        .extra("etcd_restart_timeout: 5s\n")
        .write(&c.dir.path().join("changed.yaml"));
    let out = run(&mut c.tool(0, &changed, "apply", &[]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "no turn within etcd_restart_timeout (5s): (not started) {id:x} at https://10.8.0.4:2380 \
             is listed but has not started; nothing was changed"
        )),
        "{err}"
    );
    let out = c.etcdctl(0, &format!("member remove {id:x}"));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&mut c.tool(0, &changed, "apply", &[]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("restarting etcd.service: unit changed"),
        "{}",
        stderr(&out)
    );
}

/// What the watcher and the writer logs come to, from lines written by hand: a stretch runs from
/// the first unavailable round to the next available one; gaps count the start and the end.
#[test]
fn the_watcher_and_the_writer_count_what_their_logs_say() {
    let log = "100.0 0 3 3 ok\n\
               100.1 1 2 3 ok down https://a:2379: refused, again: refused\n\
               100.2 1 1 3 unavailable down https://a:2379: x, again: x; unhealthy https://b:2379: no leader\n\
               100.9 0 2 3 ok blip https://b:2379: leader changed; unhealthy https://c:2379: y\n\
               101.0 2 1 3 unavailable down https://a:2379: x; down https://c:2379: y\n\
               101.1 0 3 3 ok\n";
    let w = Watched::parse(log);
    assert_eq!(w.rounds.len(), 6);
    assert_eq!(w.most_down, 2);
    assert!(w.worst.starts_with("101.0 2"));
    assert_eq!((w.unavailable_rounds, w.unavailable_stretches), (2, 2));
    assert!((w.longest_unavailable - 0.7).abs() < 1e-9, "{w:?}");
    assert_eq!(w.blips, 1);
    assert_eq!(w.healthy_from("https://b:2379", 100.15), Some(100.9));
    assert_eq!(w.healthy_from("https://a:2379", 100.05), Some(100.9));
    let r = std::panic::catch_unwind(|| w.assert_never_more_than_one_down(ONE_ELECTION));
    assert!(r.is_err(), "two members down must fail the assertion");

    let written = Written::parse(
        "start 10.0\nack 0 10.1 u\nfail 1 10.2 u: x\nack 1 12.0 v\nack 2 12.1 u\n",
        12.5,
    );
    assert_eq!(written.acked.len(), 3);
    assert_eq!(written.failed_attempts, 1);
    assert!((written.longest_gap() - 1.9).abs() < 1e-9);
}

/// Each member's restart as the tool measured it (asked → a new process healthy and caught up),
/// from its "is back" line, in seconds.
fn restart_seconds(err: &str) -> Option<f64> {
    err.lines()
        .find(|l| l.contains("is back: a new etcd process"))?
        .split(", ")
        .last()?
        .strip_suffix(" s after the restart was asked")?
        .parse()
        .ok()
}

/// `make bench`: a rolling upgrade of 3 members (every node applying at once), with and without
/// each stop taking 3 s longer, against the naive way (the new files installed with
/// `--no-start`, then every member restarted at the same moment, as a play without `serial: 1`
/// does), each on a fresh cluster by the same harness, watched and written to.
/// Prints `timing` lines; asserts nothing about time.
#[test]
#[ignore = "a benchmark: make bench runs it"]
fn bench_rolling_upgrade_against_all_at_once() {
    for (naive, slow) in [
        (false, Duration::ZERO),
        (false, SLOW_STOP),
        (true, Duration::ZERO),
    ] {
        let mut c = running(3, &file_release("3.4.23"), 20);
        let new = seed_on(&c, "seed-3.5.1.yaml", &file_release("3.5.1"));
        for n in &c.nodes {
            n.set_stop_delay(slow);
        }
        let from: Vec<usize> = c.nodes.iter().map(|n| n.systemctl_events().len()).collect();
        let watcher = c.watch(0, WATCH);
        let writer = c.write_load(0, PUTS_PER_SECOND);
        let start = std::time::Instant::now();
        let mut outs = Vec::new();
        if naive {
            assert_all_succeeded(&c, &c.apply_all_at_once(&new, &["--no-start"]));
            let restarts: Vec<_> = c
                .nodes
                .iter()
                .map(|n| {
                    n.cmd("systemctl")
                        .args(["restart", "etcd.service"])
                        .spawn()
                        .unwrap()
                })
                .collect();
            for mut r in restarts {
                assert!(r.wait().unwrap().success());
            }
        } else {
            outs = c.apply_all_at_once(&new, &[]);
            assert_all_succeeded(&c, &outs);
        }
        c.wait_all_healthy();
        let settled = now();
        for i in 0..3 {
            wait_until(Duration::from_secs(60), "3.5.1 everywhere", || {
                c.version(i).is_some_and(|(s, _)| s == "3.5.1")
            });
        }
        let took = start.elapsed().as_secs_f64();
        let written = writer.stop();
        let seen = watcher.stop();
        let how = match (naive, slow.is_zero()) {
            (true, _) => "naive: install on all, restart all at once".to_string(),
            (false, true) => "rolling: apply on all at once".to_string(),
            (false, false) => format!(
                "rolling: apply on all at once, each stop {} s slower",
                slow.as_secs()
            ),
        };
        let each: Vec<f64> = outs
            .iter()
            .filter_map(|o| restart_seconds(&stderr(o)))
            .collect();
        let sum: f64 = each.iter().sum();
        let done = restarts(&c, &from);
        // The restarts alone: from the first restart job to every member healthy again.
        let window = done.first().map(|f| settled - f.began).unwrap_or(0.0);
        let shares = if each.len() == 3 {
            format!(
                "; restarts (asked → new process healthy) {}: sum {sum:.1} s; total / sum {:.2}x",
                each.iter()
                    .map(|s| format!("{s:.1} s"))
                    .collect::<Vec<_>>()
                    .join(", "),
                took / sum
            )
        } else {
            String::new()
        };
        eprintln!(
            "timing upgrade 3.4.23 → 3.5.1 of 3 members, {how}: {took:.1} s to all healthy on \
             3.5.1{shares}; first restart to all healthy {window:.1} s; watcher: {}; writer \
             ({PUTS_PER_SECOND} puts/s): {}",
            seen.summary(),
            written.summary()
        );
    }
}
