//! A stand-in etcd cluster in the test process, for the tests beside the code that talks to a
//! cluster (the lock, restarts, joins, status, the upgrade path): one HTTPS server per member on
//! `127.0.0.<n>:<port>` with a client-certificate check, answering the v3 JSON gateway from one
//! shared state — members, keys with leases, the leader, raft indexes, each member's process
//! start time. A test changes the state as etcd would change (a member stops, restarts, falls
//! behind) or as a hostile member would answer (`overrides`). No root, no namespace.

use crate::facts::Facts;
use crate::seed::{Config, Seed};
use crate::util::testserver::{Handler, Request, Response, Server, Tls};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

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
}

#[derive(Debug, Default)]
pub struct State {
    pub members: Vec<Member>,
    /// key → (value, lease)
    pub kv: BTreeMap<String, (String, u64)>,
    pub leases: Vec<u64>,
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
    next: u64,
}

impl State {
    fn index_of(&self, id: u64) -> Option<usize> {
        self.members.iter().position(|m| m.id == id)
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
            });
        }
        let state = State {
            leader: 0x1000,
            cluster_version: "3.5.0".into(),
            members,
            next: 0x2000,
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

    /// Member `i`'s process stops: its port refuses.
    pub fn stop(&self, i: usize) {
        self.servers.lock().unwrap()[i] = None;
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

fn lock(s: &Mutex<State>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn b64(v: &Value) -> String {
    use base64::Engine;
    let s = v.as_str().unwrap_or("");
    String::from_utf8_lossy(
        &base64::engine::general_purpose::STANDARD
            .decode(s)
            .unwrap_or_default(),
    )
    .into_owned()
}

fn enc(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn member_json(m: &Member, port: u16) -> Value {
    let mut v = json!({
        "ID": m.id.to_string(),
        "peerURLs": [format!("https://{}:{}", m.addr, port + 1)],
        "isLearner": m.learner,
    });
    if m.started {
        v["name"] = json!(m.name);
        v["clientURLs"] = json!([format!("https://{}:{}", m.addr, port)]);
    }
    v
}

/// What member `i` answers to `r`.
fn answer(state: &Mutex<State>, i: usize, r: &Request) -> Response {
    let mut s = lock(state);
    s.log.push((i, r.path.clone()));
    if let Some(o) = s.overrides.get(&r.path) {
        return o.clone();
    }
    let port: u16 = r
        .header("host")
        .and_then(|h| h.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let q = Asked {
        me: s.members[i].clone(),
        port,
        body: r.json(),
    };
    match r.path.as_str() {
        "/health" | "/version" | "/metrics" | "/v3/maintenance/status" => node(&s, &q, &r.path),
        "/v3/maintenance/downgrade" => downgrade(&mut s, &q),
        p if p.starts_with("/v3/lease/") || p.starts_with("/v3/kv/") => keys(&mut s, &q, p),
        p if p.starts_with("/v3/cluster/") || p.ends_with("transfer-leadership") => {
            membership(&mut s, &q, p)
        }
        _ => Response::new(404, "404 page not found"),
    }
}

/// Who was asked, on which port, with what body.
struct Asked {
    me: Member,
    port: u16,
    body: Value,
}

impl Asked {
    fn header(&self) -> Value {
        json!({"member_id": self.me.id.to_string(), "revision": "1"})
    }
    fn id(&self, key: &str) -> u64 {
        self.body[key]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0)
    }
}

fn ok(v: Value) -> Response {
    Response::json(200, &v)
}

fn err(code: u16, msg: &str) -> Response {
    Response::json(code, &json!({"error": msg, "message": msg, "code": 14}))
}

/// What one member says of itself.
fn node(s: &State, q: &Asked, path: &str) -> Response {
    let me = &q.me;
    match path {
        "/health" => match &me.unhealthy {
            None => ok(json!({"health": "true", "reason": ""})),
            Some(why) => Response::json(503, &json!({"health": "false", "reason": why})),
        },
        "/version" => ok(json!({"etcdserver": me.version, "etcdcluster": s.cluster_version})),
        "/metrics" => Response::new(
            200,
            format!(
                "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {}\n",
                me.started_at
            ),
        ),
        _ => {
            let mut v = json!({
                "header": q.header(), "leader": s.leader.to_string(),
                "raftIndex": me.raft_index.to_string(), "version": me.version, "isLearner": me.learner,
            });
            if minor(&me.version) >= 6 {
                v["downgradeInfo"] = json!({
                    "enabled": s.downgrade.is_some(),
                    "targetVersion": s.downgrade.clone().unwrap_or_default(),
                });
            }
            ok(v)
        }
    }
}

fn minor(version: &str) -> u32 {
    version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

/// etcd's downgrade API as 3.6 answers it: one minor below the cluster version, once.
fn downgrade(s: &mut State, q: &Asked) -> Response {
    if minor(&q.me.version) < 6 {
        return Response::new(404, "404 page not found");
    }
    let action = q.body["action"].as_str().unwrap_or("VALIDATE").to_string();
    let target = q.body["version"].as_str().unwrap_or("").to_string();
    s.downgrade_actions.push(format!("{action} {target}"));
    let header = q.header();
    if action == "CANCEL" {
        s.downgrade = None;
        return ok(json!({"header": header, "version": s.cluster_version}));
    }
    if action == "ENABLE" && s.downgrade.is_some() {
        return err(400, "etcdserver: cluster has a downgrade job in progress");
    }
    if minor(&target) + 1 != minor(&s.cluster_version) {
        return err(400, "etcdserver: invalid downgrade target version");
    }
    if action == "ENABLE" {
        s.downgrade = Some(format!("{target}.0"));
        s.cluster_version = format!("{target}.0");
    }
    ok(json!({"header": header, "version": s.cluster_version}))
}

/// Leases and keys: enough for the cluster lock.
fn keys(s: &mut State, q: &Asked, path: &str) -> Response {
    let header = q.header();
    match path {
        "/v3/lease/grant" => {
            s.next += 1;
            let id = s.next;
            s.leases.push(id);
            ok(json!({"header": header, "ID": id.to_string(), "TTL": q.body["TTL"]}))
        }
        "/v3/lease/revoke" => {
            let id = q.id("ID");
            s.leases.retain(|l| *l != id);
            s.kv.retain(|_, (_, lease)| *lease != id);
            ok(json!({"header": header}))
        }
        "/v3/lease/keepalive" => ok(json!({"result": {"header": header}})),
        "/v3/kv/range" => {
            let key = b64(&q.body["key"]);
            match s.kv.get(&key) {
                Some((v, _)) => ok(
                    json!({"header": header, "kvs": [{"key": enc(&key), "value": enc(v)}], "count": "1"}),
                ),
                None => ok(json!({"header": header})),
            }
        }
        "/v3/kv/txn" => {
            let key = b64(&q.body["compare"][0]["key"]);
            let put = &q.body["success"][0]["request_put"];
            let free = !s.kv.contains_key(&key);
            if free {
                let lease = put["lease"]
                    .as_str()
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                s.kv.insert(key, (b64(&put["value"]), lease));
            }
            ok(json!({"header": header, "succeeded": free}))
        }
        _ => Response::new(404, "404 page not found"),
    }
}

/// The member list and its changes, and leadership.
fn membership(s: &mut State, q: &Asked, path: &str) -> Response {
    let (header, port) = (q.header(), q.port);
    let list =
        |s: &State| -> Vec<Value> { s.members.iter().map(|m| member_json(m, port)).collect() };
    match path {
        "/v3/cluster/member/list" => ok(json!({"header": header, "members": list(s)})),
        "/v3/maintenance/transfer-leadership" => {
            if s.leader != q.me.id {
                return err(500, "etcdserver: not leader");
            }
            s.leader = q.id("targetID");
            ok(json!({"header": header}))
        }
        "/v3/cluster/member/add" => {
            s.next += 1;
            let m = Member {
                id: s.next,
                name: String::new(),
                addr: format!("127.0.0.{}", s.members.len() + 1),
                learner: q.body["isLearner"].as_bool().unwrap_or(false),
                started: false,
                unhealthy: None,
                version: "3.5.1".into(),
                started_at: 0.0,
                raft_index: 0,
            };
            s.members.push(m.clone());
            ok(json!({"header": header, "member": member_json(&m, port), "members": list(s)}))
        }
        "/v3/cluster/member/remove" | "/v3/cluster/member/promote" => {
            let Some(k) = s.index_of(q.id("ID")) else {
                return err(404, "etcdserver: member not found");
            };
            if path.ends_with("remove") {
                s.members.remove(k);
            } else if !s.members[k].learner {
                return err(400, "etcdserver: can only promote a learner member");
            } else {
                s.members[k].learner = false;
            }
            ok(json!({"header": header}))
        }
        _ => Response::new(404, "404 page not found"),
    }
}
