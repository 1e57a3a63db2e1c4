//! N nodes meshed over WireGuard on one bridge, with one seed and one PKI.

use super::*;
use std::process::{Child, Stdio};

/// A network namespace holding only a bridge (br0): the switch the nodes' veths plug into.
pub struct Bridge {
    pub ns: String,
}

impl Bridge {
    pub fn new() -> Bridge {
        let ns = unique("br");
        ok(Command::new("ip").args(["netns", "add", &ns]));
        let b = Bridge { ns };
        ok(Command::new("ip").args(["-n", &b.ns, "link", "add", "br0", "type", "bridge"]));
        ok(Command::new("ip").args(["-n", &b.ns, "link", "set", "br0", "up"]));
        b
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// N nodes meshed over WireGuard (wg0 10.8.0.I, underlay 172.31.0.I), one shared seed, a PKI made
/// from it, and a scratch root per node; or, `live`, nodes whose own /etc, /var/lib, ... the tool
/// installs into without `--root` and whose etcd the supervising systemctl runs. Nodes are dropped
/// before the bridge (field order).
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// The seed lines naming the release, for seeds made later with `seed_with`.
    pub release: String,
    /// Plain nodes only: node i's target root.
    pub roots: Vec<tempfile::TempDir>,
    pub pki: Pki,
    pub seed: PathBuf,
    pub dir: tempfile::TempDir,
    live: bool,
    _bridge: Bridge,
}

impl Cluster {
    /// `release`: seed lines naming the release (version, URL, checksum).
    pub fn new(n: usize, release: &str) -> Cluster {
        Cluster::with_mounts(n, release, Mounts::Plain)
    }

    /// Live nodes: `apply` without `--root`, etcd run by the supervising systemctl.
    pub fn live(n: usize, release: &str) -> Cluster {
        Cluster::with_mounts(n, release, Mounts::Live)
    }

    fn with_mounts(n: usize, release: &str, mounts: Mounts) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let all: Vec<usize> = (0..n).collect();
        let seed = SeedText::new(release)
            .nodes(&all)
            .write(&dir.path().join("seed.yaml"));
        let pki = Pki::for_seed(&dir.path().join("pki"), &seed, &[]);
        let bridge = Bridge::new();
        let nodes: Vec<Node> = all
            .iter()
            .map(|&i| {
                let (name, addr) = member(i);
                let underlay = format!("172.31.0.{}", i + 1);
                Node::on_bridge(&name, &addr, mounts, &bridge.ns, &underlay)
            })
            .collect();
        for (i, a) in nodes.iter().enumerate() {
            for (j, b) in nodes.iter().enumerate() {
                if i != j {
                    let endpoint = format!("172.31.0.{}:51820", j + 1);
                    a.add_peer(&b.wg_public_key, &endpoint, &format!("{}/32", b.addr));
                }
            }
        }
        let live = mounts == Mounts::Live;
        let roots = if live {
            vec![]
        } else {
            all.iter().map(|_| new_root()).collect()
        };
        let c = Cluster {
            nodes,
            release: release.to_string(),
            roots,
            pki,
            seed,
            dir,
            live,
            _bridge: bridge,
        };
        c.install_pki();
        c
    }

    /// The namespace of the bridge the nodes' underlays plug into (where a test puts a server
    /// every node reaches).
    pub fn bridge_ns(&self) -> &str {
        &self._bridge.ns
    }

    /// Node i's `etcd_ca_conf_directory` (/srv/pki), seen from the host.
    fn pki_dest(&self, i: usize) -> PathBuf {
        if self.live {
            self.nodes[i].private("/srv").join("pki")
        } else {
            self.roots[i].path().join("srv/pki")
        }
    }

    fn install_pki(&self) {
        for i in 0..self.nodes.len() {
            self.pki.install(&member(i).0, &self.pki_dest(i));
        }
    }

    /// The PKI brought up to date for `seed` (`pki` reissues what it no longer covers) and
    /// installed into every node's root again.
    pub fn pki_for(&mut self, seed: &Path) {
        self.reissue(seed, &[]);
    }

