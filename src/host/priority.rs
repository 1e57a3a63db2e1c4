//! This process's CPU and I/O priority. On a node whose etcd runs, the tool's heavy work (hashing
//! and unpacking a release) must not starve etcd: a member slow to answer its peers makes the
//! whole cluster's health checks time out (seen in `make e2e-vm`: three VMs preparing an upgrade
//! at once, every member's /health a 503 after etcd's 1 s deadline).

/// While it lives, this thread (and the threads it starts) run at nice 10 with the lowest
/// best-effort I/O priority; dropped, both are back to what they were (a unit's `Nice=` or
/// `IOSchedulingClass=` included). Best effort: a kernel that refuses leaves them as they were.
pub struct Yield {
    /// The nice value and I/O priority to go back to, when they were read.
    before: Option<(i32, nix::libc::c_long)>,
}

const IOPRIO_WHO_PROCESS: nix::libc::c_long = 1;
/// IOPRIO_CLASS_BE << 13 | 7: best effort, its lowest level.
const IOPRIO_LOW: nix::libc::c_long = (2 << 13) | 7;

/// This thread's nice value and I/O priority.
fn get() -> Option<(i32, nix::libc::c_long)> {
    // getpriority's -1 is also a valid nice value: only errno tells them apart.
    nix::errno::Errno::clear();
    // SAFETY: plain syscalls reading this thread's own scheduling attributes.
    let (nice, io) = unsafe {
        (
            nix::libc::getpriority(nix::libc::PRIO_PROCESS, 0),
            nix::libc::syscall(nix::libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0),
        )
    };
    let failed = (nice == -1 && nix::errno::Errno::last_raw() != 0) || io < 0;
    (!failed).then_some((nice, io))
}

fn set((nice, ioprio): (i32, nix::libc::c_long)) -> bool {
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
        let before = get();
        if before.is_none() || !set((before.map_or(10, |(n, _)| n.max(10)), IOPRIO_LOW)) {
            log::debug!("could not lower this run's priority; going on as it was");
        }
        Yield { before }
    }
}

impl Drop for Yield {
    fn drop(&mut self) {
        if let Some(before) = self.before {
            if !set(before) {
                log::debug!("could not restore this run's priority");
            }
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

    #[test]
    fn a_nice_value_set_before_comes_back_and_a_higher_one_is_kept() {
        let seen = std::thread::spawn(|| {
            let mut seen = vec![];
            for start in [3, 15] {
                // SAFETY: this test thread's own nice value.
                assert_eq!(
                    unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, start) },
                    0
                );
                let y = super::Yield::now();
                let during = nice();
                drop(y);
                seen.push((during, nice()));
            }
            seen
        })
        .join()
        .unwrap();
        assert_eq!(seen, vec![(10, 3), (15, 15)]);
    }
}
