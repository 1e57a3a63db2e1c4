//! Error classification: the exit code is decided by what kind of input was wrong, not by where it failed.

use std::fmt;

/// The seed (or the command line) is wrong: the operator must change their input. Exit code 2.
#[derive(Debug)]
pub struct InvalidSeed(pub String);

impl fmt::Display for InvalidSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidSeed {}

/// Shorthand for an `InvalidSeed` wrapped in `anyhow`.
pub fn invalid(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InvalidSeed(msg.into()))
}

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILURE: i32 = 1;
pub const EXIT_INVALID: i32 = 2;

/// 2 when anything in the chain says the seed is invalid, else 1.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.chain().any(|e| e.is::<InvalidSeed>()) {
        EXIT_INVALID
    } else {
        EXIT_FAILURE
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
