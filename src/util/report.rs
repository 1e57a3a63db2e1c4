//! A report: one line per check, `ok`, `warning` or `error`, with its evidence. `check`,
//! `status` and the preflight before `apply` all speak in reports.

use crate::util::error::{Error, Kind};
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub level: Level,
    pub check: &'static str,
    pub message: String,
    /// An error the operator's input caused (the seed or the command line): exit 2.
    #[serde(skip)]
    pub input: bool,
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(transparent)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn ok(&mut self, check: &'static str, message: impl Into<String>) {
        self.push(Level::Ok, check, message)
    }
    pub fn warn(&mut self, check: &'static str, message: impl Into<String>) {
        self.push(Level::Warning, check, message)
    }
    pub fn error(&mut self, check: &'static str, message: impl Into<String>) {
        self.push(Level::Error, check, message)
    }
    /// An error in the operator's input (a flag the seed sets that etcd lacks): what they must
    /// change, so the run exits 2 when every error is one.
    pub fn input_error(&mut self, check: &'static str, message: impl Into<String>) {
        self.push(Level::Error, check, message);
        if let Some(c) = self.checks.last_mut() {
            c.input = true;
        }
    }
    /// One line per check, whatever its message quotes (a member's name or answer): control
    /// characters are escaped here, once for every report.
    fn push(&mut self, level: Level, check: &'static str, message: impl Into<String>) {
        let message = message.into();
        let message = match crate::util::text::printable(&message) {
            std::borrow::Cow::Borrowed(_) => message,
            std::borrow::Cow::Owned(escaped) => escaped,
        };
        self.checks.push(Check {
            level,
            check,
            message,
            input: false,
        })
    }
    pub fn errors(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.level == Level::Error)
            .collect()
    }
    pub fn warnings(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.level == Level::Warning)
            .collect()
    }
    pub fn text(&self) -> String {
        let mut s = String::new();
        for c in &self.checks {
            let l = match c.level {
                Level::Ok => "ok",
                Level::Warning => "warning",
                Level::Error => "error",
            };
            let _ = writeln!(s, "{l:<8} {:<8} {}", c.check, c.message);
        }
        s
    }
}

impl Report {
    /// Logs the warnings; Err naming every error (`what` says what they were found by), of kind
    /// Input when each error is the operator's input, else Other.
    pub fn stop_on_errors(&self, what: &str) -> anyhow::Result<()> {
        for w in self.warnings() {
            log::warn!("{}", w.message);
        }
        let errors = self.errors();
        if errors.is_empty() {
            return Ok(());
        }
        let kind = if errors.iter().all(|e| e.input) {
            Kind::Input
        } else {
            Kind::Other
        };
        let lines: Vec<String> = errors.iter().map(|e| format!("  {}", e.message)).collect();
        Err(Error::new(
            kind,
            format!(
                "{what} found {} problem(s); nothing was changed:\n{}",
                errors.len(),
                lines.join("\n")
            ),
        )
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_escaped_and_the_kind_follows_the_errors() {
        let mut r = Report::default();
        r.ok("seed", "fine");
        r.warn("certs", "ends\u{1b}[2J soon");
        assert!(r.stop_on_errors("the checks").is_ok());
        assert_eq!(
            r.text(),
            "ok       seed     fine\nwarning  certs    ends\\u{1b}[2J soon\n"
        );
        r.input_error("flags", "etcd 3.5.1 has no flag --enable-v3");
        let e = r.stop_on_errors("the checks").unwrap_err();
        assert_eq!(crate::util::error::exit_code(&e), 2);
        assert!(e.to_string().contains(
            "the checks found 1 problem(s); nothing was changed:\n  etcd 3.5.1 has no flag"
        ));
        r.error("ports", "2379 is taken");
        let e = r.stop_on_errors("the checks").unwrap_err();
        assert_eq!(crate::util::error::exit_code(&e), 1);
    }
}
