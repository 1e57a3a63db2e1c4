//! What the tool does with a running cluster beyond one node's install: the cluster-wide lock
//! (`lock`), a member's restart in its turn (`restart`, with `instance` telling one etcd process
//! from the next), the upgrade path etcd supports (`upgrade`), with the v2 store check before 3.6
//! (`v2store`) and a minor downgrade through etcd's API (`downgrade`), one screen of a node and its
//! cluster (`status`), and a snapshot now (`backup`); `voters` says who keeps quorum while one
//! restarts. `apply`, `check`, `status` and `backup` use these; the day-2 steps (`day2`) build on
//! the lock.

pub mod backup;
pub mod downgrade;
pub mod instance;
pub mod lock;
pub mod maintain;
pub mod restart;
pub mod status;
pub mod turn;
pub mod upgrade;
pub mod v2store;
pub mod voters;

#[cfg(test)]
mod mock_tests;
#[cfg(test)]
mod promise_tests;
