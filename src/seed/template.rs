//! Jinja rendering of seed values with Ansible-compatible facts, so the role's blocks paste verbatim.

use crate::facts::Facts;
use minijinja::{Environment, UndefinedBehavior, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The environment used for every seed value. Undefined variables are errors: a typo in a
/// variable name must not quietly become an empty flag value.
pub fn environment(home: &str) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    let home = home.to_string();
    env.add_filter("expanduser", move |s: String| -> String {
        if s == "~" {
            home.clone()
        } else if let Some(rest) = s.strip_prefix("~/") {
            format!("{}/{}", home.trim_end_matches('/'), rest)
        } else {
            s
        }
    });
    // Ansible's `bool` and `string`/`int` filters appear in pasted group_vars; keep them working.
    env.add_filter("bool", |v: Value| -> bool {
        match v.as_str() {
            Some(s) => matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "1"),
            None => v.is_true(),
        }
    });
    env
}

/// The Ansible-style per-interface fact: `{device, ipv4: {address}, ipv6: [{address}]}`.
fn interface_value(i: &crate::facts::Interface) -> Value {
    let mut m: BTreeMap<String, Value> = BTreeMap::new();
    m.insert("device".into(), Value::from(i.name.clone()));
    m.insert("active".into(), Value::from(true));
    if let Some(v4) = i.ipv4.first() {
        let mut a = BTreeMap::new();
        a.insert("address".to_string(), Value::from(v4.to_string()));
        m.insert("ipv4".into(), Value::from(a));
        let sec: Vec<Value> = i
            .ipv4
            .iter()
            .skip(1)
            .map(|x| {
                let mut a = BTreeMap::new();
                a.insert("address".to_string(), Value::from(x.to_string()));
                Value::from(a)
            })
            .collect();
        m.insert("ipv4_secondaries".into(), Value::from(sec));
    }
    let v6: Vec<Value> = i
        .ipv6
        .iter()
        .map(|x| {
            let mut a = BTreeMap::new();
            a.insert("address".to_string(), Value::from(x.to_string()));
            Value::from(a)
        })
        .collect();
    m.insert("ipv6".into(), Value::from(v6));
    Value::from(m)
}

/// Ansible names facts of interface `wg-a` as `ansible_wg_a`.
fn fact_key(iface: &str) -> String {
    iface.replace(['-', '.', ':'], "_")
}

/// Facts as Ansible exposes them at top level (`ansible_*`), plus this tool's own facts.
pub fn fact_values(facts: &Facts, address: Option<IpAddr>) -> BTreeMap<String, Value> {
    let mut top: BTreeMap<String, Value> = BTreeMap::new();
    let mut af: BTreeMap<String, Value> = BTreeMap::new();
    top.insert(
        "ansible_hostname".into(),
        Value::from(facts.hostname.clone()),
    );
    top.insert(
        "inventory_hostname".into(),
        Value::from(facts.hostname.clone()),
    );
    top.insert(
        "inventory_hostname_short".into(),
        Value::from(facts.hostname.clone()),
    );
    top.insert("ansible_fqdn".into(), Value::from(facts.nodename.clone()));
    top.insert(
        "ansible_nodename".into(),
        Value::from(facts.nodename.clone()),
    );
    top.insert(
        "ansible_architecture".into(),
        Value::from(facts.machine.clone()),
    );
    af.insert("hostname".into(), Value::from(facts.hostname.clone()));
    af.insert("fqdn".into(), Value::from(facts.nodename.clone()));
    af.insert("nodename".into(), Value::from(facts.nodename.clone()));
    af.insert("architecture".into(), Value::from(facts.machine.clone()));
    let names: Vec<Value> = facts
        .interfaces
        .iter()
        .map(|i| Value::from(i.name.clone()))
        .collect();
    top.insert("ansible_interfaces".into(), Value::from(names.clone()));
    af.insert("interfaces".into(), Value::from(names));
    for i in &facts.interfaces {
        let v = interface_value(i);
        top.insert(format!("ansible_{}", fact_key(&i.name)), v.clone());
        af.insert(fact_key(&i.name), v);
    }
    top.insert("ansible_facts".into(), Value::from(af));
    if let Some(a) = address {
        top.insert("etcd_node_address".into(), Value::from(a.to_string()));
        top.insert(
            "etcd_address_url".into(),
            Value::from(crate::seed::config::url_host(&a.to_string())),
        );
    }
    top
}

/// The full context: variables and facts at top level, and `hostvars[inventory_hostname]` pointing
/// at the same map, as in a play.
pub fn context(facts: &Facts, vars: BTreeMap<String, Value>) -> Value {
    let mut host = vars;
    let hostname = facts.hostname.clone();
    let hv = Value::from(host.clone());
    let mut hostvars = BTreeMap::new();
    hostvars.insert(hostname, hv);
    host.insert("hostvars".into(), Value::from(hostvars));
    Value::from(host)
}

/// A template error in words; for an undefined value, the names that are not defined.
pub fn explain(
    env: &minijinja::Environment<'static>,
    src: &str,
    ctx: &Value,
    e: &minijinja::Error,
) -> String {
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        if let Ok(t) = env.template_from_str(src) {
            let mut missing: Vec<String> = t
                .undeclared_variables(false)
                .into_iter()
                .filter(|n| ctx.get_attr(n).map(|v| v.is_undefined()).unwrap_or(true))
                .collect();
            missing.sort();
            if !missing.is_empty() {
                return format!(
                    "template error: undefined variable {}; it is neither a seed variable nor a fact \
                     (facts: ansible_hostname, inventory_hostname, ansible_fqdn, ansible_<iface>, ansible_facts, \
                     hostvars, etcd_member_name, etcd_address, etcd_address_url)",
                    missing.join(", ")
                );
            }
        }
        return format!(
            "template error: undefined value (an attribute or key that does not exist): {e}"
        );
    }
    template_error(e)
}

pub fn template_error(e: &minijinja::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    format!("template error: {msg}")
}
