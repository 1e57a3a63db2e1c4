//! The node a run acts on: its resolved config and root, the run's mode, its service manager and
//! fetcher, and what the run learns once and keeps for every phase (`Known`): the previous
//! apply's stamp and the TLS client to the cluster. The cluster's mechanisms and the day-2
//! features take a `Node`; none of them reads the stamp or builds a client of its own.

use crate::host::systemd::ServiceManager;
use crate::seed::Config;
use crate::state::Stamp;
use crate::util::http::Fetcher;
use anyhow::Result;
use reqwest::blocking::Client;
use std::path::Path;
use std::sync::OnceLock;

/// What a run may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mode {
    /// Look, change nothing.
    pub dry_run: bool,
    /// This run starts (or restarts) etcd on a live system.
    pub live_start: bool,
}

/// Which certificates the cluster client presents first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certs {
    /// The seed's (a joining node talks to the cluster before it installs them).
    Seed,
    /// The ones installed on this node (a scheduled job acts on what apply installed).
    Installed,
}

/// What a run learns once: read or built on first use, the same answer for every later one.
pub struct Known {
    certs: Certs,
    stamp: OnceLock<Option<Stamp>>,
    client: OnceLock<Client>,
}

impl Known {
    pub fn new(certs: Certs) -> Known {
        Known {
            certs,
            stamp: OnceLock::new(),
            client: OnceLock::new(),
        }
    }
}

/// A node, as one run sees it.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    pub cfg: &'a Config,
    pub root: &'a Path,
    pub mode: Mode,
    pub services: &'a dyn ServiceManager,
    pub fetcher: &'a Fetcher,
    known: &'a Known,
}

impl<'a> Node<'a> {
    pub fn new(
        cfg: &'a Config,
        root: &'a Path,
        mode: Mode,
        services: &'a dyn ServiceManager,
        fetcher: &'a Fetcher,
        known: &'a Known,
    ) -> Node<'a> {
        Node {
            cfg,
            root,
            mode,
            services,
            fetcher,
            known,
        }
    }

    /// The same node and run, with a config the run settled further (a join's settings).
    pub fn with_cfg<'b>(&self, cfg: &'b Config) -> Node<'b>
    where
        'a: 'b,
    {
        Node { cfg, ..*self }
    }

    /// The record of the last successful apply, read once per run (before this run writes its own).
    pub fn stamp(&self) -> Option<&'a Stamp> {
        self.known
            .stamp
            .get_or_init(|| Stamp::load(self.root))
            .as_ref()
    }

    /// The TLS client to the cluster's client port, built once per run. A build that fails is
    /// tried again by the next caller (the certificates may have been installed since).
    pub fn client(&self) -> Result<Client> {
        if let Some(c) = self.known.client.get() {
            return Ok(c.clone());
        }
        let c = match self.known.certs {
            Certs::Seed => crate::etcd::client::tls_client(self.cfg, self.root)?,
            Certs::Installed => crate::etcd::client::tls_client_installed(self.cfg, self.root)?,
        };
        Ok(self.known.client.get_or_init(|| c).clone())
    }
}

/// A node for tests: the seed's certificates, a fetcher without a CA; live when `services` is.
/// The fetcher and what the run learns live as long as the test process.
#[cfg(test)]
pub fn for_test<'a>(cfg: &'a Config, root: &'a Path, services: &'a dyn ServiceManager) -> Node<'a> {
    let fetcher: &'static Fetcher = Box::leak(Box::new(Fetcher::new(None).expect("a fetcher")));
    let known: &'static Known = Box::leak(Box::new(Known::new(Certs::Seed)));
    let mode = Mode {
        dry_run: false,
        live_start: services.live(),
    };
    Node::new(cfg, root, mode, services, fetcher, known)
}

/// `for_test` with an offline service manager (a node under `--root`).
#[cfg(test)]
pub fn offline_for_test<'a>(cfg: &'a Config, root: &'a Path) -> Node<'a> {
    let services: &'static crate::host::systemd::fake::FakeServices = Box::leak(Box::new(
        crate::host::systemd::fake::FakeServices::new(false, |_, _| {}),
    ));
    for_test(cfg, root, services)
}
