//! Talking to etcd: the TLS client for its client port, the v3 JSON API (`api`), the member model
//! it returns (`member`), what members say of their versions (`version`), health checks, and
//! running the etcd programs themselves (`tools`: etcd, etcdctl, etcdutl).

pub mod api;
pub mod client;
pub mod health;
pub mod member;
#[cfg(test)]
pub mod mock;
pub mod tools;
pub mod version;

#[cfg(test)]
mod mock_tests;
