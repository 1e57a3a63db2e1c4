//! The join lock: a short lease-held key in the cluster. Two nodes joining at the same moment would
//! both see no pending member and both add themselves; the lock makes list-then-add one step.

use crate::etcd::api::{Api, CallError};

pub const KEY: &str = "etcd-bootstrap/join-lock";
const TTL_SECS: u64 = 30;

pub struct JoinLock<'a> {
    api: &'a Api,
    lease: Option<u64>,
}

impl<'a> JoinLock<'a> {
    /// Ok(None) when another node holds it.
    pub fn acquire(api: &'a Api, me: &str) -> Result<Option<JoinLock<'a>>, CallError> {
        let lease = api.grant(TTL_SECS)?;
        let lock = JoinLock {
            api,
            lease: Some(lease),
        };
        Ok(api.create(KEY, me, lease)?.then_some(lock))
    }
}

impl Drop for JoinLock<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.lease.take() {
            // Best effort: the lease expires by itself.
            let _ = self.api.revoke(id);
        }
    }
}
