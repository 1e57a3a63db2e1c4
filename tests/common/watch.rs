//! Watching a cluster while something happens to it: the health watcher
//! (`tests/support/health_watch.py`) and a client writing through every member
//! (`tests/support/writer.py`), and what each saw.

use super::*;
use std::process::Child;

/// One round of the health watcher: when it started, and each member not healthy then.
#[derive(Debug, Clone)]
pub struct Round {
    pub t: f64,
    pub down: usize,
    pub healthy: usize,
    pub members: usize,
    pub available: bool,
    /// (`down` | `unhealthy` | `blip`, endpoint) of each member not healthy at the first ask.
    pub not_healthy: Vec<(String, String)>,
    pub line: String,
}

impl Round {
    fn parse(line: &str) -> Option<Round> {
        let mut f = line.splitn(6, ' ');
        let t = f.next()?.parse().ok()?;
        let down = f.next()?.parse().ok()?;
        let healthy = f.next()?.parse().ok()?;
        let members = f.next()?.parse().ok()?;
        let available = match f.next()? {
            "ok" => true,
            "unavailable" => false,
            _ => return None,
        };
        let not_healthy = f
            .next()
            .unwrap_or("")
            .split("; ")
            .filter_map(|p| {
                let (what, rest) = p.split_once(' ')?;
                let url = rest.split(": ").next()?;
                url.starts_with("https://")
                    .then(|| (what.to_string(), url.to_string()))
            })
            .collect();
        Some(Round {
            t,
            down,
            healthy,
            members,
            available,
            not_healthy,
            line: line.to_string(),
        })
    }

    /// Whether `endpoint` answered healthy in this round (a blip counts: the second ask was).
    pub fn healthy(&self, endpoint: &str) -> bool {
        !self
            .not_healthy
            .iter()
            .any(|(what, url)| url == endpoint && what != "blip")
    }
}

/// What a health watcher saw. A member is down when it does not answer at all; a round is
/// unavailable when fewer than a quorum of members answer healthy (the watcher's docstring says
/// exactly how). Stretches are runs of unavailable rounds, from the first one's start to the
/// start of the next available round.
#[derive(Debug)]
pub struct Watched {
    pub rounds: Vec<Round>,
    pub most_down: usize,
    pub worst: String,
    pub rounds_with_one_down: usize,
    pub unavailable_rounds: usize,
    pub unavailable_stretches: usize,
    /// Seconds.
    pub longest_unavailable: f64,
    pub longest_unavailable_from: String,
    pub blips: usize,
}

impl Watched {
    pub fn parse(text: &str) -> Watched {
        let rounds: Vec<Round> = text.lines().filter_map(Round::parse).collect();
        let mut w = Watched {
            most_down: 0,
            worst: String::new(),
            rounds_with_one_down: 0,
            unavailable_rounds: 0,
            unavailable_stretches: 0,
            longest_unavailable: 0.0,
            longest_unavailable_from: String::new(),
            blips: 0,
            rounds: Vec::new(),
        };
        let mut stretch: Option<&Round> = None;
        for r in &rounds {
            w.blips += r.not_healthy.iter().filter(|(w, _)| w == "blip").count();
            w.rounds_with_one_down += usize::from(r.down == 1);
            if r.down > w.most_down {
                w.most_down = r.down;
                w.worst = r.line.clone();
            }
            if !r.available {
                w.unavailable_rounds += 1;
                if stretch.is_none() {
                    w.unavailable_stretches += 1;
                    stretch = Some(r);
                }
            }
            if let Some(from) = stretch {
                if r.available || std::ptr::eq(r, rounds.last().unwrap()) {
                    let took = r.t - from.t;
                    if took > w.longest_unavailable {
                        w.longest_unavailable = took;
                        w.longest_unavailable_from = from.line.clone();
                    }
                    if r.available {
                        stretch = None;
                    }
                }
            }
        }
        w.rounds = rounds;
        w
    }

    /// The first round at or after `t` in which `endpoint` answered healthy: its start.
    pub fn healthy_from(&self, endpoint: &str, t: f64) -> Option<f64> {
        self.rounds
            .iter()
            .find(|r| r.t >= t && r.healthy(endpoint))
            .map(|r| r.t)
    }

    /// One line for a test's output and the bench.
    pub fn summary(&self) -> String {
        format!(
            "rounds={} most-down={} rounds-one-down={} unavailable-rounds={} \
             unavailable-stretches={} longest-unavailable-ms={:.0} blips={}",
            self.rounds.len(),
            self.most_down,
            self.rounds_with_one_down,
            self.unavailable_rounds,
            self.unavailable_stretches,
            self.longest_unavailable * 1000.0,
            self.blips
        )
    }

    /// Never two members down in a round, and no unavailable stretch longer than `limit`.
    pub fn assert_never_more_than_one_down(&self, limit: Duration) {
        assert!(
            self.most_down <= 1,
            "{} members were down at once: {}",
            self.most_down,
            self.worst
        );
        assert!(
            self.longest_unavailable <= limit.as_secs_f64(),
            "the cluster was unavailable for {:.1} s (over {limit:?}) from: {}",
            self.longest_unavailable,
            self.longest_unavailable_from
        );
    }
}

/// A running health watcher; `stop` returns what it saw.
pub struct Watcher {
    child: Child,
    out: PathBuf,
}

