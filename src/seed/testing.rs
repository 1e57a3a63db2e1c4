//! For tests elsewhere in the crate that need a resolved `Config`: node n1 with 10.8.0.1 on wg0.

use super::{Config, Seed};
use crate::facts::{Facts, Interface};

/// Node n1 with 10.8.0.1 on wg0.
pub fn facts() -> Facts {
    Facts {
        hostname: "n1".into(),
        nodename: "n1".into(),
        machine: "x86_64".into(),
        interfaces: vec![Interface {
            name: "wg0".into(),
            ipv4: vec!["10.8.0.1".parse().unwrap()],
            ipv6: vec![],
        }],
        home: "/root".into(),
    }
}

/// `yaml` resolved on that node; panics on a seed error.
pub fn config(yaml: &str) -> Config {
    Seed::parse("t", yaml)
        .unwrap()
        .resolve(&facts(), "10.8.0.1".parse().unwrap())
        .unwrap()
}
