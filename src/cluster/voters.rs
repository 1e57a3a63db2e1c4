//! Who keeps quorum while this member restarts: the other voters, from the cluster's own member
//! list (not the seed: a voter added since, or missing from an older seed, counts too).

use crate::etcd::member::{is_member_url, ApiMember};
use crate::util::error::Error;
use crate::util::text::printable;

/// The other voters that keep quorum while this member restarts, from the cluster's own member
/// list (not the seed: a voter added since, or missing from an older seed, counts too). Learners
/// are left out: they are not part of the quorum, and one catching up may take minutes.
/// Err names each voter that is not started, or offers no https client URL.
pub fn other_voters(members: &[ApiMember], me: &Me) -> Result<Vec<(String, Vec<String>)>, Error> {
    let mut voters = Vec::new();
    let mut blocked = Vec::new();
    for m in members.iter().filter(|m| !m.learner && !me.is(m)) {
        let who = printable(&m.describe()).into_owned();
        if !m.started() {
            blocked.push(format!("{who} is listed but has not started"));
            continue;
        }
        let urls: Vec<String> = m
            .client_urls
            .iter()
            .filter(|u| is_member_url(u))
            .cloned()
            .collect();
        if urls.is_empty() {
            blocked.push(format!("{who} lists no https client URL"));
            continue;
        }
        voters.push((printable(&m.name).into_owned(), urls));
    }
    if blocked.is_empty() {
        Ok(voters)
    } else {
        Err(Error::busy(blocked.join("; ")))
    }
}

/// This member, as the member list names it: by ID (once asked of etcd), else by its peer URLs.
/// Never by name: a name is what a member says of itself, and another can say the same.
pub struct Me {
    pub id: Option<u64>,
    pub name: String,
    pub peer_urls: Vec<String>,
}

impl Me {
    fn is(&self, m: &ApiMember) -> bool {
        match self.id {
            Some(id) => m.id == id,
            None => m.peer_urls.iter().any(|u| self.peer_urls.contains(u)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, name: &str, learner: bool, urls: &[&str]) -> ApiMember {
        ApiMember {
            id,
            name: name.into(),
            peer_urls: vec![format!("https://10.8.0.{id}:2380")],
            client_urls: urls.iter().map(|u| u.to_string()).collect(),
            learner,
        }
    }

    #[test]
    fn the_others_come_from_the_member_list_and_an_unstarted_voter_blocks() {
        let me = Me {
            id: Some(1),
            name: "n1".into(),
            peer_urls: vec![],
        };
        let list = vec![
            member(1, "n1", false, &["https://10.8.0.1:2379"]),
            member(2, "n2", false, &["https://10.8.0.2:2379"]),
            // Not in any seed: still a voter whose health counts.
            member(3, "n3", false, &["https://10.8.0.3:2379"]),
            member(5, "n5", true, &["https://10.8.0.5:2379"]),
        ];
        let v = other_voters(&list, &me).unwrap();
        assert_eq!(
            v.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["n2", "n3"]
        );
        let mut with_new = list.clone();
        with_new.push(member(4, "", false, &[]));
        let e = other_voters(&with_new, &me).unwrap_err().message;
        assert_eq!(
            e,
            "(not started) 4 at https://10.8.0.4:2380 is listed but has not started"
        );
        // An unstarted learner is a join under way: no part of the quorum.
        let mut with_learner = list.clone();
        with_learner.push(member(6, "", true, &[]));
        assert!(other_voters(&with_learner, &me).is_ok());
        // What a member sends is shown escaped, and a URL that is no https URL is not asked.
        let hostile = vec![member(
            7,
            "evil\r\nok",
            false,
            &["http://10.8.0.7:2379", "file:///etc"],
        )];
        let e = other_voters(&hostile, &me).unwrap_err().message;
        assert_eq!(
            e,
            "evil\\r\\nok 7 at https://10.8.0.7:2380 lists no https client URL"
        );
    }

    /// #32: without its ID, this member is known by its peer URL, never by a name another member
    /// can give itself.
    #[test]
    fn without_an_id_this_member_is_its_peer_url_not_its_name() {
        let me = Me {
            id: None,
            name: "n1".into(),
            peer_urls: vec!["https://10.8.0.1:2380".into()],
        };
        let list = vec![
            member(1, "n2", false, &["https://10.8.0.1:2379"]),
            // Another member calling itself n1: still another voter to wait for.
            member(2, "n1", false, &["https://10.8.0.2:2379"]),
        ];
        let v = other_voters(&list, &me).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].1, ["https://10.8.0.2:2379"]);
    }
}