impl Watcher {
    pub fn stop(mut self) -> Watched {
        let _ = self.child.kill();
        let _ = self.child.wait();
        Watched::parse(&fs::read_to_string(&self.out).unwrap_or_default())
    }
}

/// What the writing client saw: when it started and stopped, each acknowledged put (sequence
/// number, time), and how many attempts failed.
#[derive(Debug)]
pub struct Written {
    pub start: f64,
    pub end: f64,
    pub acked: Vec<(u64, f64)>,
    pub failed_attempts: usize,
}

impl Written {
    pub fn parse(text: &str, end: f64) -> Written {
        let mut w = Written {
            start: 0.0,
            end,
            acked: Vec::new(),
            failed_attempts: 0,
        };
        for l in text.lines() {
            let f: Vec<&str> = l.split(' ').collect();
            match f.as_slice() {
                ["start", t] => w.start = t.parse().unwrap_or(0.0),
                ["ack", seq, t, ..] => {
                    if let (Ok(s), Ok(t)) = (seq.parse(), t.parse()) {
                        w.acked.push((s, t));
                    }
                }
                ["fail", ..] => w.failed_attempts += 1,
                _ => {}
            }
        }
        w
    }

    /// The longest a client waited for an acknowledgement: between two, or from the start to
    /// the first, or from the last to the end (seconds).
    pub fn longest_gap(&self) -> f64 {
        let mut times: Vec<f64> = vec![self.start];
        times.extend(self.acked.iter().map(|(_, t)| *t));
        times.push(self.end);
        times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
    }

    pub fn summary(&self) -> String {
        format!(
            "acknowledged={} failed-attempts={} longest-gap-ms={:.0}",
            self.acked.len(),
            self.failed_attempts,
            self.longest_gap() * 1000.0
        )
    }
}

/// A running writing client; `stop` returns what it saw.
pub struct Writer {
    child: Child,
    out: PathBuf,
}

impl Writer {
    /// Waits (up to `within`) until at least `n` puts were acknowledged: "no acknowledged put
    /// lost" proves something only with enough of them.
    pub fn wait_for_acked(&self, n: usize, within: Duration) {
        wait_until(within, &format!("{n} acknowledged puts"), || {
            Written::parse(&fs::read_to_string(&self.out).unwrap_or_default(), now())
                .acked
                .len()
                >= n
        });
    }

    pub fn stop(mut self) -> Written {
        let end = now();
        let _ = self.child.kill();
        let _ = self.child.wait();
        Written::parse(&fs::read_to_string(&self.out).unwrap_or_default(), end)
    }
}

/// Seconds since the epoch, as the watcher and writer write them.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

impl Cluster {
    /// `script` (in tests/support) started in node `on` with OUT, `arg`, the client's TLS files and
    /// every member's client URL; returns it once it printed `announce`.
    fn start_client(
        &mut self,
        on: usize,
        script: &str,
        arg: &str,
        announce: &str,
    ) -> (Child, PathBuf) {
        let out = self.dir.path().join(format!(
            "{}-{}.log",
            script.trim_end_matches(".py"),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let (cert, key) = self.pki.client();
        let mut cmd = self.nodes[on].cmd("python3");
        cmd.arg(support(script))
            .arg(&out)
            .arg(arg)
            .arg(self.pki.ca())
            .arg(cert)
            .arg(key)
            .args(
                self.nodes
                    .iter()
                    .map(|n| format!("https://{}:2379", n.addr)),
            );
        let (child, line) = self.nodes[on].spawn_announcing(cmd);
        assert_eq!(line, announce, "{script} did not start");
        (child, out)
    }

    /// A health watcher in node `on` asking every member's /health every `interval`.
    pub fn watch(&mut self, on: usize, interval: Duration) -> Watcher {
        let (child, out) = self.start_client(
            on,
            "health_watch.py",
            &format!("{}", interval.as_secs_f64()),
            "watching",
        );
        Watcher { child, out }
    }

    /// A client in node `on` putting `rate` keys a second through every member in turn.
    pub fn write_load(&mut self, on: usize, rate: u32) -> Writer {
        let (child, out) = self.start_client(on, "writer.py", &rate.to_string(), "writing");
        Writer { child, out }
    }

    /// Every acknowledged put of `w` is in the cluster (read through node `i`'s etcdctl).
    pub fn assert_writes_kept(&self, i: usize, w: &Written) {
        // "No acknowledged write lost" proves nothing with nothing acknowledged.
        assert!(
            w.acked.len() >= 20,
            "only {} puts were acknowledged: too few to say none was lost ({})",
            w.acked.len(),
            w.summary()
        );
        let out = self.etcdctl(i, "get --prefix writer/ --keys-only");
        assert!(out.status.success(), "get: {}", stderr(&out));
        let stored: std::collections::HashSet<u64> = stdout(&out)
            .lines()
            .filter_map(|l| l.strip_prefix("writer/")?.parse().ok())
            .collect();
        let lost: Vec<u64> = w
            .acked
            .iter()
            .map(|(s, _)| *s)
            .filter(|s| !stored.contains(s))
            .collect();
        assert!(
            lost.is_empty(),
            "{} acknowledged puts are not in the cluster: {:?}",
            lost.len(),
            &lost[..lost.len().min(20)]
        );
    }
}
