//! Certificates made by the tool's own `pki`.

use super::*;

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
