//! The join policy, decided from the member list alone: pure, so every case is a unit test.

use crate::etcd::member::ApiMember;
use crate::util::error::Error;
use anyhow::{bail, Result};

/// What to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// `etcd_replace_member` names this member and it is gone: remove it.
    Remove(ApiMember),
    /// Added before (a run that stopped before etcd started): use that entry.
    Reuse(ApiMember),
    Add,
    /// Another member is added but not started, or a learner not yet promoted: one join at a time.
    Wait(String),
}

/// Every member's name and peer URLs may go into this node's unit: the member list came from the
/// cluster, and one member sending `\r` in its name would otherwise end a unit line.
pub fn fit_for_unit(members: &[ApiMember]) -> Result<()> {
    for m in members {
        if let Err(why) = m.fit_for_unit() {
            bail!(
                "the cluster's member list cannot be written into this node's unit: {why}; \
                 fix or remove that member (etcdctl member update / member remove), then run again"
            );
        }
    }
    Ok(())
}

/// `gone`: Ok when a member may be replaced, else why not (see `day2::replace`).
pub fn decide(
    members: &[ApiMember],
    my_peer_urls: &[String],
    replace: Option<&str>,
    gone: &dyn Fn(&ApiMember) -> std::result::Result<(), Error>,
) -> Result<Decision> {
    fit_for_unit(members)?;
    let mine = members
        .iter()
        .find(|m| m.peer_urls.iter().any(|u| my_peer_urls.contains(u)));
    if let Some(r) = replace {
        if let Some(old) = members.iter().find(|m| m.name == r) {
            if let Err(why) = gone(old) {
                bail!(
                    "etcd_replace_member: {r} ({:x}) is still there: {why}; refusing to remove a working member \
                     (stop it first, or remove etcd_replace_member from the seed)",
                    old.id
                );
            }
            return Ok(Decision::Remove(old.clone()));
        }
    }
    if let Some(m) = mine {
        if !m.started() {
            return Ok(Decision::Reuse(m.clone()));
        }
        bail!(
            "the cluster already has member {} ({:x}) at this node's peer URL {}, started before, but this \
             node's data dir holds no member: its data is gone. To join again under the same address, set \
             etcd_replace_member: {} (it is removed once it stays unreachable)",
            m.name,
            m.id,
            m.peer_urls.join(","),
            m.name
        );
    }
    let pending: Vec<String> = members
        .iter()
        .filter(|m| !m.started() || m.learner)
        .map(|m| m.describe())
        .collect();
    if !pending.is_empty() {
        return Ok(Decision::Wait(format!(
            "waiting for {} to start (and be promoted) first: members join one at a time",
            pending.join(", ")
        )));
    }
    Ok(Decision::Add)
}

/// `name=url,...` from the member list, this member named `my_name`, sorted for a stable unit.
pub fn initial_cluster(members: &[ApiMember], my_id: u64, my_name: &str) -> String {
    let mut entries: Vec<String> = members
        .iter()
        .flat_map(|m| {
            let name = if m.id == my_id { my_name } else { &m.name };
            m.peer_urls.iter().map(move |u| format!("{name}={u}"))
        })
        .collect();
    entries.sort();
    entries.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: u64, name: &str, url: &str, learner: bool) -> ApiMember {
        ApiMember {
            id,
            name: name.into(),
            peer_urls: vec![url.into()],
            client_urls: if name.is_empty() {
                vec![]
            } else {
                vec![url.replace("2380", "2379")]
            },
            learner,
        }
    }

    fn three() -> Vec<ApiMember> {
        vec![
            m(1, "a", "https://10.0.0.1:2380", false),
            m(2, "b", "https://10.0.0.2:2380", false),
            m(3, "c", "https://10.0.0.3:2380", false),
        ]
    }

    const ME: &str = "https://10.0.0.4:2380";

    #[test]
    fn a_member_list_that_cannot_go_into_a_unit_is_refused_naming_the_member_by_id() {
        assert!(fit_for_unit(&three()).is_ok());
        let mut bad = three();
        bad[1].name = "b\r--data-dir=/etc".into();
        let e = decide(&bad, &[ME.into()], None, &|_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("member 2 has a name that is not a plain name"),
            "{e}"
        );
        assert!(!e.contains('\r'), "{e:?}");
        let mut url = three();
        url[2].peer_urls = vec!["https://10.0.0.3:2380\n".into()];
        let e = fit_for_unit(&url).unwrap_err().to_string();
        assert!(
            e.contains("member 3 has a peer URL that is not https://HOST:PORT"),
            "{e}"
        );
        // A member added but not started has no name yet: that is no reason to refuse.
        let mut pending = three();
        pending.push(m(4, "", "https://10.0.0.5:2380", true));
        assert!(fit_for_unit(&pending).is_ok());
    }

    #[test]
    fn initial_cluster_names_this_member_by_its_name() {
        let mut ms = three()[..1].to_vec();
        ms.push(m(42, "", "https://10.0.0.4:2380", true));
        assert_eq!(
            initial_cluster(&ms, 42, "d"),
            "a=https://10.0.0.1:2380,d=https://10.0.0.4:2380"
        );
    }

    #[test]
    fn adds_when_all_started_and_reuses_an_unstarted_entry_of_its_own() {
        let alive = |_: &ApiMember| Err(Error::busy("alive"));
        assert_eq!(
            decide(&three(), &[ME.into()], None, &alive).unwrap(),
            Decision::Add
        );
        let mut ms = three();
        ms.push(m(9, "", ME, false));
        assert_eq!(
            decide(&ms, &[ME.into()], None, &alive).unwrap(),
            Decision::Reuse(m(9, "", ME, false))
        );
    }

    #[test]
    fn waits_for_another_pending_join_or_learner() {
        let alive = |_: &ApiMember| Err(Error::busy("alive"));
        let mut ms = three();
        ms.push(m(9, "", "https://10.0.0.5:2380", false));
        assert!(matches!(
            decide(&ms, &[ME.into()], None, &alive).unwrap(),
            Decision::Wait(w) if w.contains("10.0.0.5")
        ));
        let mut ms = three();
        ms.push(m(9, "e", "https://10.0.0.5:2380", true));
        assert!(matches!(
            decide(&ms, &[ME.into()], None, &alive).unwrap(),
            Decision::Wait(_)
        ));
    }

    #[test]
    fn a_started_member_at_my_url_with_my_data_gone_is_an_error_naming_the_fix() {
        let mut ms = three();
        ms.push(m(9, "d", ME, false));
        let e = decide(&ms, &[ME.into()], None, &|_| Ok(())).unwrap_err();
        assert!(e.to_string().contains("etcd_replace_member: d"), "{e}");
    }

    #[test]
    fn replaces_only_a_member_that_is_gone() {
        let e = decide(&three(), &[ME.into()], Some("c"), &|_| {
            Err(Error::busy("x"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("refusing"), "{e}");
        assert_eq!(
            decide(&three(), &[ME.into()], Some("c"), &|_| Ok(())).unwrap(),
            Decision::Remove(three()[2].clone())
        );
        // Already removed: just join.
        let two = three()[..2].to_vec();
        assert_eq!(
            decide(&two, &[ME.into()], Some("c"), &|_| Ok(())).unwrap(),
            Decision::Add
        );
    }
}
