//! Cluster-wide locks: a short lease-held key in etcd itself. The join lock makes list-then-add one
//! step (two nodes joining at once would both add themselves); the restart lock lets one member
//! restart at a time. The lease is kept alive while the lock is held (a replace waits out its
//! grace period, a restart waits for the member to catch up) and expires by itself if this process
//! dies.

use crate::etcd::api::Api;
use crate::util::error::Error;
use serde_json::json;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

pub const JOIN: &str = "etcd-bootstrap/join-lock";
pub const RESTART: &str = "etcd-bootstrap/restart-lock";
const TTL_SECS: u64 = 30;

/// Holds its own handle on the cluster, so it can outlive the caller's (a restart's turn is taken
/// before the install and kept until the member is back).
pub struct ClusterLock {
    api: Api,
    lease: Option<u64>,
    stop: Option<Sender<()>>,
    keeper: Option<JoinHandle<()>>,
}

/// Renews `lease` every third of its TTL, through whichever endpoint answers, until told to stop.
fn keep_alive(api: &Api, lease: u64) -> (Sender<()>, JoinHandle<()>) {
    let (tx, rx) = channel::<()>();
    let client = api.client.clone();
    let endpoints = api.endpoints.clone();
    let handle = std::thread::spawn(move || loop {
        match rx.recv_timeout(Duration::from_secs(TTL_SECS / 3)) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let body = json!({"ID": lease.to_string()}).to_string();
        for e in &endpoints {
            let sent = client
                .post(format!("{}/v3/lease/keepalive", e.trim_end_matches('/')))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send();
            if sent.is_ok_and(|r| r.status().is_success()) {
                break;
            }
        }
    });
    (tx, handle)
}

impl ClusterLock {
    /// Takes `key`, written with `me`. Ok(None) when another node holds it.
    pub fn acquire(api: &Api, key: &str, me: &str) -> Result<Option<ClusterLock>, Error> {
        let lease = api.grant(TTL_SECS)?;
        let mut lock = ClusterLock {
            api: Api::new(api.client.clone(), api.endpoints.clone()),
            lease: Some(lease),
            stop: None,
            keeper: None,
        };
        if !lock.api.create(key, me, lease)? {
            return Ok(None);
        }
        let (stop, keeper) = keep_alive(&lock.api, lease);
        lock.stop = Some(stop);
        lock.keeper = Some(keeper);
        Ok(Some(lock))
    }
}

impl Drop for ClusterLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(k) = self.keeper.take() {
            let _ = k.join();
        }
        if let Some(id) = self.lease.take() {
            // Best effort: the lease expires by itself.
            let _ = self.api.revoke(id);
        }
    }
}
