//! etcd-bootstrap: turn a seed YAML into a running etcd member.
//!
//! The job reads as named phases (see `apply`): seed -> facts -> release -> desired state -> plan -> apply -> service.
//! Each phase is a module that can be used and tested alone.

pub mod apply;
pub mod cli;
pub mod desired;
pub mod duration;
pub mod error;
pub mod facts;
pub mod fsutil;
pub mod health;
pub mod logging;
pub mod plan;
pub mod preflight;
pub mod release;
pub mod render;
pub mod seed;
pub mod systemd;
pub mod users;
