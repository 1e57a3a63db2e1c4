//! Test-only crash points. With the `failpoints` feature, `ETCD_BOOTSTRAP_FAILPOINT=<name>` kills
//! the process with SIGKILL (as a power cut would) the first time it reaches the point `name`, and
//! `<name>:<what>` the first time it reaches it for `what`: the path being written
//! (`write-tmp:/etc/etcd/cert-etcd-peer.pem`, matched as a suffix of the path under the root), the
//! binary being unpacked (`unpack-mid:etcdctl`), the MiB a download reached (`download-mid:8MiB`).
//! Points are named by what they interrupt, so adding an item to the install moves none of them.
//! Without the feature `failpoint!` expands to nothing.

/// `failpoint!("name")` or `failpoint!("name", what)`; see `util::failpoint`.
#[macro_export]
macro_rules! failpoint {
    ($name:expr) => {
        #[cfg(feature = "failpoints")]
        $crate::util::failpoint::hit($name, "");
    };
    ($name:expr, $what:expr) => {
        #[cfg(feature = "failpoints")]
        $crate::util::failpoint::hit($name, $what);
    };
}

/// Whether the spec `want` (`name` or `name:what`) names this point.
pub fn matches(want: &str, name: &str, what: &str) -> bool {
    match want.split_once(':') {
        None => want == name,
        Some((n, w)) => n == name && (what == w || (w.starts_with('/') && what.ends_with(w))),
    }
}

#[cfg(feature = "failpoints")]
pub fn hit(name: &str, what: &str) {
    if let Ok(want) = std::env::var("ETCD_BOOTSTRAP_FAILPOINT") {
        if matches(&want, name, what) {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn points_are_named_by_what_they_interrupt() {
        use super::matches;
        assert!(matches("before-stamp", "before-stamp", ""));
        assert!(matches("write-tmp", "write-tmp", "/r/etc/etcd/a.pem"));
        assert!(matches(
            "write-tmp:/etc/etcd/a.pem",
            "write-tmp",
            "/r/etc/etcd/a.pem"
        ));
        assert!(!matches(
            "write-tmp:/etc/etcd/a.pem",
            "write-tmp",
            "/r/etc/etcd/b.pem"
        ));
        assert!(matches("download-mid:1MiB", "download-mid", "1MiB"));
        assert!(!matches("download-mid:1MiB", "download-mid", "11MiB"));
        assert!(!matches("write-tmp", "write-renamed", ""));
    }
}
