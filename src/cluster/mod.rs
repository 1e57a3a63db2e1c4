//! The running cluster's shared mechanisms, used by `apply` and the day-2 features: the
//! cluster-wide lock (`lock`), the turn one member takes to do what costs it its service (`turn`,
//! with `voters`: who keeps quorum meanwhile), a member's restart in its turn (`restart`, with
//! `instance` telling one etcd process from the next), the upgrade path etcd supports
//! (`upgrade`), with the v2 store check before 3.6 (`v2store`) and a minor downgrade through
//! etcd's API (`downgrade`). The features themselves (backup, maintenance, join...) are rooms in
//! `crate::day2`; `crate::status` shows them all.

pub mod downgrade;
pub mod instance;
pub mod lock;
pub mod node;
pub mod restart;
pub mod turn;
pub mod upgrade;
pub mod v2store;
pub mod voters;

#[cfg(test)]
mod mock_tests;
#[cfg(test)]
mod promise_tests;
