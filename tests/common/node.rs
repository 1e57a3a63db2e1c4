//! One test machine: network, mount and UTS namespaces with a real wg0 (wireguard-go).

use super::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

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
