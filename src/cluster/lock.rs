//! Cluster-wide locks: a short lease-held key in etcd itself. The join lock makes list-then-add one
//! step (two nodes joining at once would both add themselves); the restart lock lets one member
//! restart at a time. The lease is kept alive while the lock is held (a replace waits out its
//! grace period, a restart waits for the member to catch up) and expires by itself if this process
//! dies, or when the holder's own work passes its deadline.
//!
//! Renewed is what etcd says, not an HTTP 200: a keep-alive of a lease that expired is answered
//! 200 with a TTL of 0 (or none). A holder whose lease is gone has lost the lock — another member
//! may hold it now — so it asks `still_held` before each step that costs quorum, and never revokes
//! a lease it no longer holds.

use crate::etcd::api::{self, Api};
use crate::etcd::member::id_of;
use crate::util::error::Error;
use serde_json::{json, Value};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const JOIN: &str = "etcd-bootstrap/join-lock";
pub const RESTART: &str = "etcd-bootstrap/restart-lock";
pub const TTL: Duration = Duration::from_secs(30);

/// Holds its own handle on the cluster, so it can outlive the caller's (a restart's turn is taken
/// before the install and kept until the member is back).
pub struct ClusterLock {
    api: Api,
    key: String,
    lease: Option<u64>,
    /// Why the lease is no longer this holder's (set by the keeper).
    lost: Arc<Mutex<Option<String>>>,
    stop: Option<Sender<()>>,
    keeper: Option<JoinHandle<()>>,
}

/// What one keep-alive said of the lease: Some(ttl left) from a member that answered, None when
/// none did.
fn renew(api: &Api, lease: u64) -> Option<u64> {
    let body = json!({"ID": lease.to_string()}).to_string();
    api.endpoints.iter().find_map(|e| {
        let url = format!("{}/v3/lease/keepalive", e.trim_end_matches('/'));
        let req = api
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone());
        let a = api::exchange(req, &url, api::ANSWER).ok()?;
        if !a.status.is_success() {
            return None;
        }
        ttl_of(&a.text)
    })
}

/// The TTL a keep-alive answer gives the lease: 0 when etcd left it out (an expired lease), None
/// when the answer is not a keep-alive answer at all.
pub fn ttl_of(text: &str) -> Option<u64> {
    // The gateway streams: one JSON object per line, the first is the answer to ours.
    let v: Value = serde_json::from_str(text.lines().next()?).ok()?;
    let result = v.get("result")?;
    if !result.is_object() {
        return None;
    }
    Some(result.get("TTL").and_then(id_of).unwrap_or(0))
}

/// Renews `lease` every third of its TTL, through whichever endpoint answers, until told to stop,
/// until `hold_for` has passed, or until etcd says the lease is gone (then `lost` says why).
fn keep_alive(
    api: Api,
    lease: u64,
    ttl: Duration,
    hold_for: Duration,
    lost: Arc<Mutex<Option<String>>>,
) -> (Sender<()>, JoinHandle<()>) {
    let (tx, rx) = channel::<()>();
    let handle = std::thread::spawn(move || {
        let start = Instant::now();
        let mut renewed = start;
        let set = |why: String| *lost.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        loop {
            match rx.recv_timeout(ttl / 3) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            if start.elapsed() >= hold_for {
                // The holder's work is overdue: the lease is left to expire, so a holder that
                // hangs cannot keep the whole cluster from its turns.
                log::warn!(
                    "the lock held for {:.0} s is no longer renewed: the holder's work passed its deadline",
                    hold_for.as_secs_f64()
                );
                set("the holder's work passed its deadline; the lease was left to expire".into());
                return;
            }
            match renew(&api, lease) {
                Some(0) => {
                    set(format!("etcd says its lease {lease:x} expired"));
                    return;
                }
                Some(_) => renewed = Instant::now(),
                None if renewed.elapsed() >= ttl => {
                    set(format!(
                        "no member renewed its lease {lease:x} for {} s: it has expired",
                        ttl.as_secs()
                    ));
                    return;
                }
                None => {}
            }
        }
    });
    (tx, handle)
}

