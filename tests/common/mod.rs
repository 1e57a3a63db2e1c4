//! Test harness: real etcd release fixtures, a PKI made by `etcd-bootstrap pki`, and nodes made of
//! a network namespace, a private mount namespace (own /var/run/wireguard) and UTS namespace (own
//! hostname), each with a real `wg0` from wireguard-go. Everything a node starts dies with it
//! (Drop); `tests/support/cleanup.sh` removes what an interrupted run left (every name starts with
//! `ebt-` and carries the pid of the test process that made it, so a second run is left alone).
//!
//! One way to run the tool: `Node::tool` (inside the node's namespaces). One seed builder:
//! `SeedText`. One PKI builder: `Pki` (the tool's own `pki`; deliberately broken certificates are
//! made with rcgen in `tests/preflight.rs`).
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

pub fn support(script: &str) -> PathBuf {
    repo().join("tests/support").join(script)
}

pub fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    cmd.output()
        .unwrap_or_else(|e| panic!("running {shown}: {e}"))
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

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The lines of `text` that are errors (a report's `error` lines, wherever they stand).
pub fn error_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("error")).collect()
}

/// Release tarballs + SHA256SUMS built from real etcd 3.4.23 (Debian) and 3.5.1 (upstream, PyPI).
/// Built once; concurrent test processes serialise on a lock file.
pub fn fixtures() -> PathBuf {
    let dir = repo().join("target/fixtures");
    fs::create_dir_all(&dir).unwrap();
    ok(Command::new("flock")
        .arg(dir.join(".lock"))
        .arg("bash")
        .arg(support("fixtures.sh"))
        .arg(&dir));
    dir
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

/// Seed lines naming the fixture release `version` by file:// URL with its digest pinned.
pub fn pinned_release(version: &str) -> String {
    let fx = fixtures();
    let sums = fs::read_to_string(fx.join(format!("v{version}/SHA256SUMS"))).unwrap();
    format!(
        "etcd_version: \"{version}\"\n\
         etcd_download_url: \"file://{}/v{version}/etcd-v{version}-linux-amd64.tar.gz\"\n\
         etcd_download_url_checksum: \"sha256:{}\"\n",
        fx.display(),
        sums.split_whitespace().next().unwrap()
    )
}

/// The name of cluster node `i` (0-based) and its wg0 address.
pub fn member(i: usize) -> (String, String) {
    (format!("etcd-node{}", i + 1), format!("10.8.0.{}", i + 1))
}

/// The certificates every test seed lists (from `etcd_ca_conf_directory: /srv/pki`).
pub const CERTIFICATES: &str = "[ca-etcd.pem, cert-etcd-server.pem, cert-etcd-server-key.pem, \
     cert-etcd-peer.pem, cert-etcd-peer-key.pem, cert-etcd-client.pem, cert-etcd-client-key.pem]";

/// The one seed builder: the PKI lines, `etcd_settings_user` (log to stderr, then `settings`),
/// `etcd_members`, the release, then `extra`.
#[derive(Clone, Default)]
pub struct SeedText {
    pub members: Vec<(String, String)>,
    pub settings: Vec<String>,
    pub release: String,
    pub extra: String,
}

impl SeedText {
    pub fn new(release: &str) -> SeedText {
        SeedText {
            release: release.to_string(),
            ..SeedText::default()
        }
    }
    pub fn member(mut self, name: &str, addr: &str) -> SeedText {
        self.members.push((name.into(), addr.into()));
        self
    }
    /// Cluster nodes `idx` (0-based): `etcd-node{i+1}` at `10.8.0.{i+1}`.
    pub fn nodes(mut self, idx: &[usize]) -> SeedText {
        self.members.extend(idx.iter().map(|&i| member(i)));
        self
    }
    /// Lines under etcd_settings_user (each `key: value`).
    pub fn settings(mut self, lines: &str) -> SeedText {
        self.settings.extend(
            lines
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty()),
        );
        self
    }
    pub fn extra(mut self, lines: &str) -> SeedText {
        self.extra.push_str(lines);
        self
    }
    pub fn text(&self) -> String {
        let mut s = format!(
            "etcd_ca_conf_directory: /srv/pki\netcd_certificates: {CERTIFICATES}\n\
             etcd_settings_user:\n  log-outputs: stderr\n"
        );
        for l in &self.settings {
            s.push_str(&format!("  {l}\n"));
        }
        s.push_str("etcd_members:\n");
        for (n, a) in &self.members {
            s.push_str(&format!("  - {{name: {n}, address: {a}}}\n"));
        }
        s.push_str(&self.release);
        s.push_str(&self.extra);
        s
    }
    pub fn write(&self, path: &Path) -> PathBuf {
        fs::write(path, self.text()).unwrap();
        path.to_path_buf()
    }
}

