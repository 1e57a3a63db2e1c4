//! A live node: its own /etc, /var/lib, /opt, /usr/local/bin, /srv and /run, and the
//! systemd-like `systemctl` double (`tests/support/supervising-systemctl`) first on its PATH.

use super::*;

/// One step of a job of the `systemctl` double: `restart-begin`, `stop-signalled`, `stopped`,
/// `started`, `restart-end`, ... (see `tests/support/supervising-systemctl`).
#[derive(Debug, Clone)]
pub struct JobEvent {
    pub t: f64,
    pub unit: String,
    pub what: String,
    pub pid: String,
}

impl Node {
    /// A live node's private dir that stands for `path` on the host (`/etc`, `/var/lib`, ...).
    pub fn private(&self, path: &str) -> PathBuf {
        self.scratch
            .path()
            .join("live")
            .join(path.trim_start_matches('/').replace('/', "_"))
    }

    /// The calls that change something (the queries left out), from call `from` on.
    pub fn changing_systemctl_calls(&self, from: usize) -> Vec<String> {
        self.systemctl_calls()
            .into_iter()
            .skip(from)
            .filter(|c| {
                !["is-enabled", "is-active", "show"]
                    .iter()
                    .any(|q| c.starts_with(q))
            })
            .collect()
    }

    /// What a unit the supervising `systemctl` of a live node runs wrote (etcd's log).
    pub fn unit_log(&self, unit: &str) -> String {
        fs::read_to_string(self.scratch.path().join(format!("live/{unit}.log"))).unwrap_or_default()
    }

    pub(crate) fn fake_bin(&self) -> PathBuf {
        self.scratch.path().join("live/bin")
    }

    /// How long each stop job of the `systemctl` double takes before etcd gets SIGTERM (the old
    /// process keeps answering meanwhile, as under a busy systemd).
    pub fn set_stop_delay(&self, d: Duration) {
        fs::write(
            self.scratch.path().join("live/systemctl.stop-delay"),
            format!("{}", d.as_secs_f64()),
        )
        .unwrap();
    }

    /// What the `systemctl` double's jobs did, in order: (unix time, unit, event, pid or "").
    pub fn systemctl_events(&self) -> Vec<JobEvent> {
        fs::read_to_string(self.scratch.path().join("live/systemctl.events"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                Some(JobEvent {
                    t: f.next()?.parse().ok()?,
                    unit: f.next()?.to_string(),
                    what: f.next()?.to_string(),
                    pid: f.next().unwrap_or("").to_string(),
                })
            })
            .collect()
    }

    /// The live node's install: every private dir the tool writes, but etcd's own data dir (etcd
    /// writes it as it runs).
    pub fn live_tree(&self) -> Vec<String> {
        let mut all = Vec::new();
        for d in ["/etc", "/var/lib", "/opt", "/usr/local/bin", "/srv"] {
            let dir = self.private(d);
            let etcds_own =
                |l: &String| d == "/var/lib" && (l.starts_with("etcd/") || l.starts_with("etcd "));
            all.extend(
                content_manifest(&dir)
                    .into_iter()
                    .filter(|l| !etcds_own(l))
                    .map(|l| format!("{d}/{l}")),
            );
        }
        all
    }

    /// The calls the supervising `systemctl` of a live node got, one line each, in order.
    pub fn systemctl_calls(&self) -> Vec<String> {
        fs::read_to_string(self.scratch.path().join("live/systemctl.calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// The holder script of a live node: private copies of the paths `apply` writes without
/// `--root`, a tmpfs /run with /run/systemd/system, and the supervising systemctl.
pub fn live_mounts(name: &str, scratch: &Path) -> String {
    let live = scratch.join("live");
    for d in ["etc", "var_lib", "opt", "usr_local_bin", "srv", "bin"] {
        fs::create_dir_all(live.join(d)).unwrap();
    }
    ok(Command::new("cp")
        .arg("-a")
        .arg("/etc/.")
        .arg(live.join("etc")));
    fs::copy(support("supervising-systemctl"), live.join("bin/systemctl")).unwrap();
    let l = live.display();
    format!(
        "set -e; mount --bind {l}/etc /etc && mount --bind {l}/var_lib /var/lib && \
         mount --bind {l}/opt /opt && mount --bind {l}/usr_local_bin /usr/local/bin && \
         mkdir -p /srv && mount --bind {l}/srv /srv && \
         mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/systemd/system /run/wireguard && \
         hostname {name} && echo ready && exec sleep 100000"
    )
}

impl Single {
    /// `out` of a live apply succeeded; else the failure with what etcd wrote.
    pub fn assert_applied(&self, out: &Output) {
        assert!(
            out.status.success(),
            "{}\n{}",
            stderr(out),
            self.node.unit_log("etcd.service")
        );
    }

    /// Waits until the member of a live single node answers healthy on its client port.
    pub fn wait_healthy_live(&self) {
        let url = format!("https://{}:2379/health", self.node.addr);
        wait_until(Duration::from_secs(60), "etcd to be healthy", || {
            self.node
                .curl(&self.pki, &url)
                .is_some_and(|b| b.contains("\"health\":\"true\""))
        });
    }
}
