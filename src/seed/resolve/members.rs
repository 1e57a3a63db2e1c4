//! `etcd_members`: the cluster, and which member this node is.

use super::Render;
use crate::facts::Facts;
use crate::seed::config::Member;
use crate::seed::Seed;
use crate::util::error::Error;
use anyhow::Result;
use minijinja::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The members (this node alone when the seed lists none) and this node's entry; sets
/// `etcd_member_name` and `etcd_members` for the templates that follow.
pub(super) fn resolve(
    seed: &Seed,
    r: &mut Render,
    address: IpAddr,
) -> Result<(Vec<Member>, Member)> {
    let mut members = Vec::new();
    for (i, m) in seed
        .raw
        .etcd_members
        .clone()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let name = r.render(&format!("etcd_members[{i}].name"), &m.name.0)?;
        let addr = r.render(&format!("etcd_members[{i}].address"), &m.address.0)?;
        if name.trim().is_empty() || addr.trim().is_empty() {
            return Err(seed.error(
                &format!("etcd_members[{i}]"),
                &m.name.0,
                "every member needs a non-empty name and address",
            ));
        }
        if !crate::util::text::is_plain_name(name.trim()) {
            return Err(seed.error(
                &format!("etcd_members[{i}].name"),
                &m.name.0,
                format!(
                    "is not {} (the member's certificates are written into a dir of that name)",
                    crate::util::text::PLAIN_NAME
                ),
            ));
        }
        members.push(Member {
            name: name.trim().to_string(),
            address: addr
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        });
    }
    if let Some(m) = check_unique(&members) {
        return Err(seed.error("etcd_members", "etcd_members", m));
    }
    if members.is_empty() {
        if !crate::util::text::is_plain_name(&r.facts.hostname) {
            return Err(anyhow::Error::new(Error::input(format!(
                "{}: etcd_members is not set, so this node's hostname would be its member name, but \
                 the hostname is not {}; list the members in etcd_members",
                seed.locate("etcd_members", "etcd_members", "etcd_members"),
                crate::util::text::PLAIN_NAME
            ))));
        }
        members.push(Member {
            name: r.facts.hostname.clone(),
            address: address.to_string(),
        });
    }
    let this_member = find_self(&members, r.facts, address).map_err(|m| {
        anyhow::Error::new(Error::input(format!(
            "{}: etcd_members: {m}",
            seed.locate("etcd_members", "etcd_members", "etcd_members")
        )))
    })?;
    r.set("etcd_member_name", Value::from(this_member.name.clone()));
    let list: Vec<Value> = members
        .iter()
        .map(|m| {
            let mut mm = BTreeMap::new();
            mm.insert("name".to_string(), Value::from(m.name.clone()));
            mm.insert("address".to_string(), Value::from(m.address.clone()));
            Value::from(mm)
        })
        .collect();
    r.set("etcd_members", Value::from(list));
    Ok((members, this_member))
}

/// Why the members are not unique, if they are not.
fn check_unique(members: &[Member]) -> Option<String> {
    for (i, a) in members.iter().enumerate() {
        for b in &members[i + 1..] {
            if a.name == b.name {
                return Some(format!(
                    "member name {} is listed twice; names must be unique",
                    a.name
                ));
            }
            if same_address(&a.address, &b.address) {
                return Some(format!(
                    "address {} is listed for both {} and {}; addresses must be unique",
                    a.address, a.name, b.name
                ));
            }
        }
    }
    None
}

fn same_address(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// This node is the member with its address, else the member named like its host.
pub fn find_self(
    members: &[Member],
    facts: &Facts,
    address: IpAddr,
) -> std::result::Result<Member, crate::util::error::Error> {
    if let Some(m) = members
        .iter()
        .find(|m| same_address(&m.address, &address.to_string()))
    {
        return Ok(m.clone());
    }
    if let Some(m) = members
        .iter()
        .find(|m| m.name == facts.hostname || m.name == facts.nodename)
    {
        return Ok(m.clone());
    }
    let listed: Vec<String> = members
        .iter()
        .map(|m| format!("{} ({})", m.name, m.address))
        .collect();
    Err(crate::util::error::Error::input(format!(
        "this node is not a member: its address is {address} and its hostname {}, but the members are {}; \
         add this node to etcd_members, or fix etcd_interface/etcd_address",
        facts.hostname,
        listed.join(", ")
    )))
}
