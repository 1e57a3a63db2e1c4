//! Logs go to the journal when systemd started us, else readable lines on stderr.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let prefix = match r.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            _ => "",
        };
        // Messages can carry what others sent (a member's name, etcd's journal): no escape
        // sequence reaches the terminal.
        let text = r.args().to_string();
        let _ = writeln!(
            std::io::stderr().lock(),
            "etcd-bootstrap: {prefix}{}",
            crate::util::text::printable_lines(&text)
        );
    }
    fn flush(&self) {}
}

pub fn init(verbose: bool) {
    let level = if verbose {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    };
    log::set_max_level(level);
    if systemd_journal_logger::connected_to_journal() {
        if let Ok(j) = systemd_journal_logger::JournalLog::new() {
            if j.with_syslog_identifier("etcd-bootstrap".to_string())
                .install()
                .is_ok()
            {
                return;
            }
        }
    }
    let _ = log::set_logger(&Stderr);
}