/// A PKI made by `etcd-bootstrap pki` from a cluster file.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// The certificates of every member of `seed`, made (or brought up to date) in `dir`.
    pub fn for_seed(dir: &Path, seed: &Path, extra: &[&str]) -> Pki {
        let mut c = Command::new(bin());
        c.args(["pki", "--seed"])
            .arg(seed)
            .arg("--out")
            .arg(dir)
            .args(extra);
        ok(&mut c);
        Pki {
            dir: dir.to_path_buf(),
        }
    }
    /// The certificates of `nodes` (name, address), from a seed naming just them.
    pub fn new(dir: &Path, nodes: &[(&str, &str)]) -> Pki {
        fs::create_dir_all(dir).unwrap();
        let mut seed = SeedText::default();
        for (n, a) in nodes {
            seed = seed.member(n, a);
        }
        let path = seed.write(&dir.with_extension("seed.yaml"));
        Pki::for_seed(dir, &path, &[])
    }
    pub fn node_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca-etcd.pem")
    }
    pub fn client(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.join("client/cert-etcd-client.pem"),
            self.dir.join("client/cert-etcd-client-key.pem"),
        )
    }
    /// Node `name`'s `etcd_ca_conf_directory`: its own files and the client pair, into `dest`.
    pub fn install(&self, name: &str, dest: &Path) {
        copy_files(&self.node_dir(name), dest);
        copy_files(&self.dir.join("client"), dest);
    }
}

/// A per-process token in every namespace and scratch name: a second test run, or an interrupted
/// one's leftovers, never share a name with this run.
fn run_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        format!("{}-{:x}", std::process::id(), nanos & 0xfffff)
    })
}

