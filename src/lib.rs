//! etcd-bootstrap: turn a seed YAML into a running etcd member.
//!
//! Layers, each importing only the ones above it in this list (`tests/support/layers.py` checks it):
//!
//! 1. `util`: errors, logging, running programs, the retry loop, files, I/O adapters, HTTP, time.
//! 2. `facts` (this node) and `state` (every path the tool keeps state in).
//! 3. `seed`: parse, read, render and resolve the seed into a `Config`.
//! 4. `release` (download, verify, unpack), `render` (etcd's unit, etcdctl.env; text only),
//!    `etcd` (TLS client, v3 API, health, etcd programs), `host` (systemd, users, lock, DNS),
//!    `cert` (X.509: what a certificate says, chains, keys, when to renew).
//! 5. `install` (desired state, plan, atomic apply) and `preflight` (one check per concern).
//! 6. `cluster`: the shared mechanisms: the cluster-wide lock, the turn, restarts in turn, the
//!    upgrade path (downgrade, v2 store).
//! 7. `day2`: one room per day-2 feature (join, replace, restore, backup, maintain), each a step
//!    with one interface that `apply` calls in order, holding its job and its units;
//!    `pki`: the cluster's certificates from the cluster file.
//! 8. `status`: one screen of the node, its cluster and every feature.
//! 9. `cli` (the options of each subcommand), then `commands` (one file per subcommand, and `run`,
//!    the context each builds once).

pub mod cert;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod day2;
pub mod etcd;
pub mod facts;
pub mod host;
pub mod install;
pub mod pki;
pub mod preflight;
pub mod release;
pub mod render;
pub mod seed;
pub mod state;
pub mod status;
pub mod util;
