//! The scheduled features' units: their timers' spread, their deadline and sandbox, what they run.

use crate::seed::testing::config;

/// The backup timer runs every interval and spreads members a tenth of it (1 s to 5 min), so
/// members installed together do not snapshot at the same moment.
#[test]
fn the_backup_timer_spreads_members_by_a_tenth_of_the_interval() {
    for (interval, spread) in [("1h", "5m"), ("10m", "1m"), ("1m", "6s"), ("30m", "3m")] {
        let cfg = config(&format!("etcd_backup: {{interval: {interval}, keep: 3}}\n"));
        let b = cfg.backup.clone().unwrap();
        let (service, timer) = crate::day2::backup::backup_units(&cfg, &b);
        assert!(
            timer.contains(&format!("OnUnitActiveSec={interval}\n")),
            "{timer}"
        );
        assert!(
            timer.contains(&format!("RandomizedDelaySec={spread}\n")),
            "{interval}: {timer}"
        );
        // No setting in the unit: backup reads the applied seed.
        assert!(
            service.contains("\nExecStart=/usr/local/bin/etcd-bootstrap backup\n"),
            "{service}"
        );
    }
}

/// The scheduled services run as root on a timer: each has a deadline for the whole run and a
/// sandbox that lets it write only where it must.
#[test]
fn the_scheduled_services_have_a_deadline_and_write_only_where_they_must() {
    let cfg =
        config("etcd_backup: {dir: /srv/snap shots, interval: 1h}\netcd_restart_timeout: 5m\n");
    let (backup, _) = crate::day2::backup::backup_units(&cfg, cfg.backup.as_ref().unwrap());
    let (maintain, _) = crate::day2::maintain::maintenance_units(&cfg, &cfg.maintenance);
    for (service, deadline, writes) in [
        (
            &backup,
            "TimeoutStartSec=3600\n",
            "ReadWritePaths=\"-/srv/snap shots\" -/var/lib/etcd-bootstrap -/run \
             -/var/lib/prometheus/node-exporter\n",
        ),
        (
            &maintain,
            "TimeoutStartSec=1500\n",
            "ReadWritePaths=-/var/lib/etcd-bootstrap -/run -/var/lib/prometheus/node-exporter\n",
        ),
    ] {
        for line in [
            deadline,
            writes,
            "ProtectSystem=strict\n",
            "NoNewPrivileges=yes\n",
            "PrivateTmp=yes\n",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\n",
        ] {
            assert!(service.contains(line), "{line}: {service}");
        }
    }
}

#[test]
fn the_maintenance_timer_runs_maintain_spread_by_a_tenth_between_1_and_30_min() {
    for (interval, spread) in [("6h", "30m"), ("2h", "12m"), ("1m", "1m")] {
        let cfg = config(&format!("etcd_maintenance: {{interval: {interval}}}\n"));
        let m = cfg.maintenance.clone();
        let (service, timer) = crate::day2::maintain::maintenance_units(&cfg, &m);
        assert!(
            timer.contains(&format!("OnUnitActiveSec={interval}\n")),
            "{timer}"
        );
        assert!(
            timer.contains(&format!("RandomizedDelaySec={spread}\n")),
            "{interval}: {timer}"
        );
        assert!(
            service.contains(
                "
ExecStart=/usr/local/bin/etcd-bootstrap maintain
"
            ) && service.contains("Requisite=etcd.service\n"),
            "{service}"
        );
    }
}
