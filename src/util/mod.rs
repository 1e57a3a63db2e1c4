//! The bottom layer: what every other module uses and that knows nothing of etcd or the seed.

pub mod cmd;
pub mod error;
pub mod failpoint;
pub mod fs;
pub mod http;
pub mod io;
pub mod logging;
pub mod retry;
pub mod text;
pub mod time;
