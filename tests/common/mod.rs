//! Test harness: real etcd release fixtures, a real PKI, and nodes made of a network namespace, a
//! private mount namespace (own /var/run/wireguard) and UTS namespace (own hostname), each with a real
//! `wg0` from wireguard-go. Everything a node starts dies with it (Drop), and `tests/support/cleanup.sh`
//! removes what an interrupted run left (every name starts with `ebt-`).
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_etcd-bootstrap"))
}

pub fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {shown}: {e}"));
    out
}

pub fn ok(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{shown} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Release tarballs + SHA256SUMS built from real etcd 3.4.23 (Debian) and 3.5.1 (upstream, PyPI).
/// Built once; concurrent test processes serialise on a lock file.
pub fn fixtures() -> PathBuf {
    let dir = repo().join("target/fixtures");
    fs::create_dir_all(&dir).unwrap();
    ok(Command::new("flock")
        .arg(dir.join(".lock"))
        .arg("bash")
        .arg(repo().join("tests/support/fixtures.sh"))
        .arg(&dir));
    dir
}

pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// `nodes`: (name, address). Node `name`'s files are in `dir/name`.
    pub fn new(dir: &Path, nodes: &[(&str, &str)]) -> Pki {
        Pki::with_sans(dir, nodes, "")
    }
    /// `extra_sans`: more subject alternative names for every node certificate, `{name}` replaced by
    /// the node's name (e.g. `DNS:{name}.etcd.test,DNS:etcd.test`).
    pub fn with_sans(dir: &Path, nodes: &[(&str, &str)], extra_sans: &str) -> Pki {
        let mut c = Command::new("bash");
        c.env("EXTRA_SANS", extra_sans);
        c.arg(repo().join("tests/support/pki.sh")).arg(dir);
        for (n, a) in nodes {
            c.arg(format!("{n}={a}"));
        }
        ok(&mut c);
        Pki {
            dir: dir.to_path_buf(),
        }
    }
    pub fn node_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca-etcd.pem")
    }
    pub fn client(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.join("cert-etcd-client.pem"),
            self.dir.join("cert-etcd-client-key.pem"),
        )
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn unique(tag: &str) -> String {
    format!(
        "ebt-{}-{}-{}",
        tag,
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// One test node: netns + mount ns + UTS ns, kept alive by a holder process.
pub struct Node {
    pub name: String,
    pub addr: String,
    pub ns: String,
    holder: Child,
    children: Vec<Child>,
    etcd: Option<Child>,
    pub wg_public_key: String,
    pub scratch: tempfile::TempDir,
}

impl Node {
    /// A node named `name` (its hostname) whose `wg0` carries `addr`/24.
    pub fn new(name: &str, addr: &str) -> Node {
        Node::build(name, addr, None)
    }

    /// A node linked by veth to the bridge in `bridge_ns`, with `underlay`/24 on its eth0.
    pub fn on_bridge(name: &str, addr: &str, bridge_ns: &str, underlay: &str) -> Node {
        Node::build(name, addr, Some((bridge_ns, underlay)))
    }

    fn build(name: &str, addr: &str, link: Option<(&str, &str)>) -> Node {
        let ns = unique("n");
        fs::create_dir_all("/var/run/wireguard").unwrap();
        ok(Command::new("ip").args(["netns", "add", &ns]));
        let script = format!(
            "mount -t tmpfs tmpfs /var/run/wireguard && hostname {name} && echo ready && exec sleep 100000"
        );
        let mut holder = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "unshare",
                "--mount",
                "--uts",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
            ])
            .arg(&script)
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the node holder");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut node = Node {
            name: name.to_string(),
            addr: addr.to_string(),
            ns,
            holder,
            children: Vec::new(),
            etcd: None,
            wg_public_key: String::new(),
            scratch: tempfile::tempdir().unwrap(),
        };
        assert_eq!(line.trim(), "ready", "node holder for {name} did not start");
        ok(node.cmd("ip").args(["link", "set", "lo", "up"]));
        if let Some((bridge_ns, underlay)) = link {
            let peer = format!("v{}", COUNTER.fetch_add(1, Ordering::SeqCst));
            ok(Command::new("ip")
                .args([
                    "link", "add", "eth0", "netns", &node.ns, "type", "veth", "peer", "name", &peer,
                ])
                .args(["netns", bridge_ns]));
            ok(Command::new("ip")
                .args(["-n", bridge_ns, "link", "set", &peer, "master", "br0", "up"]));
            ok(node
                .cmd("ip")
                .args(["addr", "add", &format!("{underlay}/24"), "dev", "eth0"]));
            ok(node.cmd("ip").args(["link", "set", "eth0", "up"]));
        }
        let wg = node
            .cmd("wireguard-go")
            .arg("wg0")
            .env("WG_PROCESS_FOREGROUND", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting wireguard-go");
        node.children.push(wg);
        wait_until(Duration::from_secs(10), "wg0 to appear", || {
            node.cmd("ip")
                .args(["link", "show", "wg0"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        });
        let key = node.scratch.path().join("wg.key");
        let k = ok(Command::new("wg").arg("genkey"));
        fs::write(&key, &k).unwrap();
        let mut pubkey = Command::new("wg")
            .arg("pubkey")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut pubkey.stdin.take().unwrap(), k.as_bytes()).unwrap();
        node.wg_public_key = String::from_utf8(pubkey.wait_with_output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        ok(node
            .cmd("wg")
            .args(["set", "wg0", "listen-port", "51820", "private-key"])
            .arg(&key));
        ok(node
            .cmd("ip")
            .args(["addr", "add", &format!("{addr}/24"), "dev", "wg0"]));
        ok(node.cmd("ip").args(["link", "set", "wg0", "up"]));
        node
    }

    /// A command that runs inside this node's namespaces.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.holder.id().to_string())
            .args(["-m", "-u", "-n", "--", program]);
        c
    }

    /// Adds a WireGuard peer to this node's wg0.
    pub fn add_peer(&self, public_key: &str, endpoint: &str, allowed: &str) {
        ok(self.cmd("wg").args([
            "set",
            "wg0",
            "peer",
            public_key,
            "endpoint",
            endpoint,
            "allowed-ips",
            allowed,
        ]));
    }

    /// Stops this node's etcd (as a crash or power loss would).
    pub fn stop_etcd(&mut self) {
        if let Some(mut c) = self.etcd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs etcd-bootstrap inside the node.
    pub fn bootstrap(&self, args: &[&str]) -> Output {
        let mut c = self.cmd(bin().to_str().unwrap());
        c.args(args);
        run(&mut c)
    }

    /// Starts `cmd` (made with `cmd()`) with its stdout piped and returns it with the first line it
    /// printed (servers print their port, or that they are up).
    pub fn spawn_announcing(&self, mut cmd: Command) -> (Child, String) {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting a helper in the node");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        (child, line.trim().to_string())
    }

    /// `spawn_announcing`, the process killed with the node.
    pub fn serve(&mut self, cmd: Command) -> String {
        let (child, line) = self.spawn_announcing(cmd);
        self.adopt(child);
        line
    }

    /// Keeps `child` to kill when the node goes.
    pub fn adopt(&mut self, child: Child) {
        self.children.push(child);
    }

    /// Starts etcd as the unit says: `ExecStart` of `ROOT/etc/systemd/system/<unit>`, chrooted into ROOT,
    /// as the unit's User/Group. Its output goes to `log`.
    pub fn start_etcd(&mut self, root: &Path, unit: &str, log: &Path) {
        let text = fs::read_to_string(root.join("etc/systemd/system").join(unit)).unwrap();
        let argv = etcd_bootstrap::render::parse_exec_start(&text).expect("unit has ExecStart");
        let user = text
            .lines()
            .find_map(|l| l.strip_prefix("User="))
            .unwrap_or("root");
        let group = text
            .lines()
            .find_map(|l| l.strip_prefix("Group="))
            .unwrap_or("root");
        let uid = etcd_bootstrap::host::users::uid(root, user)
            .unwrap()
            .expect("unit user exists in the root");
        let gid = etcd_bootstrap::host::users::gid(root, group)
            .unwrap()
            .expect("unit group exists in the root");
        make_runnable_in_chroot(root, &argv[0]);
        let logf = fs::File::create(log).unwrap();
        let child = self
            .cmd("chroot")
            .arg(format!("--userspec={uid}:{gid}"))
            .arg(root)
            .args(&argv)
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("starting etcd");
        self.stop_etcd();
        self.etcd = Some(child);
    }

    /// GET `url` with the client certificate, inside the node.
    pub fn curl(&self, pki: &Pki, url: &str) -> Option<String> {
        let (cert, key) = pki.client();
        let out = self
            .cmd("curl")
            .args(["-sS", "--max-time", "3", "--cacert"])
            .arg(pki.ca())
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .arg(url)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).to_string())
    }

    pub fn wait_healthy(&self, pki: &Pki, log: &Path) {
        let url = format!("https://{}:2379/health", self.addr);
        let start = Instant::now();
        loop {
            if let Some(body) = self.curl(pki, &url) {
                if body.contains("\"health\":\"true\"") {
                    return;
                }
            }
            if start.elapsed() > Duration::from_secs(60) {
                panic!(
                    "etcd on {} never became healthy; its log:\n{}",
                    self.name,
                    fs::read_to_string(log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_etcd();
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        // Anything else left in the netns (a server a test forgot) goes too.
        if let Ok(o) = Command::new("ip")
            .args(["netns", "pids", &self.ns])
            .output()
        {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

pub fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Copies the shared libraries a dynamically linked binary needs into the root (Debian's etcd is
/// dynamic; upstream's is static and needs nothing).
pub fn make_runnable_in_chroot(root: &Path, bin_in_root: &str) {
    let host_path = root.join(bin_in_root.trim_start_matches('/'));
    let out = Command::new("ldd").arg(&host_path).output().unwrap();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let lib = line
            .split("=>")
            .nth(1)
            .unwrap_or(line)
            .split_whitespace()
            .next()
            .unwrap_or("");
        if lib.starts_with('/') {
            let dest = root.join(lib.trim_start_matches('/'));
            fs::create_dir_all(dest.parent().unwrap()).unwrap();
            if !dest.exists() {
                fs::copy(lib, &dest).unwrap();
            }
        }
    }
}

/// A minimal target root: the accounts files a real root has.
pub fn new_root() -> tempfile::TempDir {
    let root = tempfile::Builder::new()
        .prefix("ebt-root-")
        .tempdir()
        .unwrap();
    fs::create_dir_all(root.path().join("etc")).unwrap();
    fs::write(
        root.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n",
    )
    .unwrap();
    fs::write(root.path().join("etc/group"), "root:x:0:\n").unwrap();
    root
}

/// Copies a directory's files (not recursive) into `dest`.
pub fn copy_files(src: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            fs::copy(e.path(), dest.join(e.file_name())).unwrap();
        }
    }
}

/// mode, uid, gid of a path.
pub fn meta(p: &Path) -> (u32, u32, u32) {
    let m = fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

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

/// N nodes meshed over WireGuard (wg0 10.8.0.I, underlay 172.31.0.I), one shared seed, a PKI, and a
/// scratch root per node. Nodes are dropped before the bridge (field order).
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// The seed lines naming the release, for seeds made later with `seed_with`.
    pub release: String,
    pub roots: Vec<tempfile::TempDir>,
    pub pki: Pki,
    pub seed: PathBuf,
    pub dir: tempfile::TempDir,
    _bridge: Bridge,
}

impl Cluster {
    /// `release`: seed lines naming the release (version, URL, checksum).
    pub fn new(n: usize, release: &str) -> Cluster {
        Cluster::with_sans(n, release, "")
    }

    /// A cluster whose node certificates carry `extra_sans` too (see `Pki::with_sans`).
    pub fn with_sans(n: usize, release: &str, extra_sans: &str) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let specs: Vec<(String, String)> = (1..=n)
            .map(|i| (format!("etcd-node{i}"), format!("10.8.0.{i}")))
            .collect();
        let spec_refs: Vec<(&str, &str)> = specs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let pki = Pki::with_sans(&dir.path().join("pki"), &spec_refs, extra_sans);
        let bridge = Bridge::new();
        let nodes: Vec<Node> = specs
            .iter()
            .enumerate()
            .map(|(i, (name, addr))| {
                Node::on_bridge(name, addr, &bridge.ns, &format!("172.31.0.{}", i + 1))
            })
            .collect();
        for (i, a) in nodes.iter().enumerate() {
            for (j, b) in nodes.iter().enumerate() {
                if i != j {
                    a.add_peer(
                        &b.wg_public_key,
                        &format!("172.31.0.{}:51820", j + 1),
                        &format!("{}/32", b.addr),
                    );
                }
            }
        }
        let seed_path = dir.path().join("seed.yaml");
        fs::write(
            &seed_path,
            seed_text(&(0..n).collect::<Vec<_>>(), "", release),
        )
        .unwrap();
        let roots = specs
            .iter()
            .map(|(name, _)| {
                let r = new_root();
                copy_files(&pki.node_dir(name), &r.path().join("srv/pki"));
                r
            })
            .collect();
        Cluster {
            nodes,
            release: release.to_string(),
            roots,
            pki,
            seed: seed_path,
            dir,
            _bridge: bridge,
        }
    }

    /// `etcd-bootstrap <cmd> --seed <shared seed> --root <node i's root> <extra>` inside node i.
    pub fn bootstrap(&self, i: usize, cmd: &str, extra: &[&str]) -> Output {
        self.bootstrap_with(i, &self.seed, cmd, extra)
    }

    /// Writes seed `name` naming only the nodes `members` (indexes), with `extra` seed lines
    /// (`etcd_settings_user` entries go in `settings`, indented under it).
    pub fn seed_with(&self, name: &str, members: &[usize], settings: &str, extra: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        let mut text = seed_text(members, settings, &self.release);
        text.push_str(extra);
        fs::write(&p, text).unwrap();
        p
    }

    /// `etcd-bootstrap <cmd> --seed <seed> --root <node i's root> <extra>` inside node i.
    pub fn bootstrap_with(&self, i: usize, seed: &Path, cmd: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            cmd,
            "--seed",
            seed.to_str().unwrap(),
            "--root",
            self.roots[i].path().to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.nodes[i].bootstrap(&args)
    }

    /// The command `bootstrap_with` runs, to start it in the background.
    pub fn bootstrap_cmd(&self, i: usize, seed: &Path, cmd: &str) -> Command {
        let mut c = self.nodes[i].cmd(bin().to_str().unwrap());
        c.args([cmd, "--seed", seed.to_str().unwrap(), "--root"])
            .arg(self.roots[i].path());
        c
    }

    /// `apply` on node i; panics on failure.
    pub fn apply(&self, i: usize) {
        let out = self.bootstrap(i, "apply", &[]);
        assert!(
            out.status.success(),
            "apply on {} failed: {}",
            self.nodes[i].name,
            stderr(&out)
        );
    }

    pub fn log(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("etcd-node{}.log", i + 1))
    }

    pub fn start(&mut self, i: usize) {
        let root = self.roots[i].path().to_path_buf();
        let log = self.log(i);
        self.nodes[i].start_etcd(&root, "etcd.service", &log);
    }

    /// `etcd-bootstrap health` from node i (same seed, that node's root).
    pub fn health(&self, i: usize, extra: &[&str]) -> Output {
        self.bootstrap(i, "health", extra)
    }

    /// etcdctl from node i's root, configured only by its etcdctl.env (paths mapped into the root).
    pub fn etcdctl(&self, i: usize, args: &str) -> Output {
        let r = self.roots[i].path().display().to_string();
        let script = format!(
            "set -a; . {r}/etc/etcd/etcdctl.env; set +a; \
             export ETCDCTL_CACERT={r}$ETCDCTL_CACERT ETCDCTL_CERT={r}$ETCDCTL_CERT ETCDCTL_KEY={r}$ETCDCTL_KEY; \
             exec {r}/usr/local/bin/etcdctl --command-timeout=5s {args}"
        );
        run(self.nodes[i].cmd("sh").arg("-c").arg(script))
    }
}

/// The cluster harness's seed: nodes `members` (indexes; node i is etcd-node{i+1} at 10.8.0.{i+1}),
/// `settings` lines under etcd_settings_user, then `release`.
pub fn seed_text(members: &[usize], settings: &str, release: &str) -> String {
    let mut seed = String::from(
        "etcd_ca_conf_directory: /srv/pki\n\
         etcd_certificates: [ca-etcd.pem, cert-etcd-server.pem, cert-etcd-server-key.pem, cert-etcd-peer.pem, \
         cert-etcd-peer-key.pem, cert-etcd-client.pem, cert-etcd-client-key.pem]\n\
         etcd_settings_user:\n  log-outputs: stderr\n",
    );
    for line in settings.lines() {
        seed.push_str(&format!("  {}\n", line.trim()));
    }
    seed.push_str("etcd_members:\n");
    for i in members {
        seed.push_str(&format!(
            "  - {{name: etcd-node{n}, address: 10.8.0.{n}}}\n",
            n = i + 1
        ));
    }
    seed.push_str(release);
    seed
}

/// One node with wg0, a root holding its certificates at /srv/pki, and a seed naming it the only
/// member (plus `release`, the seed lines that say where the release comes from).
pub struct Single {
    pub node: Node,
    pub root: tempfile::TempDir,
    pub pki: Pki,
    pub dir: tempfile::TempDir,
    pub seed: PathBuf,
}

impl Single {
    pub fn new(name: &str, addr: &str, release: &str) -> Single {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(&dir.path().join("pki"), &[(name, addr)]);
        let root = new_root();
        copy_files(&pki.node_dir(name), &root.path().join("srv/pki"));
        let node = Node::new(name, addr);
        let seed = dir.path().join("seed.yaml");
        fs::write(
            &seed,
            format!(
                "etcd_ca_conf_directory: /srv/pki\n\
                 etcd_certificates: [ca-etcd.pem, cert-etcd-server.pem, cert-etcd-server-key.pem, cert-etcd-peer.pem, \
                 cert-etcd-peer-key.pem, cert-etcd-client.pem, cert-etcd-client-key.pem]\n\
                 etcd_members:\n  - name: {name}\n    address: {addr}\n\
                 etcd_settings_user:\n  log-outputs: stderr\n{release}"
            ),
        )
        .unwrap();
        Single {
            node,
            root,
            pki,
            dir,
            seed,
        }
    }

    /// A fresh root for the same node and seed (the certificates copied in).
    pub fn another_root(&self) -> tempfile::TempDir {
        let root = new_root();
        copy_files(
            &self.root.path().join("srv/pki"),
            &root.path().join("srv/pki"),
        );
        root
    }

    /// An HTTPS release mirror on 127.0.0.1 in the node: `script` (a server in tests/support that
    /// prints its port) serving `dir`, with a CA of its own installed in the root as
    /// /srv/mirror-ca.pem. Returns the base URL and the server process.
    pub fn start_mirror(&mut self, script: &str, dir: &Path) -> (String, Child) {
        let pki = Pki::new(
            &self.dir.path().join("mirror-pki"),
            &[("mirror", "127.0.0.1")],
        );
        let mut cmd = self.node.cmd("python3");
        cmd.arg(repo().join("tests/support").join(script))
            .arg(dir)
            .arg(pki.node_dir("mirror").join("cert-etcd-server.pem"))
            .arg(pki.node_dir("mirror").join("cert-etcd-server-key.pem"));
        let (child, port) = self.node.spawn_announcing(cmd);
        fs::copy(pki.ca(), self.root.path().join("srv/mirror-ca.pem")).unwrap();
        (format!("https://127.0.0.1:{port}"), child)
    }

    /// Appends lines to the seed.
    pub fn add_to_seed(&self, lines: &str) {
        let seed = fs::read_to_string(&self.seed).unwrap() + lines;
        fs::write(&self.seed, seed).unwrap();
    }

    pub fn apply_in(&self, root: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.node.cmd(bin().to_str().unwrap());
        c.args([
            "apply",
            "--seed",
            self.seed.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
        ]);
        c.args(extra);
        for (k, v) in env {
            c.env(k, v);
        }
        run(&mut c)
    }

    pub fn apply(&self, extra: &[&str]) -> Output {
        self.apply_in(self.root.path(), extra, &[])
    }
}

/// What an install is: every path under the root (but /run) with mode, owner, and the sha256 of a
/// file's content or a link's target. Equal manifests mean equal installs.
pub fn content_manifest(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            // Runtime state, and the digest cache (it records inode numbers and times).
            if rel == "run" || rel == "var/lib/etcd-bootstrap/digests" {
                continue;
            }
            let m = fs::symlink_metadata(&p).unwrap();
            let what = if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if m.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&p).unwrap().display())
            } else {
                etcd_bootstrap::util::io::sha256_file(&p)
                    .unwrap()
                    .unwrap()
                    .0
                    .to_string()
            };
            out.push(format!(
                "{rel} {:o} {}:{} {what}",
                m.mode() & 0o7777,
                m.uid(),
                m.gid()
            ));
        }
    }
    out.sort();
    out
}

/// Seed lines naming the fixture release `version` by file:// URL, checked against its SHA256SUMS.
pub fn file_release(version: &str) -> String {
    format!(
        "etcd_version: \"{version}\"\n\
         etcd_download_url: \"file://{0}/v{{{{ etcd_version }}}}/etcd-v{{{{ etcd_version }}}}-linux-amd64.tar.gz\"\n\
         etcd_download_url_checksum: \"sha256:file://{0}/v{{{{ etcd_version }}}}/SHA256SUMS\"\n",
        fixtures().display()
    )
}
