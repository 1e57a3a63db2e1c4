//! `etcd_replace_member`: when a member may be removed to make room for this node. Not when it is
//! merely unhealthy (an alarm, an election, a slow disk): only when nothing can reach it — not this
//! node, at its client or its peer URL, and not the other members, whose own metrics say they hold
//! no connection to it — and that for the whole grace period.

use crate::etcd::api::get_text;
use crate::etcd::member::is_member_url;
use crate::etcd::member::ApiMember;
use crate::seed::url_host_port;
use crate::util::error::Error;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

const CONNECT: Duration = Duration::from_secs(3);
const EVERY: Duration = Duration::from_secs(5);

/// Whether a TCP connection to the URL's host and port comes up within 3 s.
fn reachable(url: &str) -> bool {
    let Some((host, port)) = url_host_port(url) else {
        return false;
    };
    let Ok(addrs) = (host.as_str(), port).to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, CONNECT).is_ok())
}

/// Whether a member's `/metrics` shows an active peer connection to `id`: Some(true/false), or
/// None when that member did not answer.
fn sees(client: &reqwest::blocking::Client, via: &ApiMember, id: u64) -> Option<bool> {
    let want = format!("Remote=\"{id:x}\"");
    for url in via.client_urls.iter().filter(|u| is_member_url(u)) {
        let Ok(text) = get_text(client, &format!("{}/metrics", url.trim_end_matches('/'))) else {
            continue;
        };
        let active = text.lines().any(|l| {
            l.starts_with("etcd_network_active_peers{")
                && l.contains(&want)
                && l.rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
                    > 0.0
        });
        return Some(active);
    }
    None
}

/// Why `m` is not gone right now, if it is not.
fn still_there(
    client: &reqwest::blocking::Client,
    members: &[ApiMember],
    m: &ApiMember,
) -> Option<String> {
    if let Some(u) = m
        .client_urls
        .iter()
        .chain(&m.peer_urls)
        .filter(|u| is_member_url(u))
        .find(|u| reachable(u))
    {
        return Some(format!("this node reaches it at {u}"));
    }
    let others: Vec<&ApiMember> = members
        .iter()
        .filter(|o| o.id != m.id && o.started() && !o.learner)
        .collect();
    let mut asked = 0;
    for o in &others {
        match sees(client, o, m.id) {
            Some(true) => {
                return Some(format!(
                    "{} is connected to it",
                    crate::util::text::printable(&o.name)
                ))
            }
            Some(false) => asked += 1,
            None => {}
        }
    }
    (asked == 0).then(|| "no other member answered to confirm it is gone".to_string())
}

/// A member is gone when it stays unreachable, as `still_there` tells, for `grace` (checked every
/// 5 s). Err (busy): why it is not.
pub fn gone(
    client: &reqwest::blocking::Client,
    members: &[ApiMember],
    m: &ApiMember,
    grace: Duration,
) -> Result<(), Error> {
    let start = Instant::now();
    loop {
        if let Some(why) = still_there(client, members, m) {
            return Err(Error::busy(why));
        }
        if start.elapsed() >= grace {
            return Ok(());
        }
        std::thread::sleep(EVERY.min(grace.saturating_sub(start.elapsed())));
    }
}
