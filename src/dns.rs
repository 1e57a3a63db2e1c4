//! Just enough DNS for `check` to see what etcd's `--discovery-srv` will see: SRV, A and AAAA over
//! UDP to the resolv.conf name servers. etcd resolves in its own process (Go's resolver reads the same
//! file), so asking those servers directly is the faithful check, and needs no resolver crate.

use anyhow::{bail, Context, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

const SRV: u16 = 33;
const A: u16 = 1;
const AAAA: u16 = 28;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// `nameserver` lines of `ROOT/etc/resolv.conf` (the node's own), else the running system's.
pub fn nameservers(root: &Path) -> Vec<IpAddr> {
    let mine = crate::fsutil::under(root, Path::new("/etc/resolv.conf"));
    let text = std::fs::read_to_string(&mine)
        .or_else(|_| std::fs::read_to_string("/etc/resolv.conf"))
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().split('%').next()?.parse().ok())
        .collect()
}

fn query_packet(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>> {
    let mut p = Vec::with_capacity(64);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]); // RD; one question, one OPT
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            bail!("{name:?} is not a DNS name");
        }
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    // EDNS0 OPT with a 4096-byte UDP size: without it answers stop at 512 bytes, about a dozen SRV
    // records.
    p.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0]);
    Ok(p)
}

/// Reads a (possibly compressed) name at `pos`; returns it and the position after it.
fn read_name(msg: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut labels = Vec::new();
    let mut end = None;
    for _ in 0..64 {
        let len = *msg.get(pos)? as usize;
        if len & 0xc0 == 0xc0 {
            let ptr = ((len & 0x3f) << 8) | *msg.get(pos + 1)? as usize;
            end.get_or_insert(pos + 2);
            pos = ptr;
            continue;
        }
        if len == 0 {
            return Some((labels.join("."), end.unwrap_or(pos + 1)));
        }
        labels.push(String::from_utf8_lossy(msg.get(pos + 1..pos + 1 + len)?).to_string());
        pos += 1 + len;
    }
    None
}

fn u16_at(msg: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]))
}

/// The answer records of type `qtype`, as (rdata offset, rdata length).
fn answers(msg: &[u8], id: u16, qtype: u16) -> Result<Vec<(usize, usize)>> {
    let bad = || anyhow::anyhow!("malformed DNS answer");
    if u16_at(msg, 0).ok_or_else(bad)? != id {
        bail!("DNS answer for another query");
    }
    if msg.get(2).ok_or_else(bad)? & 0x02 != 0 {
        bail!("the DNS answer was truncated (more records than fit in UDP)");
    }
    let rcode = msg.get(3).ok_or_else(bad)? & 0x0f;
    match rcode {
        0 => {}
        3 => return Ok(vec![]), // NXDOMAIN: no such name, so no records
        2 => bail!("the name server failed (SERVFAIL)"),
        5 => bail!("the name server refused the query"),
        r => bail!("DNS error code {r}"),
    }
    let qd = u16_at(msg, 4).ok_or_else(bad)?;
    let an = u16_at(msg, 6).ok_or_else(bad)?;
    let mut pos = 12;
    for _ in 0..qd {
        pos = read_name(msg, pos).ok_or_else(bad)?.1 + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        pos = read_name(msg, pos).ok_or_else(bad)?.1;
        let t = u16_at(msg, pos).ok_or_else(bad)?;
        let len = u16_at(msg, pos + 8).ok_or_else(bad)? as usize;
        let data = pos + 10;
        if data + len > msg.len() {
            return Err(bad());
        }
        if t == qtype {
            out.push((data, len));
        }
        pos = data + len;
    }
    Ok(out)
}

