//! A service manager for the tests beside the code, behaving like systemd where the tool depends on
//! it: `start`/`restart` return once the job is queued and the job runs on its own thread; jobs of
//! a unit run one at a time; a stop takes `stop_delay` (the old process runs meanwhile); the main
//! process has a pid and a start time, both new after each start; a started process is
//! `activating` until it is ready (at once, unless `ready_on_start` is off: then `ready` says
//! when, as etcd's READY would). With a unit dir, unit files are read at `daemon_reload` (and at
//! a unit's first load), not at every start, and `needs_reload` compares them with the disk.
//! What a job does to the world (a mock etcd member stopping and starting) is the `on` hook's.

use super::{MainProcess, ServiceManager};
use anyhow::Result;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a job did, in order: `("start" | "stop", unit)`.
pub type Events = Arc<Mutex<Vec<(String, String)>>>;

type Hook = Arc<dyn Fn(&str, &str) + Send + Sync>;

#[derive(Default)]
struct Units {
    main: std::collections::BTreeMap<String, MainProcess>,
    /// Units whose process said it is ready.
    ready: std::collections::BTreeSet<String>,
    enabled: Vec<String>,
    /// The unit files as last loaded.
    loaded: std::collections::BTreeMap<String, Vec<u8>>,
    next_pid: u32,
}

#[derive(Clone)]
pub struct FakeServices {
    live: bool,
    units: Arc<Mutex<Units>>,
    /// Serialises the jobs of all units (enough: the tests drive one unit).
    jobs: Arc<Mutex<()>>,
    pub stop_delay: Duration,
    /// Whether a started process is ready at once (else `activating` until `ready`).
    pub ready_on_start: bool,
    /// Where unit files are read from at a reload (None: no unit files are looked at).
    pub unit_dir: Option<std::path::PathBuf>,
    /// Starts of a unit whose file on disk differed from the one loaded (the old one ran).
    pub stale_starts: Arc<Mutex<Vec<String>>>,
    pub events: Events,
    /// Called with (event, unit) when a job stops or starts a unit's process.
    on: Hook,
    /// Every call, as `systemctl` would have been called.
    pub calls: Arc<Mutex<Vec<String>>>,
    clock: Instant,
}

impl FakeServices {
    pub fn new(live: bool, on: impl Fn(&str, &str) + Send + Sync + 'static) -> FakeServices {
        FakeServices {
            live,
            units: Arc::default(),
            jobs: Arc::default(),
            stop_delay: Duration::ZERO,
            ready_on_start: true,
            unit_dir: None,
            stale_starts: Arc::default(),
            events: Arc::default(),
            on: Arc::new(on),
            calls: Arc::default(),
            clock: Instant::now(),
        }
    }

    /// `unit` runs already (as after an earlier boot).
    pub fn running(self, unit: &str) -> FakeServices {
        self.start_now(unit);
        self
    }

    fn call(&self, c: String) {
        self.calls.lock().unwrap().push(c);
    }

    /// `unit`'s process says it is ready (etcd's READY: it reached its cluster).
    pub fn ready(&self, unit: &str) {
        let mut u = self.units.lock().unwrap();
        if u.main.contains_key(unit) {
            u.ready.insert(unit.to_string());
        }
    }

    fn on_disk(&self, unit: &str) -> Option<Vec<u8>> {
        std::fs::read(self.unit_dir.as_ref()?.join(unit)).ok()
    }

    /// Loads a unit's file the first time it is used; a file changed since stays unread until a
    /// reload, and a start then runs the old one (recorded in `stale_starts`).
    fn load(&self, unit: &str) {
        let disk = self.on_disk(unit);
        let mut u = self.units.lock().unwrap();
        match (u.loaded.get(unit), disk) {
            (None, Some(d)) => {
                u.loaded.insert(unit.to_string(), d);
            }
            (Some(l), Some(d)) if *l != d => {
                self.stale_starts.lock().unwrap().push(unit.to_string());
            }
            _ => {}
        }
    }

    fn start_now(&self, unit: &str) {
        let mut u = self.units.lock().unwrap();
        u.next_pid += 100;
        let p = MainProcess {
            pid: u.next_pid,
            started_us: self.clock.elapsed().as_micros() as u64 + 1,
        };
        u.main.insert(unit.to_string(), p);
        if self.ready_on_start {
            u.ready.insert(unit.to_string());
        } else {
            u.ready.remove(unit);
        }
        drop(u);
        self.load(unit);
        self.events
            .lock()
            .unwrap()
            .push(("start".into(), unit.into()));
        (self.on)("start", unit);
    }