    /// `etcd-bootstrap pki --seed SEED <extra>` on the cluster's PKI dir, installed into every node.
    pub fn reissue(&mut self, seed: &Path, extra: &[&str]) {
        self.pki = Pki::for_seed(&self.pki.dir, seed, extra);
        self.install_pki();
    }

    /// Seed `name` naming only the nodes `members` (indexes), with `settings` lines under
    /// etcd_settings_user and `extra` seed lines.
    pub fn seed_with(&self, name: &str, members: &[usize], settings: &str, extra: &str) -> PathBuf {
        SeedText::new(&self.release)
            .nodes(members)
            .settings(settings)
            .extra(extra)
            .write(&self.dir.path().join(name))
    }

    /// `etcd-bootstrap <cmd> --seed SEED --root <node i's root> <extra>` inside node i.
    pub fn tool(&self, i: usize, seed: &Path, cmd: &str, extra: &[&str]) -> Command {
        let root = if self.live {
            Path::new("/")
        } else {
            self.roots[i].path()
        };
        let args = with_seed_and_root(cmd, seed, root, extra);
        self.nodes[i].tool(&refs(&args))
    }

    /// `tool` with the shared seed, run to completion.
    pub fn run(&self, i: usize, cmd: &str, extra: &[&str]) -> Output {
        run(&mut self.tool(i, &self.seed, cmd, extra))
    }

    /// `apply` on node i with the shared seed; panics on failure.
    pub fn apply(&self, i: usize) {
        let out = self.run(i, "apply", &[]);
        assert!(
            out.status.success(),
            "apply on {} failed: {}",
            self.nodes[i].name,
            stderr(&out)
        );
    }

    pub fn log(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.log", member(i).0))
    }

    pub fn start(&mut self, i: usize) {
        let root = self.roots[i].path().to_path_buf();
        let log = self.log(i);
        self.nodes[i].start_etcd(&root, "etcd.service", &log);
    }

    /// etcdctl from node i's root, configured only by its etcdctl.env (paths mapped into the root).
    pub fn etcdctl(&self, i: usize, args: &str) -> Output {
        // A live node's paths are its own.
        let r = if self.live {
            String::new()
        } else {
            self.roots[i].path().display().to_string()
        };
        let script = format!(
            "set -a; . {r}/etc/etcd/etcdctl.env; set +a; \
             export ETCDCTL_CACERT={r}$ETCDCTL_CACERT ETCDCTL_CERT={r}$ETCDCTL_CERT ETCDCTL_KEY={r}$ETCDCTL_KEY; \
             exec {r}/usr/local/bin/etcdctl --command-timeout=5s {args}"
        );
        run(self.nodes[i].cmd("sh").arg("-c").arg(script))
    }
}

impl Cluster {
    /// `apply --seed SEED <extra>` on every node at the same moment; the outputs in node order.
    pub fn apply_all_at_once(&self, seed: &Path, extra: &[&str]) -> Vec<Output> {
        let children: Vec<Child> = (0..self.nodes.len())
            .map(|i| {
                self.tool(i, seed, "apply", extra)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("starting apply")
            })
            .collect();
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect()
    }

    /// Waits until every member answers healthy (asked from inside node 0).
    pub fn wait_all_healthy(&self) {
        for n in &self.nodes {
            let url = format!("https://{}:2379/health", n.addr);
            wait_until(
                Duration::from_secs(90),
                &format!("{} to be healthy", n.name),
                || {
                    self.nodes[0]
                        .curl(&self.pki, &url)
                        .is_some_and(|b| b.contains("\"health\":\"true\""))
                },
            );
        }
    }

    /// Node i's `/version`: (server, cluster).
    pub fn version(&self, i: usize) -> Option<(String, String)> {
        let url = format!("https://{}:2379/version", self.nodes[i].addr);
        let body = self.nodes[i].curl(&self.pki, &url)?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let get = |k: &str| v.get(k)?.as_str().map(str::to_string);
        Some((get("etcdserver")?, get("etcdcluster")?))
    }
}
