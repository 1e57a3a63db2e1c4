//! Counts of what a run does at its costly seams (reading the stamp, building the cluster client,
//! asking an etcd binary), per thread: a test runs a command and asks how often each happened.
//! A run's phases call these seams on the thread that runs them.

use std::cell::RefCell;
use std::collections::BTreeMap;

thread_local! {
    static COUNTS: RefCell<BTreeMap<&'static str, usize>> = const { RefCell::new(BTreeMap::new()) };
}

/// One more of `what`, on this thread.
pub fn count(what: &'static str) {
    COUNTS.with(|c| *c.borrow_mut().entry(what).or_default() += 1);
}

/// How many of `what` happened on this thread since the last `reset`.
pub fn counted(what: &str) -> usize {
    COUNTS.with(|c| c.borrow().get(what).copied().unwrap_or(0))
}

pub fn reset() {
    COUNTS.with(|c| c.borrow_mut().clear());
}

pub const STAMP_READ: &str = "stamp read";
pub const CLUSTER_CLIENT: &str = "cluster client built";
pub const ETCD_ASKED: &str = "etcd binary asked";

/// This thread's counts, for the log (`--verbose`): "stamp read 1, cluster client built 0, ...".
pub fn summary() -> String {
    [STAMP_READ, CLUSTER_CLIENT, ETCD_ASKED]
        .iter()
        .map(|w| format!("{w} {}", counted(w)))
        .collect::<Vec<_>>()
        .join(", ")
}
