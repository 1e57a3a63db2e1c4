//! An etcd release version, the one type every layer compares versions with: the seed resolves
//! `etcd_version` to it once; members' answers and stamps are parsed to it where they are read.

use crate::util::error::Error;
use std::fmt;
use std::str::FromStr;

/// An etcd release version: major.minor.patch (a leading `v`, a pre-release or build suffix
/// dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl FromStr for Version {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let t = s.trim().trim_start_matches('v');
        let core = t.split(['-', '+']).next().unwrap_or(t);
        let mut it = core.split('.').map(|p| p.parse::<u32>());
        match (it.next(), it.next(), it.next()) {
            (Some(Ok(major)), Some(Ok(minor)), patch) => Ok(Version {
                major,
                minor,
                patch: patch.and_then(|p| p.ok()).unwrap_or(0),
            }),
            _ => Err(Error::input(format!(
                "{} is not an etcd version",
                crate::util::text::excerpt(s, 40)
            ))),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Version {
    pub fn minor_str(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
    pub fn next_minor(&self) -> Version {
        Version {
            major: self.major,
            minor: self.minor + 1,
            patch: 0,
        }
    }
    pub fn same_minor(&self, o: &Version) -> bool {
        self.major == o.major && self.minor == o.minor
    }
}
