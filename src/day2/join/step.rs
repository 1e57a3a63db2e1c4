//! The join as a day-2 step: the cluster asked (or the record read) before the install, the
//! learner promoted after the start.

use super::{dry_run, join, preview, promote, Joined, Preview};
use crate::day2::{Node, Settings, Step};
use crate::seed::JoinSpec;
use crate::state;
use crate::util::report::Report;
use anyhow::Result;

/// The join as a day-2 step: add before the install, promote after the start.
pub struct JoinStep {
    spec: JoinSpec,
    joined: Option<Joined>,
}

impl JoinStep {
    pub fn new(spec: JoinSpec) -> JoinStep {
        JoinStep { spec, joined: None }
    }
}

impl Step for JoinStep {
    fn check(&mut self, node: &Node, report: &mut Report) {
        match preview(node, &self.spec) {
            Ok(Preview::Would(j)) => report.ok("join", j.action),
            Ok(Preview::Busy(why)) => report.warn(
                "join",
                format!("apply would wait and retry (up to etcd_join_timeout): {why}"),
            ),
            // A seed mistake (a quota below the cluster's db) is the operator's to fix: exit 2.
            Err(e) if crate::util::error::kind(&e) == crate::util::error::Kind::Input => {
                report.input_error("join", format!("{e:#}"))
            }
            Err(e) => report.error("join", format!("{e:#}")),
        }
    }

    /// Only now, with the release verified and staged, is this node added to a running cluster;
    /// a failure before here leaves the cluster untouched.
    fn verify(&mut self, node: &Node) -> Result<Settings> {
        let j = if node.mode.dry_run {
            dry_run(node, &self.spec)?
        } else {
            let j = join(node, &self.spec)?;
            log::info!("join: {}", j.action);
            j
        };
        let settled = vec![("initial-cluster".to_string(), j.initial_cluster.clone())];
        self.joined = Some(j);
        Ok(settled)
    }

    fn preview(&self, _node: &Node) -> Vec<String> {
        self.joined
            .iter()
            .map(|j| format!("join      member {}", j.action))
            .collect()
    }

    fn after_start(&mut self, node: &Node) -> Result<()> {
        let Some(Joined {
            learner: true,
            id: Some(id),
            ..
        }) = self.joined
        else {
            return Ok(());
        };
        // A learner is promoted once it runs and has caught up; under --root it runs only later.
        if node.mode.live_start || state::data_dir_has_member(node.root, &node.cfg.data_dir) {
            promote(node, id, self.spec.timeout)
        } else {
            log::info!(
                "joined as learner {id:x}: once etcd runs, run apply again to promote it to a voting member"
            );
            Ok(())
        }
    }
}
