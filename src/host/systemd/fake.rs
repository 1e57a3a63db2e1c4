//! A service manager for the tests beside the code, behaving like systemd where the tool depends on
//! it: `start`/`restart` return once the job is queued and the job runs on its own thread; jobs of
//! a unit run one at a time; a stop takes `stop_delay` (the old process runs meanwhile); the main
//! process has a pid and a start time, both new after each start. What a job does to the world
//! (a mock etcd member stopping and starting) is the `on` hook's.

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
    enabled: Vec<String>,
    next_pid: u32,
}

#[derive(Clone)]
pub struct FakeServices {
    live: bool,
    units: Arc<Mutex<Units>>,
    /// Serialises the jobs of all units (enough: the tests drive one unit).
    jobs: Arc<Mutex<()>>,
    pub stop_delay: Duration,
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

    fn start_now(&self, unit: &str) {
        let mut u = self.units.lock().unwrap();
        u.next_pid += 100;
        let p = MainProcess {
            pid: u.next_pid,
            started_us: self.clock.elapsed().as_micros() as u64 + 1,
        };
        u.main.insert(unit.to_string(), p);
        drop(u);
        self.events
            .lock()
            .unwrap()
            .push(("start".into(), unit.into()));
        (self.on)("start", unit);
    }

    fn stop_now(&self, unit: &str) {
        self.units.lock().unwrap().main.remove(unit);
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
        Ok(())
    }
    fn enable(&self, unit: &str) -> Result<()> {
        self.call(format!("enable {unit}"));
        self.units.lock().unwrap().enabled.push(unit.into());
        Ok(())
    }
    fn is_enabled(&self, unit: &str) -> bool {
        self.units.lock().unwrap().enabled.iter().any(|u| u == unit)
    }
    fn is_active(&self, unit: &str) -> bool {
        self.live && self.main_process(unit).is_some()
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
