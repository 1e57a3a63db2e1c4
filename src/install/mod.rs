//! The install: the desired state built from the seed, the plan (create / update / unchanged against
//! the target root) and its atomic application.

pub mod desired;
pub mod plan;
