//! A real S3-compatible store for the offsite tests: SeaweedFS's `weed mini` (the pinned PyPI
//! build `fixtures.sh` unpacks), serving S3 over TLS from its own test CA, checking SigV4
//! signatures, in the cluster's bridge namespace at 172.31.0.254, where every node reaches it over
//! its underlay. Inspected with Debian's `aws` CLI: another client reading what the tool wrote.

use super::*;
use std::process::{Child, Stdio};

pub const STORE_ADDR: &str = "172.31.0.254";
pub const ACCESS_KEY: &str = "AKIDEBTTEST";

pub struct S3Store {
    pub ns: String,
    /// `https://172.31.0.254:8333`
    pub endpoint: String,
    pub secret: String,
    /// The store's CA (its own, not the cluster's).
    pub ca: PathBuf,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl S3Store {
    /// Starts the store in `ns` (the cluster's bridge namespace) and makes `bucket`.
    pub fn start(ns: &str, bucket: &str) -> S3Store {
        // Not under /tmp: the store's own /tmp hides the host's.
        let dir = tempfile::Builder::new()
            .prefix(&format!("ebt-s3-{}-", run_token()))
            .tempdir_in(repo().join("target"))
            .unwrap();
        ok(Command::new("ip").args([
            "-n",
            ns,
            "addr",
            "add",
            &format!("{STORE_ADDR}/24"),
            "dev",
            "br0",
        ]));
        ok(Command::new("ip").args(["-n", ns, "link", "set", "lo", "up"]));
        ok(Command::new("bash")
            .arg(support("pki.sh"))
            .arg(dir.path().join("pki"))
            .arg(format!("store={STORE_ADDR}")));
        let secret = format!("sk-{}", unique("secret"));
        let ids = serde_json::json!({"identities": [{
            "name": "backup",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": secret}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]});
        fs::write(dir.path().join("identities.json"), ids.to_string()).unwrap();
        let mut s = S3Store {
            ns: ns.to_string(),
            endpoint: format!("https://{STORE_ADDR}:8333"),
            secret,
            ca: dir.path().join("pki/ca-etcd.pem"),
            dir,
            child: None,
        };
        s.run_weed();
        // The CLI retries a make that timed out while the store warmed up: then it finds the
        // bucket its first try made.
        let out = run(&mut s.aws(&["s3", "mb", &format!("s3://{bucket}")]));
        assert!(
            out.status.success() || stderr(&out).contains("BucketAlreadyOwnedByYou"),
            "making the bucket: {}",
            stderr(&out)
        );
        // A new store answers its first writes 500 while it grows its first volumes: the tests
        // start once one write went through (the tool's own retries are tested on purpose).
        let probe = s.dir.path().join("probe");
        fs::write(&probe, "probe").unwrap();
        let started = Instant::now();
        let target = format!("s3://{bucket}/probe");
        while !s
            .aws(&["s3", "cp"])
            .arg(&probe)
            .arg(&target)
            .output()
            .unwrap()
            .status
            .success()
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the store takes no write: {}",
                s.log_tail()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        ok(&mut s.aws(&["s3", "rm", &target]));
        s
    }

    fn run_weed(&mut self) {
        let d = self.dir.path();
        let cert = d.join("pki/store/cert-etcd-server.pem");
        let key = d.join("pki/store/cert-etcd-server-key.pem");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("weed.log"))
            .unwrap();
        // weed keeps sockets at fixed names in /tmp (`seaweedfs-filer-grpc-<port>.sock`): each
        // store gets a /tmp of its own, so stores of tests running at once never meet.
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(["unshare", "--mount", "--propagation", "private", "--"])
            .args([
                "sh",
                "-c",
                "mount -t tmpfs tmpfs /tmp && exec \"$0\" \"$@\"",
            ])
            .arg(repo().join("target/fixtures/weed/weed"))
            .arg("mini")
            .arg(format!("-dir={}", d.join("data").display()))
            .args([
                &format!("-ip={STORE_ADDR}"),
                &format!("-ip.bind={STORE_ADDR}"),
            ])
            .args(["-s3.port=8333", "-webdav=false", "-admin.ui=false"])
            // A real S3 answers NoSuchBucket; weed would make the bucket for an admin.
            .arg("-s3.autoCreateBucket=false")
            // Its sockets default to /tmp/...-<port>.sock: shared by every store on this host.
            .arg(format!("-s3.localSocket={}", d.join("s3.sock").display()))
            .arg(format!(
                "-filer.localSocket={}",
                d.join("filer.sock").display()
            ))
            .arg(format!(
                "-s3.config={}",
                d.join("identities.json").display()
            ))
            .arg(format!("-s3.cert.file={}", cert.display()))
            .arg(format!("-s3.key.file={}", key.display()))
            .current_dir(d)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting weed");
        self.child = Some(child);
        let started = Instant::now();
        // Up once S3 answers a signed listing (the filer and volume behind it ready too).
        while !self.aws(&["s3", "ls"]).output().unwrap().status.success() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "weed did not come up: {}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The last lines weed logged.
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// `aws --endpoint-url … <args>` in the store's namespace, with its credentials.
    pub fn aws(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.ns,
            "/usr/bin/aws",
            "--endpoint-url",
            &self.endpoint,
        ])
        .arg("--ca-bundle")
        .arg(&self.ca)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", &self.secret)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        c
    }

    /// Every key under `prefix` in `bucket`, sorted.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let out = ok(&mut self.aws(&[
            "s3api",
            "list-objects-v2",
            "--bucket",
            bucket,
            "--prefix",
            prefix,
            "--output",
            "json",
        ]));
        if out.trim().is_empty() {
            return vec![];
        }
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let mut keys: Vec<String> = v["Contents"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|o| o["Key"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        keys.sort();
        keys
    }

    /// Downloads `key` to `dest`.
    pub fn get(&self, bucket: &str, key: &str, dest: &Path) {
        ok(self
            .aws(&["s3", "cp", &format!("s3://{bucket}/{key}")])
            .arg(dest));
    }

    /// An AWS shared-credentials file for the store (root's alone), at `path`.
    pub fn write_credentials(&self, path: &Path, secret: &str) {
        use std::os::unix::fs::PermissionsExt;
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(
            path,
            format!(
                "[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {secret}\n"
            ),
        )
        .unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Freezes the store (every request then hangs), or lets it go on.
    pub fn freeze(&self, frozen: bool) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        ok(Command::new("kill").args([if frozen { "-STOP" } else { "-CONT" }, &pid]));
    }
}

/// A relay in front of the store that answers slowly forever (`tests/support/trickle.py`):
/// killed when dropped.
pub struct Trickle(Child);

impl S3Store {
    /// A relay on `STORE_ADDR:port` to the store: requests pass at once; answers pass at full
    /// speed for their first `fast` bytes per connection (the TLS handshake), then one byte each
    /// `every`.
    pub fn trickle(&self, port: u16, fast: usize, every: Duration) -> Trickle {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "python3"])
            .arg(support("trickle.py"))
            .args([STORE_ADDR, &port.to_string(), STORE_ADDR, "8333"])
            .arg(fast.to_string())
            .arg(format!("{}", every.as_secs_f64()))
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the trickling relay");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready", "the relay did not start");
        Trickle(child)
    }
}

impl Drop for Trickle {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for S3Store {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
