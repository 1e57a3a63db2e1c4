//! Command line. The flags are a contract: tests, images and docs rely on them.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "etcd-bootstrap",
    version,
    about = "Bring up an etcd member on this node from a seed YAML",
    long_about = "Bring up an etcd member on this node from a seed YAML.\n\n\
The seed uses the variable names of the Ansible role githubixx.etcd (etcd_version, etcd_interface, \
etcd_settings, etcd_settings_user, etcd_certificates, ...) plus etcd_members, the cluster. \
`apply` downloads and verifies the etcd release, reads this node's interface address, writes the \
certificates, etcdctl.env and the systemd unit, then enables and starts etcd. It is safe to run again: \
a second run with the same seed changes nothing.\n\n\
Day 2: with initial-cluster-state: existing in etcd_settings_user, apply first adds this node to the \
running cluster through a member's v3 API (etcd_join_as_learner, etcd_replace_member); etcd_restore \
restores a snapshot into the empty data dir before etcd first starts; etcd_backup installs a snapshot \
timer that runs `etcd-bootstrap backup`.\n\n\
Exit codes: 0 done; 2 invalid seed or usage; 1 any other failure.\n\n\
Built and tested for amd64 (x86_64) and arm64 (aarch64) nodes, one static binary each; \
etcd_architecture (default: this machine's) picks the etcd release, so an amd64 host can prepare an \
arm64 image with `fetch --root`.",
    after_help = "Seed sources: a path, `-` for stdin, or a file:// or https:// URL.\n\
With --root DIR every path the seed names is a path on the target system under DIR, systemd is driven \
offline (systemctl --root=DIR enable) and nothing is started."
)]
pub struct Cli {
    /// Log more detail.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

impl Common {
    pub fn seed_arg(&self) -> crate::seed::source::SeedArg {
        crate::seed::source::SeedArg {
            src: self.seed.clone(),
            sha256: self.seed_sha256.clone(),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Seed YAML: a path, `-` for stdin, or a file:// / https:// URL. Default:
    /// /etc/etcd-bootstrap/seed.yaml, or if that does not exist the kernel command line's
    /// etcd_bootstrap.seed=<URL> (with etcd_bootstrap.seed_sha256=<hex>).
    #[arg(long, value_name = "SRC")]
    pub seed: Option<String>,
    /// The seed must have this sha256 (64 hex digits), or nothing is done.
    #[arg(long, value_name = "HEX")]
    pub seed_sha256: Option<String>,
    /// Install into this root (an image or chroot) instead of the running system.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

fn duration(s: &str) -> Result<Duration, crate::util::error::Error> {
    crate::util::time::parse_duration(s)
}

fn long_duration(s: &str) -> Result<Duration, crate::util::error::Error> {
    crate::util::time::parse_duration_up_to(s, Duration::from_secs(100 * 366 * 86400))
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Download, verify and install etcd, write its config and unit, enable and start it (joining a
    /// running cluster, or restoring a snapshot, first when the seed says so).
    Apply(ApplyArgs),
    /// Download, verify and unpack the release into the download dir only (for image builds;
    /// first boot then needs no access to the mirror).
    Fetch(FetchArgs),
    /// Print the systemd unit apply would write; change nothing.
    Render(RenderArgs),
    /// Check every member's /health over TLS with the client certificate (like `etcdctl endpoint health`).
    /// Exit 0 only when every endpoint is healthy.
    Health(HealthArgs),
    /// What this node has and what its cluster says: the etcd version installed and the seed's,
    /// when and with which seed it was applied, this member's ID and role (learner or voter,
    /// leader), every member's health and version, the cluster version, the certificates' end dates
    /// (a warning under 30 days), the newest backup's age (a warning past twice the interval), and
    /// anything pending (a restart, a promotion). Exit 0 when every line is ok, else 1.
    Status(StatusArgs),
    /// Take an etcd snapshot now (what the etcd_backup timer runs).
    ///
    /// etcdctl snapshot save from this member, verified with `snapshot status`, written 0600 as
    /// DIR/etcd-snapshot-<UTC time>-rev<revision>.db with a .sha256 beside it; then only the newest
    /// --keep are kept. Prints "<sha256>  <path>" (the sha256 etcd_restore wants). With
    /// etcd_backup.offsite, the member whose turn it is then uploads it (gzip, age when the seed
    /// names recipients) and applies offsite retention. Each run leaves its metrics in
    /// etcd_metrics_textfile_dir for node_exporter.
    ///
    /// --list lists instead: the local snapshots and this cluster's offsite ones, newest first
    /// (time, revision, size, encrypted, verified); exit 1 when the store cannot be listed.
    Backup(BackupArgs),
    /// Look after this member's database (what the etcd_maintenance timer runs).
    ///
    /// Reads the member's db size and how much of it holds data, and the cluster's alarms. Over
    /// the fragmentation threshold (and the minimum size), it defragments this member in the same
    /// cluster turn as restarts (never two members at once, never during a rolling restart, the
    /// others healthy, leadership handed away first; a leader lets fragmented followers go
    /// first), then prints the bytes reclaimed and how long the member was busy; otherwise it
    /// says why it did nothing. Under a NOSPACE alarm it compacts (if
    /// etcd_maintenance.compact_keep_revisions is set), defragments every member one at a time,
    /// the leader last, and disarms the alarm only when under 80% of the quota is in use; else it
    /// keeps the alarm, says what is needed, and exits 1. Each run is recorded for `status`.
    Maintain(MaintainArgs),
    /// Write the man pages and shell completions into DIR (for packaging).
    #[command(hide = true)]
    GenerateAssets(AssetsArgs),
    /// Check the seed, certificates, flags, members, ports and data dir before etcd starts (and, for a
    /// join, what the running cluster would do; with discovery-srv, the SRV records); change
    /// nothing. Exit 0 when all are ok or warnings, 1 on any error.
    Check(CheckArgs),
    /// Make the cluster's certificates from the seed's etcd_members: a CA, each member's server and
    /// peer certificate (covering every address and name its settings use), one client certificate.
    ///
    /// OUT/ca-etcd.pem and OUT/ca-etcd-key.pem (0600; or --ca-cert/--ca-key), OUT/<member>/ with the
    /// files the seed's settings name (cert-file, key-file, peer-cert-file, peer-key-file and the
    /// CA), OUT/client/ with a clientAuth-only pair named so etcdctl.env picks it up. Run again, it
    /// keeps every certificate that is still right and has more than --renew-before left, reissues
    /// the others with the same CA and says why; a removed member's files are left and listed.
    Pki(PkiArgs),
    /// Print one node's config, made from the seed and the `pki` output: a cloud-init user-data
    /// (the seed with its certificates, and optionally a WireGuard config) or a self-contained seed
    /// (for the kernel command line; its sha256 to pin is printed on stderr).
    NodeConfig(NodeConfigArgs),
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTypeArg {
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
    #[value(name = "rsa2048")]
    Rsa2048,
    #[value(name = "ed25519")]
    Ed25519,
}

#[derive(Args, Debug)]
pub struct PkiArgs {
    /// The cluster file (a seed with etcd_members).
    #[arg(long, value_name = "SRC")]
    pub seed: String,
    /// Where the certificates go (made 0700).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// An existing CA certificate to issue with, instead of OUT/ca-etcd.pem or a new one.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// The existing CA's private key (never copied into a member's dir).
    #[arg(long, value_name = "FILE")]
    pub ca_key: Option<PathBuf>,
    /// The key type of every new key.
    #[arg(long, value_enum, default_value_t = KeyTypeArg::EcdsaP256)]
    pub key_type: KeyTypeArg,
    /// Validity of member and client certificates, in days.
    #[arg(long, value_name = "N", default_value_t = 365)]
    pub days: u32,
    /// Validity of a new CA, in days.
    #[arg(long, value_name = "N", default_value_t = 3650)]
    pub ca_days: u32,
    /// Reissue a certificate with less than this left.
    #[arg(long, value_name = "DURATION", default_value = crate::cert::RENEW_WITHIN_TEXT, value_parser = long_duration)]
    pub renew_before: Duration,
    /// Print the plan (create / keep / renew, and why) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeConfigFormat {
    /// A cloud-init user-data (#cloud-config) writing the seed with its certificates.
    UserData,
    /// A self-contained seed with the node's certificates in etcd_certificate_data.
    Seed,
}

#[derive(Args, Debug)]
pub struct NodeConfigArgs {
    /// The cluster file `pki` was run with.
    #[arg(long, value_name = "SRC")]
    pub seed: String,
    /// The `pki` output dir.
    #[arg(long, value_name = "DIR")]
    pub pki: PathBuf,
    /// The member (its name in etcd_members).
    #[arg(long, value_name = "NAME")]
    pub node: String,
    #[arg(long, value_enum, default_value_t = NodeConfigFormat::UserData)]
    pub format: NodeConfigFormat,
    /// A WireGuard config for the node (user-data only): written 0600 as
    /// /etc/wireguard/<etcd_interface>.conf.
    #[arg(long, value_name = "FILE")]
    pub wg_conf: Option<PathBuf>,
    /// Also run `etcd-bootstrap apply` from cloud-init's runcmd (user-data only), for images
    /// without the etcd-bootstrap.service first-boot unit.
    #[arg(long)]
    pub runcmd: bool,
    /// Another file for the node (user-data only), written root's, 0600, at DEST: the offsite
    /// store's credentials and CA, for example. DEST=SRC; repeatable.
    #[arg(long, value_name = "DEST=SRC")]
    pub write_file: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub common: Common,
    /// Enable etcd but do not start or restart it.
    #[arg(long)]
    pub no_start: bool,
    /// Print the plan (create / update / unchanged for every item) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for the interface (etcd_interface) to exist and carry an address.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub wait_interface: Duration,
    /// How long to wait for another run on the same root to finish.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    pub lock_wait: Duration,
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct RenderArgs {
    #[command(flatten)]
    pub common: Common,
    /// How long to wait for the interface to carry an address.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = duration)]
    pub wait_interface: Duration,
}

#[derive(Args, Debug)]
pub struct HealthArgs {
    #[command(flatten)]
    pub common: Common,
    /// Comma-separated client URLs; default: every member's from the seed.
    #[arg(long, value_name = "URL,...")]
    pub endpoints: Option<String>,
    /// Poll with backoff until all are healthy or this long has passed (the wait for the interface
    /// to carry an address counts in it).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = duration)]
    pub wait: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: Common,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The seed to act on. Default: the seed the last apply applied
    /// (/var/lib/etcd-bootstrap/applied-seed.yaml), as the backup timer does.
    #[command(flatten)]
    pub common: Common,
    /// Directory for the snapshots. Default: the seed's etcd_backup.dir (/var/backups/etcd).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Keep only the newest N snapshots; 0 keeps every one. Default: the seed's etcd_backup.keep
    /// (0 without etcd_backup).
    #[arg(long, value_name = "N")]
    pub keep: Option<u32>,
    /// List the local and offsite snapshots, newest first; take none.
    #[arg(long, conflicts_with = "keep")]
    pub list: bool,
    /// With --list: a table, or one JSON object per snapshot.
    #[arg(long, value_enum, default_value = "text", requires = "list")]
    pub output: Output,
    /// Fetch a snapshot back from etcd_backup.offsite instead: the newest verified one (or
    /// --snapshot), decrypted with --identity when sealed, gunzipped, its sha256 checked against
    /// its meta (one that does not match is skipped for the next newest), written 0600 into the
    /// backup dir as offsite-<name>.db. Prints "<sha256>  <path>", what etcd_restore wants.
    #[arg(long, conflicts_with_all = ["list", "keep"])]
    pub download: bool,
    /// With --download: the age identity file (AGE-SECRET-KEY-1..., root's, 0600).
    #[arg(long, value_name = "FILE", requires = "download")]
    pub identity: Option<PathBuf>,
    /// With --download: this snapshot (its name in --list: <UTC time>-rev<16 hex>).
    #[arg(long, value_name = "NAME", requires = "download")]
    pub snapshot: Option<String>,
}

#[derive(Args, Debug)]
pub struct MaintainArgs {
    #[command(flatten)]
    pub common: Common,
    /// Defragment when this share (percent) of the db file holds no data. Default: the seed's
    /// etcd_maintenance.fragmentation (50).
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=99))]
    pub fragmentation: Option<u8>,
    /// ...and the db file is at least this large (like 100MiB). Default: the seed's
    /// etcd_maintenance.min_db_size (100MiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub min_db_size: Option<u64>,
    /// Before recovering from NOSPACE, compact to the current revision minus N (0: never).
    /// Default: the seed's etcd_maintenance.compact_keep_revisions (0).
    #[arg(long, value_name = "N")]
    pub compact_keep_revisions: Option<u64>,
    /// How long to wait for the turn, and for a member to answer again. Default: the seed's
    /// etcd_restart_timeout (10m).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub timeout: Option<Duration>,
}

fn parse_size(s: &str) -> Result<u64, crate::util::error::Error> {
    crate::util::size::parse_bytes(s)
        .ok_or_else(|| crate::util::error::Error::input(format!("{s}: not a size like 100MiB")))
}

#[derive(Args, Debug)]
pub struct AssetsArgs {
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub common: Common,
    /// How long to wait for the interface to carry an address.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = duration)]
    pub wait_interface: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults the README promises, as the command line parses them.
    #[test]
    fn defaults_are_the_documented_ones() {
        let cli = Cli::try_parse_from(["etcd-bootstrap", "apply"]).unwrap();
        let Command::Apply(a) = cli.command else {
            panic!("not apply")
        };
        assert_eq!(a.lock_wait, Duration::from_secs(600));
        assert_eq!(a.wait_interface, Duration::from_secs(60));
        assert_eq!(a.common.root, PathBuf::from("/"));
        let cli =
            Cli::try_parse_from(["etcd-bootstrap", "pki", "--seed", "s", "--out", "o"]).unwrap();
        let Command::Pki(p) = cli.command else {
            panic!("not pki")
        };
        assert_eq!(p.renew_before, crate::cert::RENEW_WITHIN);
        assert!(Cli::try_parse_from(["etcd-bootstrap", "apply", "--lock-wait", "banana"]).is_err());
    }
}
