//! `etcd_backup` and `etcd_maintenance` as day-2 steps: their units are installed with the rest;
//! the timer that runs `etcd-bootstrap backup` (`cluster::backup`) or `etcd-bootstrap maintain`
//! (`cluster::maintain`) is enabled once etcd runs.

use super::{Context, Step};
use crate::seed::Config;
use anyhow::{Context as _, Result};

/// A timer enabled (and started on a live system) once etcd runs.
pub struct TimerStep {
    timer: String,
    /// What it does, for the log: "a snapshot every 1h".
    does: String,
}

impl TimerStep {
    pub fn new(timer: String, does: String) -> TimerStep {
        TimerStep { timer, does }
    }
}

impl Step for TimerStep {
    fn preview(&self, cx: &Context, _cfg: &Config) -> Vec<String> {
        if cx.services.is_enabled(&self.timer) {
            vec![]
        } else {
            vec![format!("enable    unit   {}", self.timer)]
        }
    }

    fn after_start(&mut self, cx: &Context, _cfg: &Config) -> Result<()> {
        let timer = &self.timer;
        if cx.services.is_enabled(timer) {
            return Ok(());
        }
        cx.services
            .enable(timer)
            .with_context(|| format!("enabling {timer}"))?;
        log::info!("enabled {timer}: {}", self.does);
        if cx.live_start {
            cx.services.start(timer)?;
        }
        Ok(())
    }
}
