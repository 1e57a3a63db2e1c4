//! The node's own machinery: systemd, the etcd account, the run lock, DNS, disk room.

pub mod disk;
pub mod dns;
pub mod lock;
pub mod priority;
pub mod systemd;
pub mod users;
