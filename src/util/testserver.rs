//! An HTTP(S) server in the test process, for the tests beside the code (they run without root and
//! without network namespaces): one thread per connection, one request per connection, answers
//! from a handler. A handler can misbehave on purpose — answer slowly, cut a body short, never
//! stop — because the code under test must survive servers that do.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send a Content-Length of the whole body, but only this many bytes of it, then close.
    pub cut_at: Option<usize>,
    /// Wait this long before answering at all.
    pub delay: Duration,
    /// After the body, keep sending this many zero bytes (a server that never stops).
    pub endless: bool,
    /// Send the body one byte at a time, this long apart (a server that trickles).
    pub trickle: Option<Duration>,
}

impl Response {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.into(),
            cut_at: None,
            delay: Duration::ZERO,
            endless: false,
            trickle: None,
        }
    }
    pub fn json(status: u16, v: &serde_json::Value) -> Response {
        Response::new(status, v.to_string()).header("Content-Type", "application/json")
    }
    /// A 200 whose body comes one byte every `pause`: each read is quick, the answer never ends
    /// in time.
    pub fn trickling(body: &str, pause: Duration) -> Response {
        Response {
            trickle: Some(pause),
            ..Response::new(200, body.to_string())
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Response {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// TLS for the server: its certificate chain and key (PEM), and the CA client certificates must
/// chain to (none: no client certificate asked).
#[derive(Clone)]
pub struct Tls {
    pub cert_pem: String,
    pub key_pem: String,
    pub client_ca_pem: Option<String>,
}

pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Requests answered so far.
    pub served: Arc<AtomicUsize>,
}

impl Server {
    /// Serves `handler` on `bind` (e.g. `127.0.0.1:0`).
    pub fn start(bind: &str, tls: Option<Tls>, handler: Handler) -> std::io::Result<Server> {
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let config = tls.map(|t| Arc::new(server_config(&t)));
        let (s, n) = (stop.clone(), served.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (h, c, n) = (handler.clone(), config.clone(), n.clone());
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                    let _ = match c {
                        Some(c) => match rustls::ServerConnection::new(c) {
                            Ok(tls) => serve(rustls::StreamOwned::new(tls, conn), &h, &n),
                            Err(_) => Ok(()),
                        },
                        None => serve(conn, &h, &n),
                    };
                });
            }
        });
        Ok(Server { addr, stop, served })
    }

    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn server_config(t: &Tls) -> rustls::ServerConfig {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(t.cert_pem.as_bytes())
        .filter_map(|c| c.ok())
        .collect();
    let key = PrivateKeyDer::from_pem_slice(t.key_pem.as_bytes()).expect("test server key");
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions");
    let builder = match &t.client_ca_pem {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca.as_bytes()).filter_map(|c| c.ok()) {
                roots.add(c).expect("test client CA");
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(chain, key)
        .expect("test server certificate")
}

fn serve(mut s: impl Read + Write, h: &Handler, served: &AtomicUsize) -> std::io::Result<()> {
    let req = {
        let mut r = BufReader::new(&mut s);
        let mut line = String::new();
        r.read_line(&mut line)?;
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            if r.read_line(&mut l)? == 0 || l.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        r.read_exact(&mut body)?;
        Request {
            method,
            path,
            headers,
            body,
        }
    };
    let resp = h(&req);
    served.fetch_add(1, Ordering::Relaxed);
    std::thread::sleep(resp.delay);
    let mut head = format!("HTTP/1.1 {} X\r\n", resp.status);
    if !resp.endless {
        head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    }
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    s.write_all(head.as_bytes())?;
    let n = resp.cut_at.unwrap_or(resp.body.len()).min(resp.body.len());
    match resp.trickle {
        Some(pause) => {
            for b in &resp.body[..n] {
                s.write_all(&[*b])?;
                s.flush()?;
                std::thread::sleep(pause);
            }
        }
        None => s.write_all(&resp.body[..n])?,
    }
    if resp.endless {
        let zeros = vec![0u8; 64 * 1024];
        loop {
            s.write_all(&zeros)?;
        }
    }
    s.flush()
}
