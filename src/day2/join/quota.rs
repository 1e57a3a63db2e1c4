//! A joining member's quota against the running cluster's db (etcdadm#383: a member given 2 GiB
//! joining a 4 GiB database).

use crate::etcd::api::Api;
use crate::etcd::member::ApiMember;
use crate::seed::Config;
use crate::util::error::Error;
use anyhow::{bail, Result};

/// This node's quota holds the cluster's db: a member whose quota is below it raises NOSPACE
/// as soon as it has caught up, and the whole cluster then refuses writes.
pub(super) fn fits(cfg: &Config, api: &Api, members: &[ApiMember]) -> Result<()> {
    use crate::util::size::format_bytes;
    let quota = cfg.quota();
    let largest = members
        .iter()
        .filter_map(|m| {
            let url = m
                .client_urls
                .iter()
                .find(|u| crate::etcd::member::is_member_url(u))?;
            Some((m, api.status_of(url).ok()?.db_size))
        })
        .max_by_key(|(_, size)| *size);
    let Some((m, size)) = largest.filter(|(_, size)| *size > quota.bytes) else {
        return Ok(());
    };
    bail!(Error::input(format!(
        "this node's quota-backend-bytes, {quota}, is below the running cluster's \
         db ({} on {}): once caught up it would raise NOSPACE and the cluster would refuse \
         every write. Set etcd_settings_user: {{quota-backend-bytes: \"{}\"}} (at least the db's \
         size; the other members' value), then apply; nothing was changed",
        format_bytes(size),
        crate::util::text::printable(&m.name),
        size.next_power_of_two().max(quota.bytes)
    )))
}
