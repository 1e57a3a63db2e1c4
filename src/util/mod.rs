//! The bottom layer: what every other module uses and that knows nothing of etcd or the seed:
//! the error type, logging, running programs, the retry loop, files, I/O adapters, HTTP, reports,
//! showing untrusted text, time.

pub mod bech32;
pub mod cmd;
pub mod error;
pub mod failpoint;
pub mod fs;
pub mod http;
pub mod io;
pub mod logging;
pub mod report;
pub mod retry;
pub mod seam;
pub mod size;
#[cfg(test)]
pub mod testserver;
pub mod text;
pub mod time;
pub mod version;
