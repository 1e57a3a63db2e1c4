//! The backend quota and the room to use it: `quota-backend-bytes: 0` is etcd's 2 GiB default,
//! said so; a data dir's filesystem with less free space than the quota plus the db's current
//! size cannot hold a defragmentation (it writes a full copy) nor let the db grow to its quota.

use super::Report;
use crate::seed::{Config, Quota};
use crate::util::size::format_bytes;
use std::path::Path;

/// `check`'s and `status`'s lines on the quota and the data dir's free space.
pub fn check(r: &mut Report, cfg: &Config, root: &Path) {
    if let Some(v) = cfg.setting("quota-backend-bytes") {
        if crate::util::size::go_int64(v).is_none() {
            r.input_error(
                "quota",
                format!(
                    "quota-backend-bytes {:?} is not a whole number of bytes as etcd reads it (no \
                     units: 8 GiB is 8589934592); etcd would not start",
                    crate::util::text::excerpt(v, 40)
                ),
            );
            return;
        }
    }
    if cfg.quota() == Quota::NONE {
        r.warn(
            "quota",
            "quota-backend-bytes is negative: etcd enforces no quota, and the db may fill the disk",
        );
        return;
    }
    let Quota {
        bytes: quota,
        default,
    } = cfg.quota();
    if default {
        r.ok(
            "quota",
            format!(
                "quota-backend-bytes is 0: etcd's default, {} (set it in etcd_settings_user for \
                 more; etcd suggests at most 8 GiB)",
                format_bytes(quota)
            ),
        );
    } else {
        r.ok(
            "quota",
            format!("quota-backend-bytes {}", format_bytes(quota)),
        );
    }
    let db = crate::host::disk::db_file_size(root, &cfg.data_dir);
    let Some((at, free)) = crate::host::disk::free_at(root, &cfg.data_dir) else {
        return;
    };
    // Room for a full copy of the db (a defragmentation) and for the db to reach its quota.
    let need = quota.saturating_add(db);
    if free < need {
        r.warn(
            "disk",
            format!(
                "{} has {} free; the quota ({}) plus the db's current size ({}) needs {}: a \
                 defragmentation writes a full copy, and a db that grows to its quota has no room",
                at.display(),
                format_bytes(free),
                format_bytes(quota),
                format_bytes(db),
                format_bytes(need)
            ),
        );
    } else {
        r.ok(
            "disk",
            format!(
                "{} has {} free, room for the quota plus the db's current size",
                at.display(),
                format_bytes(free)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::testing::config;

    #[test]
    fn a_zero_quota_is_said_to_be_etcds_2_gib_and_no_room_for_the_quota_is_a_warning() {
        let root = tempfile::tempdir().unwrap();
        let mut r = Report::default();
        check(&mut r, &config(""), root.path());
        let text = r.text();
        assert!(
            text.contains("quota-backend-bytes is 0: etcd's default, 2.0 GiB"),
            "{text}"
        );

        // A quota no disk here can hold (1 EiB): the data dir's filesystem is named, with both sizes.
        let huge = config("etcd_settings_user: {quota-backend-bytes: \"1152921504606846976\"}\n");
        let mut r = Report::default();
        check(&mut r, &huge, root.path());
        let text = r.text();
        assert_eq!(r.warnings().len(), 1, "{text}");
        assert!(
            text.contains("quota-backend-bytes 1024.0 PiB")
                && text.contains(&format!("{} has ", root.path().display()))
                && text.contains("a defragmentation writes a full copy"),
            "{text}"
        );
    }

    /// #32: read as etcd reads the flag (a Go int64): units are refused (etcd would not start),
    /// hex is a number, a negative quota is none at all.
    #[test]
    fn the_quota_is_read_as_etcd_reads_it() {
        let root = tempfile::tempdir().unwrap();
        let check_of = |v: &str| {
            let cfg = config(&format!(
                "etcd_settings_user: {{quota-backend-bytes: \"{v}\"}}\n"
            ));
            let mut r = Report::default();
            check(&mut r, &cfg, root.path());
            (r.text(), r.errors().len(), cfg.quota())
        };
        let (text, errors, _) = check_of("8GiB");
        assert_eq!(errors, 1, "{text}");
        assert!(
            text.contains("is not a whole number of bytes as etcd reads it"),
            "{text}"
        );
        let (_, errors, q) = check_of("0x1000000");
        assert_eq!((errors, q.bytes), (0, 16 << 20));
        let (text, errors, q) = check_of("-1");
        assert_eq!((errors, q), (0, Quota::NONE));
        assert!(text.contains("etcd enforces no quota"), "{text}");
        assert_eq!(
            q.to_string(),
            "no quota (quota-backend-bytes is negative: etcd enforces none)"
        );
    }
}
