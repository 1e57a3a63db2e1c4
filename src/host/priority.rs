//! This process's CPU and I/O priority. On a node whose etcd runs, the tool's heavy work (hashing
//! and unpacking a release) must not starve etcd: a member slow to answer its peers makes the
//! whole cluster's health checks time out (seen in `make e2e-vm`: three VMs preparing an upgrade
//! at once, every member's /health a 503 after etcd's 1 s deadline).

/// While it lives, this thread (and the threads it starts) run at nice 10 with the lowest
/// best-effort I/O priority; dropped, both are back to the defaults. Best effort: a kernel that
/// refuses leaves them as they were.
pub struct Yield {
    lowered: bool,
}

const IOPRIO_WHO_PROCESS: nix::libc::c_long = 1;
/// IOPRIO_CLASS_BE << 13 | 7: best effort, its lowest level.
const IOPRIO_LOW: nix::libc::c_long = (2 << 13) | 7;
/// IOPRIO_CLASS_NONE: the default, derived from the nice value.
const IOPRIO_DEFAULT: nix::libc::c_long = 0;

fn set(nice: i32, ioprio: nix::libc::c_long) -> bool {
    // SAFETY: plain syscalls on this thread's own scheduling attributes; no memory is passed.
    let (cpu, io) = unsafe {
        (
            nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, nice),
            nix::libc::syscall(nix::libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, ioprio),
        )
    };
    cpu == 0 && io == 0
}

impl Yield {
    pub fn now() -> Yield {
        let lowered = set(10, IOPRIO_LOW);
        if !lowered {
            log::debug!("could not lower this run's priority; going on at the default");
        }
        Yield { lowered }
    }
}

impl Drop for Yield {
    fn drop(&mut self) {
        if self.lowered && !set(0, IOPRIO_DEFAULT) {
            log::debug!("could not restore this run's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    /// This thread's nice value (field 19 of its stat, counted after the command name's ")").
    fn nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after = stat.rsplit_once(')').unwrap().1;
        after.split_whitespace().nth(16).unwrap().parse().unwrap()
    }

    #[test]
    fn threads_started_while_yielding_run_at_nice_10_and_the_default_comes_back() {
        // In a thread of its own: the test runner's threads keep their priority.
        let seen = std::thread::spawn(|| {
            let before = nice();
            let y = super::Yield::now();
            let during = (nice(), std::thread::spawn(nice).join().unwrap());
            drop(y);
            (before, during, nice())
        })
        .join()
        .unwrap();
        assert_eq!(seen, (0, (10, 10), 0));
    }
}
