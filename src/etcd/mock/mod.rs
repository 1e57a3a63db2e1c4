//! A stand-in etcd cluster in the test process, for the tests beside the code that talks to a
//! cluster (the lock, restarts, joins, status, the upgrade path): one HTTPS server per member on
//! `127.0.0.<n>:<port>` with a client-certificate check, answering the v3 JSON gateway from one
//! shared state — members, keys with leases, the leader, raft indexes, each member's process
//! start time. A test changes the state as etcd would change (a member stops, restarts, falls
//! behind) or as a hostile member would answer (`overrides`). No root, no namespace.

use crate::facts::Facts;
use crate::seed::{Config, Seed};
use crate::util::testserver::{Handler, Response, Server, Tls};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

mod answer;
mod maintenance;
use answer::{answer, lock};

/// One member as the cluster knows it.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: u64,
    pub name: String,
    /// 127.0.0.<n>
    pub addr: String,
    pub learner: bool,
    /// Added but never started: no name or client URL in the list.
    pub started: bool,
    /// None: healthy; else the reason /health gives.
    pub unhealthy: Option<String>,
    pub version: String,
    /// Its etcd process's start (seconds since the epoch, as `/metrics` says).
    pub started_at: f64,
    pub raft_index: u64,
    /// Its backend file's size and the part of it in use.
    pub db_size: u64,
    pub db_in_use: u64,
}

#[derive(Debug, Default)]
pub struct State {
    pub members: Vec<Member>,
    /// key → (value, lease)
    pub kv: BTreeMap<String, (String, u64)>,
    /// lease → (TTL in seconds, when it expires on the mock's clock). An expired lease is gone,
    /// with its keys, at the next request, as etcd's lessor revokes it.
    pub leases: BTreeMap<u64, (u64, f64)>,
    /// Added to the wall clock: a test moves time on (a holder paused past its TTL) without
    /// sleeping.
    pub skew: f64,
    pub leader: u64,
    pub cluster_version: String,
    /// The target of an enabled downgrade.
    pub downgrade: Option<String>,
    /// Every downgrade action asked (`VALIDATE 3.5`, ...), in order.
    pub downgrade_actions: Vec<String>,
    /// path → what every member answers there instead (a hostile member).
    pub overrides: BTreeMap<String, Response>,
    /// (member index, path) of every request, in order.
    pub log: Vec<(usize, String)>,
    /// Raised alarms: (member ID, `NOSPACE` | `CORRUPT`).
    pub alarms: Vec<(u64, String)>,
    /// How long a defragmentation takes; the member answers nothing else meanwhile.
    pub defrag_time: std::time::Duration,
    /// Every defragmentation: (member index, start, end) on the mock's clock.
    pub defrags: Vec<(usize, f64, f64)>,
    /// Members defragmenting now.
    pub defragmenting: Vec<usize>,
    /// Members that answer nothing (a hung process), and (n, member): that member hangs once the
    /// n-th defragmentation is over.
    pub silent: Vec<usize>,
    pub silent_after_defrags: Option<(usize, usize)>,
    /// The revision compacted to (physically), and the store's revision.
    pub compacted: u64,
    pub revision: u64,
    next: u64,
}

impl State {
    fn index_of(&self, id: u64) -> Option<usize> {
        self.members.iter().position(|m| m.id == id)
    }

    /// The mock's clock: the wall clock plus `skew`.
    pub fn clock(&self) -> f64 {
        now() + self.skew
    }

    /// Expired leases revoked, their keys deleted.
    fn expire(&mut self) {
        let t = self.clock();
        let gone: Vec<u64> = self
            .leases
            .iter()
            .filter(|(_, (_, until))| *until <= t)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.leases.remove(&id);
            self.kv.retain(|_, (_, lease)| *lease != id);
        }
    }
}

/// The cluster's PKI: a CA, a client certificate, a server certificate per member address.
pub struct Pki {
    pub ca_pem: String,
    ca: Issuer<'static, KeyPair>,
    pub client: (String, String),
}

impl Pki {
    fn new() -> Pki {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, "mock etcd CA");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let ca_pem = p.self_signed(&key).unwrap().pem();
        let ca = Issuer::new(p, key);
        let client = Pki::leaf(&ca, &[]);
        Pki { ca_pem, ca, client }
    }

    fn leaf(ca: &Issuer<'static, KeyPair>, ips: &[&str]) -> (String, String) {
        let p =
            CertificateParams::new(ips.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let key = KeyPair::generate().unwrap();
        (p.signed_by(&key, ca).unwrap().pem(), key.serialize_pem())
    }

    fn server(&self, addr: &str) -> (String, String) {
        Pki::leaf(&self.ca, &[addr])
    }
}

pub struct MockCluster {
    pub state: Arc<Mutex<State>>,
    servers: Mutex<Vec<Option<Server>>>,
    pub port: u16,
    pub pki: Pki,
}

pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

