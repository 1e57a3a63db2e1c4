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

/// The journal gets the same escaped text as a terminal: `journalctl` prints what it holds.
struct EscapingJournal(systemd_journal_logger::JournalLog);

impl Log for EscapingJournal {
    fn enabled(&self, m: &Metadata) -> bool {
        self.0.enabled(m)
    }
    fn log(&self, r: &Record) {
        let text = r.args().to_string();
        let safe = crate::util::text::printable_lines(&text);
        self.0.log(
            &Record::builder()
                .args(format_args!("{safe}"))
                .level(r.level())
                .target(r.target())
                .module_path(r.module_path())
                .file(r.file())
                .line(r.line())
                .build(),
        );
    }
    fn flush(&self) {
        self.0.flush()
    }
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
            let j = j.with_syslog_identifier("etcd-bootstrap".to_string());
            if log::set_boxed_logger(Box::new(EscapingJournal(j))).is_ok() {
                return;
            }
        }
    }
    let _ = log::set_logger(&Stderr);
}
