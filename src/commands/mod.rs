//! One file per subcommand; `main` dispatches to them. `load` is what most of them start with.

pub mod apply;
pub mod assets;
pub mod backup;
pub mod check;
pub mod fetch;
pub mod health;
pub mod load;
pub mod node_config;
pub mod pki;
pub mod render;
pub mod status;