    fn stop_now(&self, unit: &str) {
        let mut u = self.units.lock().unwrap();
        u.main.remove(unit);
        u.ready.remove(unit);
        drop(u);
        self.events
            .lock()
            .unwrap()
            .push(("stop".into(), unit.into()));
        (self.on)("stop", unit);
    }

    /// Queues a job and returns at once, as `--no-block` does.
    fn queue(&self, unit: &str, stop: bool, start: bool) {
        let (me, unit) = (self.clone(), unit.to_string());
        std::thread::spawn(move || {
            let _one_at_a_time = me.jobs.lock().unwrap();
            if stop && me.main_process(&unit).is_some() {
                std::thread::sleep(me.stop_delay);
                me.stop_now(&unit);
            }
            if start && me.main_process(&unit).is_none() {
                me.start_now(&unit);
            }
        });
    }
}

impl ServiceManager for FakeServices {
    fn live(&self) -> bool {
        self.live
    }
    fn check_running(&self) -> Result<()> {
        Ok(())
    }
    fn daemon_reload(&self) -> Result<()> {
        self.call("daemon-reload".into());
        let Some(dir) = &self.unit_dir else {
            return Ok(());
        };
        let mut loaded = std::collections::BTreeMap::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if let Ok(b) = std::fs::read(e.path()) {
                loaded.insert(e.file_name().to_string_lossy().into_owned(), b);
            }
        }
        self.units.lock().unwrap().loaded = loaded;
        Ok(())
    }
    fn needs_reload(&self, unit: &str) -> bool {
        let disk = self.on_disk(unit);
        let u = self.units.lock().unwrap();
        matches!((u.loaded.get(unit), disk), (Some(l), Some(d)) if *l != d)
    }
    fn enable(&self, unit: &str) -> Result<()> {
        self.call(format!("enable {unit}"));
        self.units.lock().unwrap().enabled.push(unit.into());
        Ok(())
    }
    fn is_enabled(&self, unit: &str) -> bool {
        self.units.lock().unwrap().enabled.iter().any(|u| u == unit)
    }
    fn active_state(&self, unit: &str) -> super::Active {
        let u = self.units.lock().unwrap();
        match (self.live, u.main.contains_key(unit), u.ready.contains(unit)) {
            (true, true, true) => super::Active::Active,
            (true, true, false) => super::Active::Activating,
            _ => super::Active::Inactive,
        }
    }
    fn start(&self, unit: &str) -> Result<()> {
        self.call(format!("start --no-block {unit}"));
        if self.live {
            self.queue(unit, false, true);
        }
        Ok(())
    }
    fn restart(&self, unit: &str) -> Result<()> {
        self.call(format!("restart --no-block {unit}"));
        if self.live {
            self.queue(unit, true, true);
        }
        Ok(())
    }
    fn main_process(&self, unit: &str) -> Option<MainProcess> {
        self.units.lock().unwrap().main.get(unit).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The double is as unkind as systemd: a restart returns before anything happened, the old
    /// process runs through the slow stop, and the new one is another process.
    #[test]
    fn a_restart_returns_before_the_job_runs_and_the_stop_takes_its_time() {
        let mut sm = FakeServices::new(true, |_, _| {}).running("etcd.service");
        sm.stop_delay = Duration::from_millis(300);
        let before = sm.main_process("etcd.service").unwrap();
        let asked = Instant::now();
        sm.restart("etcd.service").unwrap();
        assert!(asked.elapsed() < Duration::from_millis(100));
        assert_eq!(
            sm.main_process("etcd.service"),
            Some(before),
            "the old process still runs"
        );
        assert!(sm.is_active("etcd.service"));
        while sm.main_process("etcd.service") == Some(before)
            || sm.main_process("etcd.service").is_none()
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(asked.elapsed() >= Duration::from_millis(300));
        let after = sm.main_process("etcd.service").unwrap();
        assert!(after.pid != before.pid && after.started_us > before.started_us);
        let ev: Vec<String> = sm
            .events
            .lock()
            .unwrap()
            .iter()
            .map(|(e, _)| e.clone())
            .collect();
        assert_eq!(ev, ["start", "stop", "start"]);
        let offline = FakeServices::new(false, |_, _| {});
        offline.start("x").unwrap();
        assert!(!offline.is_active("x"));
    }
}
