//! DNS for `check` to see what etcd's `--discovery-srv` will see: SRV, A and AAAA records asked of
//! the name servers in the node's own `resolv.conf` (search domains, `options` and TCP on
//! truncation included), by hickory's stub resolver. etcd resolves in its own process (Go's
//! resolver reads the same file), so asking those servers is the faithful check.

use anyhow::{bail, Context, Result};
use hickory_resolver::config::{LookupIpStrategy, ResolveHosts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::Resolver as Hickory;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Without the final dot.
    pub target: String,
}

/// A resolver configured from `ROOT/etc/resolv.conf` (the node's own), else the running system's.
pub struct Resolver {
    rt: tokio::runtime::Runtime,
    inner: Hickory<TokioRuntimeProvider>,
    /// The name servers it asks, for messages.
    pub servers: Vec<IpAddr>,
}

fn resolv_conf(root: &Path) -> Vec<u8> {
    let mine = crate::util::fs::under(root, Path::new("/etc/resolv.conf"));
    std::fs::read(&mine)
        .or_else(|_| std::fs::read("/etc/resolv.conf"))
        .unwrap_or_default()
}

impl Resolver {
    pub fn for_root(root: &Path) -> Result<Resolver> {
        let (config, mut opts) =
            hickory_resolver::system_conf::parse_resolv_conf(resolv_conf(root))
                .context("no name server in /etc/resolv.conf")?;
        if config.name_servers().is_empty() {
            bail!("no name server in /etc/resolv.conf");
        }
        let servers = config.name_servers().iter().map(|s| s.ip).collect();
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 2;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        // The host's /etc/hosts is not the node's; etcd looks peers up in DNS.
        opts.use_hosts_file = ResolveHosts::Never;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the DNS runtime")?;
        let inner = {
            let _guard = rt.enter();
            Hickory::builder_with_config(config, TokioRuntimeProvider::default())
                .with_options(opts)
                .build()
                .context("building the DNS resolver")?
        };
        Ok(Resolver { rt, inner, servers })
    }

    /// The SRV records of `name`; none when the name does not exist.
    pub fn srv(&self, name: &str) -> Result<Vec<Srv>> {
        let found = match self.rt.block_on(self.inner.srv_lookup(name)) {
            Ok(l) => l,
            Err(e) if e.is_no_records_found() => return Ok(vec![]),
            Err(e) => return Err(e.into()),
        };
        Ok(found
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some(Srv {
                    priority: s.priority,
                    weight: s.weight,
                    port: s.port,
                    target: s.target.to_string().trim_end_matches('.').to_string(),
                }),
                _ => None,
            })
            .collect())
    }

    /// A and AAAA addresses of `name`.
    pub fn addresses(&self, name: &str) -> Result<Vec<IpAddr>> {
        match self.rt.block_on(self.inner.lookup_ip(name)) {
            Ok(l) => Ok(l.iter().collect()),
            Err(e) if e.is_no_records_found() => Ok(vec![]),
            Err(e) => Err(e.into()),
        }
    }
}
