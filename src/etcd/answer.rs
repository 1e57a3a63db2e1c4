//! One answer of a member, read whole within its deadline and capped in size: the one way the
//! tool asks a member anything over HTTP (the v3 API, `/health`, `/metrics`, the lock's
//! keep-alive).

use crate::util::error::Error;
use std::time::{Duration, Instant};

/// The most a member's answer may hold: every answer the tool reads is far smaller (a member
/// list, a status, `/metrics`), and a member can send anything.
pub const MAX_BODY: u64 = 8 << 20;

/// The longest one answer of a member may take, whole: connect, headers and body. A member that
/// trickles its answer is a member that did not answer.
pub const ANSWER: Duration = Duration::from_secs(5);

/// An answer read whole within its deadline: the status and the body (capped) as text.
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub text: String,
}

/// Sends `req` and reads its whole answer within `within`, or says the member did not answer.
///
/// reqwest's blocking timeout bounds each read, not the answer: a member that sends a byte every
/// few seconds would hold a root process (and a cluster turn it holds) forever. So the exchange
/// runs on its own thread and the caller waits for it no longer than `within`; the thread left
/// behind stops at its next read past the deadline (each read is bounded by the same time).
pub fn exchange(
    req: reqwest::blocking::RequestBuilder,
    url: &str,
    within: Duration,
) -> Result<Answer, Error> {
    let deadline = Instant::now() + within;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let owned = url.to_string();
    let spawned = std::thread::Builder::new()
        .name("etcd-answer".into())
        .spawn(move || {
            let r = req
                .timeout(within)
                .send()
                .map_err(|e| {
                    Error::busy(format!("{owned}: {}", crate::util::error::chain_text(&e)))
                })
                .and_then(|resp| {
                    let status = resp.status();
                    read_capped(resp, &owned, deadline).map(|text| Answer { status, text })
                });
            let _ = tx.send(r);
        });
    if let Err(e) = spawned {
        return Err(Error::other(format!("{url}: no thread to ask it on: {e}")));
    }
    match rx.recv_timeout(within) {
        Ok(r) => r,
        Err(_) => Err(Error::busy(format!(
            "{url}: no whole answer within {} (a member that trickles did not answer)",
            crate::util::time::format_duration(within)
        ))),
    }
}

/// A response body as text, refused past `MAX_BODY`, and cut off at `deadline`.
fn read_capped(
    mut resp: reqwest::blocking::Response,
    url: &str,
    deadline: Instant,
) -> Result<String, Error> {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if Instant::now() >= deadline {
            return Err(Error::busy(format!(
                "{url}: the answer did not end in time"
            )));
        }
        let n = resp
            .read(&mut chunk)
            .map_err(|e| Error::busy(format!("{url}: reading the answer: {e}")))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() as u64 > MAX_BODY {
            return Err(Error::other(format!(
                "{url}: the answer is larger than {MAX_BODY} bytes"
            )));
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// GETs `url` and reads its body (capped, within `ANSWER`); a member that does not answer is busy.
pub fn get_text(client: &reqwest::blocking::Client, url: &str) -> Result<String, Error> {
    let a = exchange(client.get(url), url, ANSWER)?;
    if !a.status.is_success() {
        return Err(Error::busy(format!("{url}: {}", a.status)));
    }
    Ok(a.text)
}