/// Asks each name server in turn (2 tries, 2 s each) and returns the first answer's message.
fn ask(servers: &[IpAddr], name: &str, qtype: u16) -> Result<(Vec<u8>, u16)> {
    if servers.is_empty() {
        bail!("no name server in /etc/resolv.conf");
    }
    let mut last = String::new();
    for server in servers {
        for attempt in 0..2u16 {
            let id = (std::process::id() as u16) ^ attempt.wrapping_mul(7919) ^ qtype;
            let r = (|| -> Result<Vec<u8>> {
                let bind: SocketAddr = if server.is_ipv4() {
                    (Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let sock = UdpSocket::bind(bind)?;
                sock.set_read_timeout(Some(Duration::from_secs(2)))?;
                sock.connect((*server, 53))?;
                sock.send(&query_packet(id, name, qtype)?)?;
                let mut buf = vec![0u8; 4096];
                let n = sock.recv(&mut buf)?;
                buf.truncate(n);
                Ok(buf)
            })();
            match r {
                Ok(msg) => return Ok((msg, id)),
                Err(e) => last = format!("{server}: {e}"),
            }
        }
    }
    bail!("no answer for {name}: {last}")
}

pub fn srv(servers: &[IpAddr], name: &str) -> Result<Vec<Srv>> {
    let (msg, id) = ask(servers, name, SRV)?;
    let mut out = Vec::new();
    for (pos, _) in answers(&msg, id, SRV).with_context(|| format!("SRV {name}"))? {
        let bad = || anyhow::anyhow!("malformed SRV record for {name}");
        out.push(Srv {
            priority: u16_at(&msg, pos).ok_or_else(bad)?,
            weight: u16_at(&msg, pos + 2).ok_or_else(bad)?,
            port: u16_at(&msg, pos + 4).ok_or_else(bad)?,
            target: read_name(&msg, pos + 6).ok_or_else(bad)?.0,
        });
    }
    Ok(out)
}

/// A and AAAA addresses of `name`. A server that refuses one of the two types (some answer only
/// what they hold) does not hide the other's answer.
pub fn addresses(servers: &[IpAddr], name: &str) -> Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for qtype in [A, AAAA] {
        let r = ask(servers, name, qtype).and_then(|(msg, id)| {
            let mut found = Vec::new();
            for (pos, len) in answers(&msg, id, qtype)? {
                match (qtype, len) {
                    (A, 4) => found.push(IpAddr::from(<[u8; 4]>::try_from(&msg[pos..pos + 4])?)),
                    (AAAA, 16) => {
                        found.push(IpAddr::from(<[u8; 16]>::try_from(&msg[pos..pos + 16])?))
                    }
                    _ => {}
                }
            }
            Ok(found)
        });
        match r {
            Ok(f) => out.extend(f),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if errors.len() == 2 {
        bail!("{}", errors.join("; "));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_queries_and_reads_compressed_answers() {
        let q = query_packet(0x1234, "_etcd-server-ssl._tcp.etcd.test", SRV).unwrap();
        assert_eq!(&q[..2], &[0x12, 0x34]);
        // An answer: the question, then one SRV whose owner is a pointer to the question's name
        // and whose target is "n1" + a pointer to "etcd.test" inside the question.
        // The answer echoes the question (the query without its OPT record).
        let mut msg = q[..q.len() - 11].to_vec();
        msg[11] = 0;
        msg[2] = 0x81;
        msg[3] = 0x80;
        msg[7] = 1; // ANCOUNT
        msg.extend_from_slice(&[0xc0, 12]);
        msg.extend_from_slice(&SRV.to_be_bytes());
        msg.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        let target_ptr = 12 + 1 + "_etcd-server-ssl".len() + 1 + "_tcp".len();
        let rdata = [
            &[0, 10, 0, 5, 0x09, 0x4c][..],
            &[2, b'n', b'1', 0xc0, target_ptr as u8][..],
        ]
        .concat();
        msg.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        msg.extend_from_slice(&rdata);
        let a = answers(&msg, 0x1234, SRV).unwrap();
        assert_eq!(a.len(), 1);
        let pos = a[0].0;
        assert_eq!(u16_at(&msg, pos + 4), Some(2380));
        assert_eq!(read_name(&msg, pos + 6).unwrap().0, "n1.etcd.test");
        // A pointer loop is refused, not followed forever.
        assert!(read_name(&[0xc0, 0], 0).is_none());
        assert!(answers(&msg, 0x9999, SRV).is_err());
        let mut truncated = msg.clone();
        truncated[2] |= 0x02;
        assert!(answers(&truncated, 0x1234, SRV).is_err());
    }
}
