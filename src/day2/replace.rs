//! `etcd_replace_member`: when a member may be removed to make room for this node.

use crate::etcd::api::ApiMember;
use crate::etcd::health::Checker;
use std::time::Duration;

/// A member is gone when none of its client URLs answers healthy now, nor 2 s later: a member is
/// removed only when it stays down, not for a blip (a leader election makes every member briefly
/// unhealthy).
pub fn gone(checker: &Checker, m: &ApiMember) -> bool {
    if m.client_urls.is_empty() {
        return true;
    }
    let healthy = || m.client_urls.iter().any(|u| checker.check(u).healthy);
    !(healthy() || {
        std::thread::sleep(Duration::from_secs(2));
        healthy()
    })
}
