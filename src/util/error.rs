//! The one error type: a message and a kind. The kind alone decides what happens next — the exit
//! code, whether a step is tried again — never where the error came from or how it is worded.
//!
//! Code returns `anyhow::Result` with context on every fallible call (coreos-installer's way); the
//! `Error` a chain was made from gives the chain its kind (context only adds words).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The seed or the command line is wrong: the operator must change their input. Exit 2.
    Input,
    /// The network or a server hiccuped (a reset, a 503, a timeout): worth another try.
    Transient,
    /// The cluster is busy (no leader, another join, a learner catching up, a member down):
    /// wait and ask again.
    Busy,
    /// Anything else (disk, checksum, systemd, a refusal): exit 1.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }
    pub fn input(message: impl Into<String>) -> Error {
        Error::new(Kind::Input, message)
    }
    pub fn transient(message: impl Into<String>) -> Error {
        Error::new(Kind::Transient, message)
    }
    pub fn busy(message: impl Into<String>) -> Error {
        Error::new(Kind::Busy, message)
    }
    pub fn other(message: impl Into<String>) -> Error {
        Error::new(Kind::Other, message)
    }
    /// Waiting and asking again can help.
    pub fn is_busy(&self) -> bool {
        matches!(self.kind, Kind::Busy | Kind::Transient)
    }
    /// The same kind, the message prefixed (`"<what>: <message>"`).
    pub fn about(self, what: impl fmt::Display) -> Error {
        Error::new(self.kind, format!("{what}: {}", self.message))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Shorthand for an input error wrapped in `anyhow`.
pub fn invalid(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Error::input(msg))
}

/// The kind of an error chain: its innermost `Error`'s, else `Other`.
pub fn kind(err: &anyhow::Error) -> Kind {
    err.chain()
        .filter_map(|e| e.downcast_ref::<Error>())
        .last()
        .map_or(Kind::Other, |e| e.kind)
}

/// The phase an error happened in, as context on its chain: `apply` says where it stopped.
#[derive(Debug, Clone, Copy)]
pub struct Phase(pub &'static str);

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The phase named in an error chain, if any.
pub fn phase(err: &anyhow::Error) -> Option<&'static str> {
    err.downcast_ref::<Phase>().map(|p| p.0)
}

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILURE: i32 = 1;
pub const EXIT_INVALID: i32 = 2;

/// The exit code, from the kind alone.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    match kind(err) {
        Kind::Input => EXIT_INVALID,
        Kind::Transient | Kind::Busy | Kind::Other => EXIT_FAILURE,
    }
}

/// An error and its sources in one line, each said once (reqwest nests the same text).
pub fn chain_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        let t = x.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = x.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    /// The exit code of every kind, however deep the error sits and whatever context is added.
    #[test]
    fn the_exit_code_comes_from_the_kind_alone() {
        let table = [
            (Kind::Input, 2),
            (Kind::Transient, 1),
            (Kind::Busy, 1),
            (Kind::Other, 1),
        ];
        for (k, code) in table {
            let e = anyhow::Error::new(Error::new(k, "inner"))
                .context("reading x")
                .context(Phase("release"));
            assert_eq!(exit_code(&e), code, "{k:?}");
            assert_eq!(kind(&e), k);
            assert_eq!(phase(&e), Some("release"));
            assert_eq!(format!("{e:#}"), "release: reading x: inner");
        }
        let plain: anyhow::Result<()> = Err(anyhow::anyhow!("disk full")).context("writing");
        assert_eq!(exit_code(&plain.unwrap_err()), 1);
    }

    #[test]
    fn busy_covers_what_passes_by_itself() {
        assert!(Error::busy("no leader").is_busy());
        assert!(Error::transient("reset").is_busy());
        assert!(!Error::input("x").is_busy() && !Error::other("x").is_busy());
        assert_eq!(
            Error::busy("no leader").about("https://a").message,
            "https://a: no leader"
        );
    }
}
