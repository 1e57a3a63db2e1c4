//! Talking to etcd: the TLS client for its client port, one answer read whole within its deadline
//! (`answer`), the v3 JSON API (`api`), the member model
//! it returns (`member`), what members say of their versions (`version`), what etcd's upgrade
//! guides say of versions and flags (`guide`), health checks, and running the etcd programs
//! themselves (`tools`: etcd, etcdctl, etcdutl).

pub mod answer;
pub mod api;
pub mod client;
pub mod guide;
pub mod health;
pub mod member;
#[cfg(test)]
pub mod mock;
pub mod tools;
pub mod version;

#[cfg(test)]
mod mock_tests;
