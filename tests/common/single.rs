//! One node, its root and a seed naming it the only member.

use super::*;
use std::process::Child;

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
