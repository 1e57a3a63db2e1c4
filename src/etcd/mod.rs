//! Talking to etcd: the TLS client for its client port, the v3 JSON API and its member model,
//! health checks, and running the etcd programs themselves (etcd, etcdctl, etcdutl).

pub mod api;
pub mod client;
pub mod health;
pub mod tools;
