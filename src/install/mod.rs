//! The install: the desired state built from the seed (`desired`), the plan (create / update /
//! unchanged against the target root: `plan`) and its atomic application (`apply`).

pub mod apply;
pub mod desired;
pub mod plan;