/// A scratch dir `/tmp/ebt-<tag>-<pid>-<token>-...`: cleanup.sh removes it once this run is gone.
pub fn scratch(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("ebt-{tag}-{}-", run_token()))
        .tempdir()
        .unwrap()
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// `ebt-<tag>-<pid>-<token>-<n>`: cleanup.sh removes it only once that pid is gone.
pub fn unique(tag: &str) -> String {
    format!(
        "ebt-{tag}-{}-{}",
        run_token(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// What a node's mount namespace hides of the host: for a live node, the paths the tool writes
/// when it runs without `--root`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mounts {
    /// Only /var/run/wireguard is private.
    Plain,
    /// /etc (a copy), /var/lib, /opt, /usr/local/bin, /srv and /run are private too, /run/systemd/system
    /// exists, and a supervising `systemctl` is first on PATH (it records every call and really
    /// runs a unit's ExecStart): `apply` without `--root` runs here as on a live node, and nothing
    /// reaches the host.
    Live,
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
    mounts: Mounts,
}

impl Node {
    /// A node named `name` (its hostname) whose `wg0` carries `addr`/24.
    pub fn new(name: &str, addr: &str) -> Node {
        let mut n = Node::bare(name, addr, Mounts::Plain, None);
        n.add_wg0();
        n
    }

    /// A node linked by veth to the bridge in `bridge_ns`, with `underlay`/24 on its eth0.
    pub fn on_bridge(
        name: &str,
        addr: &str,
        mounts: Mounts,
        bridge_ns: &str,
        underlay: &str,
    ) -> Node {
        let mut n = Node::bare(name, addr, mounts, Some((bridge_ns, underlay)));
        n.add_wg0();
        n
    }

    /// A node with no wg0 yet (`add_wg0` brings it up).
    pub fn bare(name: &str, addr: &str, mounts: Mounts, link: Option<(&str, &str)>) -> Node {
        let ns = unique("n");
        let scratch = scratch("node");
        fs::create_dir_all("/var/run/wireguard").unwrap();
        ok(Command::new("ip").args(["netns", "add", &ns]));
        let script = match mounts {
            Mounts::Plain => format!(
                "mount -t tmpfs tmpfs /var/run/wireguard && hostname {name} && echo ready && exec sleep 100000"
            ),
            Mounts::Live => live_mounts(name, scratch.path()),
        };
        let mut holder = Command::new("ip")
            .args(["netns", "exec", &ns, "unshare", "--mount", "--uts"])
            .args(["--propagation", "private", "--", "sh", "-c"])
            .arg(&script)
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the node holder");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let node = Node {
            name: name.to_string(),
            addr: addr.to_string(),
            ns,
            holder,
            children: Vec::new(),
            etcd: None,
            wg_public_key: String::new(),
            scratch,
            mounts,
        };
        assert_eq!(line.trim(), "ready", "node holder for {name} did not start");
        ok(node.cmd("ip").args(["link", "set", "lo", "up"]));
        if let Some((bridge_ns, underlay)) = link {
            node.link_to(bridge_ns, underlay);
        }
        node
    }

    fn link_to(&self, bridge_ns: &str, underlay: &str) {
        let peer = format!("v{}", COUNTER.fetch_add(1, Ordering::SeqCst));
        ok(Command::new("ip")
            .args(["link", "add", "eth0", "netns", &self.ns, "type", "veth"])
            .args(["peer", "name", &peer, "netns", bridge_ns]));
        ok(Command::new("ip").args(["-n", bridge_ns, "link", "set", &peer, "master", "br0", "up"]));
        ok(self
            .cmd("ip")
            .args(["addr", "add", &format!("{underlay}/24"), "dev", "eth0"]));
        ok(self.cmd("ip").args(["link", "set", "eth0", "up"]));
    }

    /// Brings up a real wg0 (wireguard-go) carrying this node's address.
    pub fn add_wg0(&mut self) {
        let wg = self
            .cmd("wireguard-go")
            .arg("wg0")
            .env("WG_PROCESS_FOREGROUND", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting wireguard-go");
        self.children.push(wg);
        wait_until(Duration::from_secs(10), "wg0 to appear", || {
            run(self.cmd("ip").args(["link", "show", "wg0"]))
                .status
                .success()
        });
        let key = self.scratch.path().join("wg.key");
        fs::write(&key, ok(Command::new("wg").arg("genkey"))).unwrap();
        let pubkey = ok(Command::new("sh")
            .arg("-c")
            .arg(format!("wg pubkey < {}", key.display())));
        self.wg_public_key = pubkey.trim().to_string();
        ok(self
            .cmd("wg")
            .args(["set", "wg0", "listen-port", "51820", "private-key"])
            .arg(&key));
        ok(self
            .cmd("ip")
            .args(["addr", "add", &format!("{}/24", self.addr), "dev", "wg0"]));
        ok(self.cmd("ip").args(["link", "set", "wg0", "up"]));
    }

    /// A command that runs inside this node's namespaces.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.holder.id().to_string())
            .args(["-m", "-u", "-n", "--", program]);
        if self.mounts == Mounts::Live {
            let path = std::env::var("PATH").unwrap_or_default();
            c.env("PATH", format!("{}:{path}", self.fake_bin().display()));
        }
        c
    }

    /// `etcd-bootstrap <args>` inside this node: the one way the tests run the tool.
    pub fn tool(&self, args: &[&str]) -> Command {
        let mut c = self.cmd(bin().to_str().unwrap());
        c.args(args);
        c
    }

    /// Adds a WireGuard peer to this node's wg0.
    pub fn add_peer(&self, public_key: &str, endpoint: &str, allowed: &str) {
        ok(self
            .cmd("wg")
            .args(["set", "wg0", "peer", public_key])
            .args(["endpoint", endpoint, "allowed-ips", allowed]));
    }

    /// Stops this node's etcd (as a crash or power loss would).
    pub fn stop_etcd(&mut self) {
        if let Some(mut c) = self.etcd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
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

    /// Starts etcd as the unit says: `ExecStart` of `ROOT/etc/systemd/system/<unit>` (split by
    /// Python's shlex, not the tool's own parser), chrooted into ROOT, as the unit's User/Group.
    /// Its output goes to `log`.
    pub fn start_etcd(&mut self, root: &Path, unit: &str, log: &Path) {
        let unit_file = root.join("etc/systemd/system").join(unit);
        let text = fs::read_to_string(&unit_file).unwrap();
        let argv = exec_start(&unit_file);
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
            .filter(|c| !c.starts_with("is-enabled") && !c.starts_with("is-active"))
            .collect()
    }

    /// What a unit the supervising `systemctl` of a live node runs wrote (etcd's log).
    pub fn unit_log(&self, unit: &str) -> String {
        fs::read_to_string(self.scratch.path().join(format!("live/{unit}.log"))).unwrap_or_default()
    }

    fn fake_bin(&self) -> PathBuf {
        self.scratch.path().join("live/bin")
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
fn live_mounts(name: &str, scratch: &Path) -> String {
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

/// The `ExecStart=` argv of a unit file, split by Python's shlex (`tests/support/exec_start.py`):
/// an implementation independent of the tool's own quoting.
pub fn exec_start(unit_file: &Path) -> Vec<String> {
    let out = ok(Command::new("python3")
        .arg(support("exec_start.py"))
        .arg(unit_file));
    let argv: Vec<String> = out.lines().map(str::to_string).collect();
    assert!(!argv.is_empty(), "{} has no ExecStart", unit_file.display());
    argv
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

/// Whether arm64 programs run here: binfmt_misc with qemu-aarch64 registered (tried as
/// install-deps.sh does, as root). Err says why not: the arm64 tests skip only then.
pub fn arm64_runs() -> Result<(), String> {
    let entry = Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64");
    if !entry.exists() {
        if !Path::new("/proc/sys/fs/binfmt_misc/register").exists() {
            let _ = Command::new("mount")
                .args([
                    "-t",
                    "binfmt_misc",
                    "binfmt_misc",
                    "/proc/sys/fs/binfmt_misc",
                ])
                .status();
        }
        let _ = Command::new("update-binfmts")
            .args(["--enable", "qemu-aarch64"])
            .status();
    }
    match fs::read_to_string(entry) {
        Ok(t) if t.starts_with("enabled") => Ok(()),
        Ok(t) => Err(format!(
            "binfmt qemu-aarch64 is registered but not enabled: {}",
            t.trim()
        )),
        Err(e) => Err(format!(
            "binfmt_misc cannot run arm64 programs here ({}: {e}); install qemu-user-static and \
             binfmt-support and run as root",
            entry.display()
        )),
    }
}

/// A minimal target root: the accounts files a real root has.
pub fn new_root() -> tempfile::TempDir {
    let root = scratch("root");
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

/// `<cmd> --seed SEED --root ROOT <extra>`.
fn with_seed_and_root(cmd: &str, seed: &Path, root: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        cmd.into(),
        "--seed".into(),
        seed.display().to_string(),
        "--root".into(),
        root.display().to_string(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
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

    /// Starts a health watcher in node `on` over every member (`tests/support/health_watch.py`:
    /// a member is down for a round when its /health fails twice in a row, unless its own status
    /// then says it is electing a leader; blips and elections are counted apart).
    pub fn watch(&mut self, on: usize, interval: Duration) -> Watcher {
        let out = self.dir.path().join(format!(
            "watch-{}.log",
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let (cert, key) = self.pki.client();
        let mut cmd = self.nodes[on].cmd("python3");
        cmd.arg(support("health_watch.py"))
            .arg(&out)
            .arg(format!("{}", interval.as_secs_f64()))
            .arg(self.pki.ca())
            .arg(cert)
            .arg(key)
            .args(
                self.nodes
                    .iter()
                    .map(|n| format!("https://{}:2379", n.addr)),
            );
        let (child, line) = self.nodes[on].spawn_announcing(cmd);
        assert_eq!(line, "watching", "the health watcher did not start");
        Watcher { child, out }
    }
}

/// A running health watcher; `stop` returns what it saw.
pub struct Watcher {
    child: Child,
    out: PathBuf,
}

/// What a health watcher saw: rounds, the most members down in one round and that round, the
/// rounds with one down, the blips (a failed answer contradicted by the next, as requests in
/// flight get at a leadership handover), and the elections (runs of rounds in which an answering
/// member knew no leader).
#[derive(Debug)]
pub struct Watched {
    pub rounds: usize,
    pub most_down: usize,
    pub worst: String,
    pub rounds_with_one_down: usize,
    pub blips: usize,
    pub elections: usize,
}

impl Watcher {
    pub fn stop(mut self) -> Watched {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let text = fs::read_to_string(&self.out).unwrap_or_default();
        let mut w = Watched {
            rounds: 0,
            most_down: 0,
            worst: String::new(),
            rounds_with_one_down: 0,
            blips: 0,
            elections: 0,
        };
        let mut electing = false;
        for line in text.lines() {
            w.blips += line.matches("blip https://").count();
            let now = line.contains("electing https://");
            w.elections += usize::from(now && !electing);
            electing = now;
            let down: usize = line
                .split(' ')
                .nth(1)
                .and_then(|d| d.parse().ok())
                .unwrap_or(0);
            w.rounds += 1;
            w.rounds_with_one_down += usize::from(down == 1);
            if down > w.most_down {
                w.most_down = down;
                w.worst = line.to_string();
            }
        }
        w
    }
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
        Single::with_node(Node::new(name, addr), release)
    }

    /// `node` (made by the caller: bare, live, ...) as the only member.
    pub fn with_node(node: Node, release: &str) -> Single {
        let dir = tempfile::tempdir().unwrap();
        let seed = SeedText::new(release)
            .member(&node.name, &node.addr)
            .write(&dir.path().join("seed.yaml"));
        // From a seed of its own: a test may break `seed` on purpose.
        let pki = Pki::new(&dir.path().join("pki"), &[(&node.name, &node.addr)]);
        let root = new_root();
        pki.install(&node.name, &root.path().join("srv/pki"));
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
        self.pki
            .install(&self.node.name, &root.path().join("srv/pki"));
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
        cmd.arg(support(script))
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

    /// `etcd-bootstrap <cmd> --seed <its seed> --root ROOT <extra>` inside the node.
    pub fn tool(&self, root: &Path, cmd: &str, extra: &[&str]) -> Command {
        let args = with_seed_and_root(cmd, &self.seed, root, extra);
        self.node.tool(&refs(&args))
    }

    pub fn apply_in(&self, root: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.tool(root, "apply", extra);
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

/// The paths whose manifest lines differ between two manifests, both ways: what was added,
/// changed or removed.
pub fn changed_paths(before: &[String], after: &[String]) -> Vec<String> {
    let path = |l: &String| l.split(' ').next().unwrap().to_string();
    let mut out: Vec<String> = before
        .iter()
        .filter(|l| !after.contains(l))
        .chain(after.iter().filter(|l| !before.contains(l)))
        .map(path)
        .collect();
    out.sort();
    out.dedup();
    out
}
