//! The role's defaults for everything that is not a scalar key (those are in `schema`, each with its
//! own default).

pub const DEFAULT_VERSION: &str = "3.6.14";

/// The role's defaults for the newest release line. `enable-v2` is gone (removed in 3.6) and
/// addresses come from `etcd_address_url`, which brackets IPv6 and honours `etcd_address`.
pub const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("name", "{{ etcd_member_name }}"),
    ("cert-file", "{{ etcd_conf_dir }}/cert-etcd-server.pem"),
    ("key-file", "{{ etcd_conf_dir }}/cert-etcd-server-key.pem"),
    ("trusted-ca-file", "{{ etcd_conf_dir }}/ca-etcd.pem"),
    ("peer-cert-file", "{{ etcd_conf_dir }}/cert-etcd-peer.pem"),
    ("peer-key-file", "{{ etcd_conf_dir }}/cert-etcd-peer-key.pem"),
    ("peer-trusted-ca-file", "{{ etcd_conf_dir }}/ca-etcd.pem"),
    ("advertise-client-urls", "https://{{ etcd_address_url }}:{{ etcd_client_port }}"),
    ("initial-advertise-peer-urls", "https://{{ etcd_address_url }}:{{ etcd_peer_port }}"),
    ("listen-peer-urls", "https://{{ etcd_address_url }}:{{ etcd_peer_port }}"),
    (
        "listen-client-urls",
        "https://{{ etcd_address_url }}:{{ etcd_client_port }},https://127.0.0.1:{{ etcd_client_port }}",
    ),
    ("peer-client-cert-auth", "true"),
    ("client-cert-auth", "true"),
    ("initial-cluster-token", "etcd-cluster-0"),
    ("initial-cluster-state", "new"),
    ("data-dir", "{{ etcd_data_dir }}"),
    ("wal-dir", ""),
    ("auto-compaction-retention", "0"),
    ("snapshot-count", "100000"),
    ("heartbeat-interval", "100"),
    ("election-timeout", "1000"),
    ("max-snapshots", "5"),
    ("max-wals", "5"),
    ("quota-backend-bytes", "0"),
    ("logger", "zap"),
    ("log-outputs", "systemd/journal"),
    ("discovery-srv", ""),
];

pub const DEFAULT_SERVICE_OPTIONS: &[&str] = &[
    "User={{ etcd_user }}",
    "Group={{ etcd_group }}",
    "Restart=on-failure",
    "RestartSec=5",
    "Type=notify",
    "ProtectHome=true",
    "PrivateTmp=true",
    "ProtectSystem=full",
    "ProtectKernelModules=true",
    "ProtectKernelTunables=true",
    "ProtectControlGroups=true",
    "CapabilityBoundingSet=~CAP_SYS_PTRACE",
];

/// The role's list minus `ca-etcd-key.pem`: a node never needs the CA's private key.
pub const DEFAULT_CERTIFICATES: &[&str] = &[
    "ca-etcd.pem",
    "cert-etcd-peer.pem",
    "cert-etcd-peer-key.pem",
    "cert-etcd-server.pem",
    "cert-etcd-server-key.pem",
];

/// `etcd_backup`'s keys when the seed leaves them out: (dir, interval, keep).
pub const BACKUP_DIR: &str = "/var/backups/etcd";
pub const BACKUP_INTERVAL: &str = "1h";
pub const BACKUP_KEEP: &str = "24";

/// `etcd_maintenance`'s keys when the seed leaves them out. A defragmentation stalls the member
/// for about a second per GiB: 50 % of a file over 100 MiB is worth it, every 6 h is often enough
/// for a Kubernetes cluster (which compacts every 5 min).
pub const MAINTENANCE_INTERVAL: &str = "6h";
pub const MAINTENANCE_FRAGMENTATION: &str = "50";
pub const MAINTENANCE_MIN_DB_SIZE: &str = "100MiB";
pub const MAINTENANCE_COMPACT_KEEP: &str = "0";
