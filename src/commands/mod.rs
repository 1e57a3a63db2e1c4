//! One file per subcommand; `main` dispatches to them. `run` is the context the ones that read a
//! seed start from, built once per command.

pub mod apply;
pub mod assets;
pub mod backup;
mod backup_list;
pub mod check;
pub mod fetch;
pub mod health;
pub mod maintain;
pub mod node_config;
pub mod pki;
pub mod render;
pub mod run;
pub mod status;