impl MockCluster {
    /// `n` members `etcd-node<i+1>` at `127.0.0.<i+1>`, all started, healthy, on 3.5.1; the first
    /// leads.
    pub fn start(n: usize) -> MockCluster {
        let mut members = Vec::new();
        for i in 0..n {
            members.push(Member {
                id: 0x1000 + i as u64,
                name: format!("etcd-node{}", i + 1),
                addr: format!("127.0.0.{}", i + 1),
                learner: false,
                started: true,
                unhealthy: None,
                version: "3.5.1".into(),
                started_at: now() - 100.0,
                raft_index: 100,
                db_size: 1 << 20,
                db_in_use: 1 << 20,
            });
        }
        let state = State {
            leader: 0x1000,
            cluster_version: "3.5.0".into(),
            members,
            next: 0x2000,
            revision: 100,
            ..State::default()
        };
        let mut c = MockCluster {
            state: Arc::new(Mutex::new(state)),
            servers: Mutex::new(Vec::new()),
            port: 0,
            pki: Pki::new(),
        };
        // One port free on every member's address.
        for _ in 0..20 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap();
            c.port = port;
            let servers: Vec<Option<Server>> = (0..n).map(|i| c.serve(i)).collect();
            let all = servers.iter().all(Option::is_some);
            c.servers = Mutex::new(servers);
            if all {
                return c;
            }
        }
        panic!("no port free on 127.0.0.1..{n}");
    }

    fn serve(&self, i: usize) -> Option<Server> {
        let addr = self.with(|s| s.members[i].addr.clone());
        let (cert, key) = self.pki.server(&addr);
        let tls = Tls {
            cert_pem: cert,
            key_pem: key,
            client_ca_pem: Some(self.pki.ca_pem.clone()),
        };
        let state = self.state.clone();
        let h: Handler = Arc::new(move |r| answer(&state, i, r));
        // The port may still be held a moment after a stop.
        (0..50).find_map(|_| {
            Server::start(
                &format!("{addr}:{}", self.port),
                Some(tls.clone()),
                h.clone(),
            )
            .map_err(|_| std::thread::sleep(std::time::Duration::from_millis(20)))
            .ok()
        })
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut lock(&self.state))
    }

    pub fn url(&self, i: usize) -> String {
        format!("https://127.0.0.{}:{}", i + 1, self.port)
    }

    /// Member `i`'s process stops: its port refuses. A leader that stops is followed by another
    /// started voter (etcd elects one within an election timeout).
    pub fn stop(&self, i: usize) {
        self.servers.lock().unwrap()[i] = None;
        let down: Vec<bool> = self
            .servers
            .lock()
            .unwrap()
            .iter()
            .map(Option::is_none)
            .collect();
        self.with(|s| {
            if s.leader != s.members[i].id {
                return;
            }
            s.leader = s
                .members
                .iter()
                .enumerate()
                .find(|(k, m)| !down[*k] && m.started && !m.learner)
                .map_or(0, |(_, m)| m.id);
        });
    }

    /// Moves the mock's clock on by `secs` (leases expire as they would have).
    pub fn advance(&self, secs: f64) {
        self.with(|s| s.skew += secs);
    }

    /// Member `i` runs a new process: started now, caught up with the leader.
    pub fn restart(&self, i: usize) {
        self.with(|s| {
            let top = s.members.iter().map(|m| m.raft_index).max().unwrap_or(0);
            let m = &mut s.members[i];
            m.started_at = now();
            m.raft_index = top;
        });
        let down = self.servers.lock().unwrap()[i].is_none();
        if down {
            let server = self.serve(i);
            self.servers.lock().unwrap()[i] = server;
        }
    }

    /// A TLS client with the cluster's CA and client certificate.
    pub fn client(&self) -> reqwest::blocking::Client {
        let mut id = self.pki.client.0.clone().into_bytes();
        id.extend(self.pki.client.1.as_bytes());
        reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .no_proxy()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.pki.ca_pem.as_bytes()).unwrap(),
            )
            .identity(reqwest::Identity::from_pem(&id).unwrap())
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap()
    }

    /// A seed for member `this` (0-based): every member, this node's address pinned, the client
    /// port of the mock, the certificates inline; then `extra` seed lines.
    pub fn seed(&self, this: usize, extra: &str) -> String {
        let indent = |pem: &str| {
            pem.lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        };
        let members: String = self.with(|s| {
            s.members
                .iter()
                .filter(|m| m.started)
                .map(|m| format!("  - {{name: {}, address: {}}}\n", m.name, m.addr))
                .collect()
        });
        format!(
            "etcd_interface: lo\netcd_address: 127.0.0.{}\netcd_client_port: {}\netcd_peer_port: {}\n\
             etcd_members:\n{members}etcd_certificates: []\netcd_certificate_data:\n  \
             ca-etcd.pem: |\n{}  cert-etcd-client.pem: |\n{}  cert-etcd-client-key.pem: |\n{}{extra}",
            this + 1,
            self.port,
            self.port + 1,
            indent(&self.pki.ca_pem),
            indent(&self.pki.client.0),
            indent(&self.pki.client.1),
        )
    }

    /// The resolved config of a node `name` at `addr` that is no member of the mock yet (it
    /// joins): the seed lists the running members and it, with `extra` lines.
    pub fn joining(&self, name: &str, addr: &str, extra: &str) -> Config {
        let mut text = self.seed(0, extra).replacen(
            "etcd_address: 127.0.0.1\n",
            &format!("etcd_address: {addr}\n"),
            1,
        );
        text = text.replacen(
            "etcd_members:\n",
            &format!("etcd_members:\n  - {{name: {name}, address: {addr}}}\n"),
            1,
        );
        let seed = Seed::parse("mock", &text).unwrap();
        let ip = addr.parse().unwrap();
        seed.resolve(&Facts::of_member(name, "lo", ip), ip).unwrap()
    }

    /// The resolved config of member `this`, from `seed`.
    pub fn config(&self, this: usize, extra: &str) -> Config {
        let seed = Seed::parse("mock", &self.seed(this, extra)).unwrap();
        let (name, addr) =
            self.with(|s| (s.members[this].name.clone(), s.members[this].addr.clone()));
        let ip = addr.parse().unwrap();
        seed.resolve(&Facts::of_member(&name, "lo", ip), ip)
            .unwrap()
    }
}
