//! etcd-bootstrap: turn a seed YAML into a running etcd member.
//!
//! The job reads as named phases (see `apply`): seed -> facts -> release -> desired state -> plan -> apply -> service.
//! Each phase is a module that can be used and tested alone.

pub mod apply;
pub mod cli;
pub mod cmd;
pub mod desired;
pub mod digests;
pub mod dns;
pub mod duration;
pub mod error;
pub mod facts;
pub mod fsutil;
pub mod health;
pub mod join;
pub mod lock;
pub mod logging;
pub mod plan;
pub mod preflight;
pub mod release;
pub mod render;
pub mod seed;
pub mod snapshot;
pub mod systemd;
pub mod users;

/// Test-only crash points: with the `failpoints` feature, `ETCD_BOOTSTRAP_FAILPOINT=name` (or
/// `name:N` for the Nth time it is reached) kills the process with SIGKILL right there, as a power
/// cut would. Without the feature this expands to nothing.
#[macro_export]
macro_rules! failpoint {
    ($name:expr) => {
        #[cfg(feature = "failpoints")]
        $crate::failpoints::hit($name);
    };
}

#[cfg(feature = "failpoints")]
pub mod failpoints {
    use std::sync::atomic::{AtomicU64, Ordering};
    static HITS: AtomicU64 = AtomicU64::new(0);

    pub fn hit(name: &str) {
        let Ok(want) = std::env::var("ETCD_BOOTSTRAP_FAILPOINT") else {
            return;
        };
        let (wname, nth) = match want.split_once(':') {
            Some((n, k)) => (n.to_string(), k.parse::<u64>().unwrap_or(1)),
            None => (want.clone(), 1),
        };
        if wname == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == nth {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    }
}