impl ClusterLock {
    /// Takes `key`, written with `me`, for at most `hold_for` (the holder's own deadline). Ok(None)
    /// when another node holds it.
    pub fn acquire(
        api: &Api,
        key: &str,
        me: &str,
        hold_for: Duration,
    ) -> Result<Option<ClusterLock>, Error> {
        Self::acquire_ttl(api, key, me, hold_for, TTL)
    }

    /// `acquire` with a lease of `ttl` (whole seconds, at least 1).
    pub fn acquire_ttl(
        api: &Api,
        key: &str,
        me: &str,
        hold_for: Duration,
        ttl: Duration,
    ) -> Result<Option<ClusterLock>, Error> {
        let ttl = Duration::from_secs(ttl.as_secs().max(1));
        let lease = api.grant(ttl.as_secs())?;
        let mut lock = ClusterLock {
            api: Api::new(api.client.clone(), api.endpoints.clone()),
            key: key.to_string(),
            lease: Some(lease),
            lost: Arc::new(Mutex::new(None)),
            stop: None,
            keeper: None,
        };
        if !lock.api.create(key, me, lease)? {
            return Ok(None);
        }
        let keeper_api = Api::new(api.client.clone(), api.endpoints.clone());
        let (stop, keeper) = keep_alive(keeper_api, lease, ttl, hold_for, lock.lost.clone());
        lock.stop = Some(stop);
        lock.keeper = Some(keeper);
        Ok(Some(lock))
    }

    /// Ok while the lock is still this holder's, asked of etcd now: the key exists under this
    /// lease. Fails closed: a cluster that does not say so is a lock not held.
    pub fn still_held(&self) -> Result<(), Error> {
        let lost = self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(why) = lost {
            return Err(Error::other(format!("lost {}: {why}", self.key)));
        }
        let Some(lease) = self.lease else {
            return Err(Error::other(format!("lost {}: released", self.key)));
        };
        match self.api.get_with_lease(&self.key) {
            Ok(Some((_, l))) if l == lease => Ok(()),
            Ok(Some((holder, _))) => Err(Error::other(format!(
                "lost {}: its lease {lease:x} expired and {} holds it now",
                self.key,
                crate::util::text::excerpt(&holder, 64)
            ))),
            Ok(None) => Err(Error::other(format!(
                "lost {}: its lease {lease:x} expired",
                self.key
            ))),
            Err(e) => Err(Error::other(format!(
                "cannot tell whether {} is still held: {e}",
                self.key
            ))),
        }
    }

    fn is_lost(&self) -> bool {
        self.lost
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

impl Drop for ClusterLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(k) = self.keeper.take() {
            let _ = k.join();
        }
        if let Some(id) = self.lease.take() {
            if self.is_lost() {
                // Not ours any more: nothing to release.
                return;
            }
            // Best effort: the lease expires by itself.
            let _ = self.api.revoke(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ttl_of;

    #[test]
    fn a_keep_alive_renews_only_when_etcd_gives_the_lease_a_ttl() {
        assert_eq!(
            ttl_of(r#"{"result":{"header":{},"ID":"7","TTL":"30"}}"#),
            Some(30)
        );
        // An expired lease: etcd answers 200, with the TTL left out (0).
        assert_eq!(ttl_of(r#"{"result":{"header":{},"ID":"7"}}"#), Some(0));
        assert_eq!(ttl_of(r#"{"result":{"TTL":"0"}}"#), Some(0));
        assert_eq!(ttl_of(r#"{"error":{"grpc_code":14}}"#), None);
        assert_eq!(ttl_of("{}"), None);
        assert_eq!(ttl_of("<html>"), None);
        assert_eq!(ttl_of(""), None);
    }
}
