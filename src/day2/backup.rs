//! `etcd_backup` as a day-2 step: the backup units are installed with the rest; the timer that
//! runs `etcd-bootstrap backup` (`cluster::backup`) is enabled once etcd runs.

use super::{Context, Step};
use crate::seed::{BackupSpec, Config};
use crate::util::time::format_duration;
use anyhow::{Context as _, Result};

/// `etcd_backup` as a step: the timer is enabled (and started on a live system) once etcd runs.
pub struct BackupStep {
    spec: BackupSpec,
}

impl BackupStep {
    pub fn new(spec: BackupSpec) -> BackupStep {
        BackupStep { spec }
    }
}

impl Step for BackupStep {
    fn preview(&self, cx: &Context, cfg: &Config) -> Vec<String> {
        let (_, timer) = cfg.backup_unit_names();
        if cx.services.is_enabled(&timer) {
            vec![]
        } else {
            vec![format!("enable    unit   {timer}")]
        }
    }

    fn after_start(&mut self, cx: &Context, cfg: &Config) -> Result<()> {
        let (_, timer) = cfg.backup_unit_names();
        if cx.services.is_enabled(&timer) {
            return Ok(());
        }
        cx.services
            .enable(&timer)
            .with_context(|| format!("enabling {timer}"))?;
        log::info!(
            "enabled {timer}: a snapshot every {}",
            format_duration(self.spec.interval)
        );
        if cx.live_start {
            cx.services.start(&timer)?;
        }
        Ok(())
    }
}
