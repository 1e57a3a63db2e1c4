//! Seed -> `Config`: defaults applied, every template rendered with the facts, types checked.
//! One file per concern; each reports a mistake as a seed error at the key's place.

mod day2;
mod dirs;
mod members;
mod offsite;
mod scalars;
mod settings;

pub use members::find_self;

use super::config::{Config, ReleaseSpec};
use super::template;
use super::Seed;
use crate::facts::Facts;
use anyhow::Result;
use minijinja::{Environment, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Renders seed values with the facts and the variables known so far; a failure is a seed error
/// naming the key and its place.
struct Render<'a> {
    seed: &'a Seed,
    env: Environment<'static>,
    facts: &'a Facts,
    vars: BTreeMap<String, Value>,
}

impl<'a> Render<'a> {
    fn new(seed: &'a Seed, facts: &'a Facts, address: Option<IpAddr>) -> Render<'a> {
        Render {
            seed,
            env: template::environment(&facts.home.to_string_lossy()),
            facts,
            vars: template::fact_values(facts, address),
        }
    }

    fn set(&mut self, key: &str, v: Value) {
        self.vars.insert(key.to_string(), v);
    }

    /// `raw` rendered (a value with no template stays as it is), then checked for control
    /// characters.
    fn render(&self, key: &str, raw: &str) -> Result<String> {
        let out = if template::is_template(raw) {
            let ctx = template::context(self.facts, self.vars.clone());
            self.env.render_str(raw, &ctx).map_err(|e| {
                self.seed
                    .error(key, raw, template::explain(&self.env, raw, &ctx, &e))
            })?
        } else {
            raw.to_string()
        };
        no_control(self.seed, key, raw, &out)?;
        Ok(out)
    }
}

impl Seed {
    /// The interface to read and, when the seed pins one, the address to use instead.
    /// Needs only the facts that exist before any interface is up.
    pub fn interface_and_override(&self, facts: &Facts) -> Result<(String, Option<IpAddr>)> {
        let r = Render::new(self, facts, None);
        let s = scalars::render(&r)?;
        Ok((scalars::interface(self, &s)?, scalars::address(self, &s)?))
    }

    /// The release part of the seed, rendered with the facts that exist before any interface is up.
    pub fn release(&self, facts: &Facts) -> Result<ReleaseSpec> {
        let r = Render::new(self, facts, None);
        scalars::release(self, &scalars::render(&r)?)
    }

    /// Applies defaults, renders every template with the facts, and checks types.
    pub fn resolve(&self, facts: &Facts, address: IpAddr) -> Result<Config> {
        let mut r = Render::new(self, facts, Some(address));
        let s = scalars::render(&r)?;
        for (k, v) in s.iter() {
            r.set(k, Value::from(v.clone()));
        }
        // A node without an inventory may still know its address when the interface has none of the
        // role's `ipv4` shape; etcd_address is always the address in use.
        r.set("etcd_address", Value::from(address.to_string()));
        // Members first: which one this node is decides `etcd_member_name` for the settings.
        let (members, this_member) = members::resolve(self, &mut r, address)?;
        let (client_port, peer_port) = scalars::ports(self, &s)?;
        let settings = settings::settings(self, &mut r, &members, peer_port)?;
        let service_options = settings::service_options(self, &r)?;
        let (certificates, certificate_data) = settings::certificates(self, &r)?;
        for key in ["etcd_user", "etcd_group", "etcd_service_name"] {
            scalars::plain_word(self, &s, key)?;
        }
        let day2 = day2::resolve(self, &r, &settings)?;
        let restart_timeout = day2::duration(self, &r, "etcd_restart_timeout")?;
        let allow_downgrade = day2::boolean(self, &r, "etcd_allow_downgrade")?;
        let cfg = Config {
            release: scalars::release(self, &s)?,
            bin_dir: scalars::abs(self, &s, "etcd_bin_dir")?,
            conf_dir: scalars::abs(self, &s, "etcd_conf_dir")?,
            data_dir: scalars::abs(self, &s, "etcd_data_dir")?,
            user: s.get("etcd_user").to_string(),
            group: s.get("etcd_group").to_string(),
            interface: scalars::interface(self, &s)?,
            address,
            client_port,
            peer_port,
            service_name: s
                .get("etcd_service_name")
                .trim_end_matches(".service")
                .to_string(),
            service_options,
            settings,
            certificates,
            ca_conf_directory: scalars::abs(self, &s, "etcd_ca_conf_directory")?,
            certificate_data,
            members,
            this_member,
            join: day2.join,
            backup: day2.backup,
            restore: day2.restore,
            maintenance: day2.maintenance,
            textfile_dir: match s.get("etcd_metrics_textfile_dir").trim() {
                "" => None,
                _ => Some(scalars::abs(self, &s, "etcd_metrics_textfile_dir")?),
            },
            restart_timeout,
            allow_downgrade,
        };
        dirs::not_system_dirs(self, &cfg)?;
        Ok(cfg)
    }
}

/// Refuses a value (or name) holding a character below 0x20 or DEL (surrounding whitespace, as a
/// YAML block scalar's last line break, aside): systemd ends a unit line at a carriage return, and
/// none of these belong in a flag, a path, a name or an option. The value is not repeated.
fn no_control(seed: &Seed, key: &str, raw: &str, value: &str) -> Result<()> {
    if value
        .trim()
        .chars()
        .any(|c| (c as u32) < 0x20 || c == '\x7f')
    {
        return Err(seed.error(
            key,
            raw,
            "contains a control character (a line break, tab or escape); names, paths, flags and options take none",
        ));
    }
    Ok(())
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" | "" => Some(false),
        _ => None,
    }
}
