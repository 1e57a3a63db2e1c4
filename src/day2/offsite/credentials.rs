//! The store's credentials: an AWS shared-credentials file (INI), root's alone, read at the time
//! of the upload and never copied anywhere: not into a unit, a log line or an error.

use crate::util::error::Error;
use anyhow::Result;
use std::path::Path;

/// An access key and its secret. `Debug` never shows the secret.
pub struct Credentials {
    pub access_key: String,
    pub secret: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, secret hidden)", self.access_key)
    }
}

/// Reads `profile` from the file at `path` (under the root already): a regular file, not a link,
/// owned by root and readable by no one else.
pub fn read(path: &Path, profile: &str) -> Result<Credentials> {
    let named = format!(
        "the offsite credentials file {} (etcd_backup.offsite.credentials)",
        path.display()
    );
    let text = crate::util::fs::read_secret(path, &named)?;
    parse(&text, profile).map_err(|why| Error::input(format!("{named}: {why}")).into())
}

/// The profile's keys; Err says what is missing, never a value.
fn parse(text: &str, profile: &str) -> Result<Credentials, String> {
    let mut section = None::<String>;
    let (mut id, mut secret, mut token) = (None, None, None);
    let mut seen = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            // `~/.aws/config` spells them `[profile NAME]`; accept either.
            let name = name.strip_prefix("profile ").unwrap_or(name).trim();
            section = Some(name.to_string());
            seen |= name == profile;
            continue;
        }
        if section.as_deref() != Some(profile) {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim() {
            "aws_access_key_id" => id = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    if !seen {
        return Err(format!("has no [{profile}] profile"));
    }
    match (id, secret) {
        (Some(access_key), Some(secret)) if !access_key.is_empty() && !secret.is_empty() => {
            Ok(Credentials {
                access_key,
                secret,
                session_token: token.filter(|t| !t.is_empty()),
            })
        }
        _ => Err(format!(
            "[{profile}] needs aws_access_key_id and aws_secret_access_key"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const FILE: &str = "# comment\n[default]\naws_access_key_id = AK1\naws_secret_access_key = s3cr3t-value\n\n\
                        [profile backup]\naws_access_key_id=AK2\naws_secret_access_key=other\naws_session_token = tok\n";

    #[test]
    fn reads_a_profile_and_hides_the_secret() {
        let c = parse(FILE, "default").unwrap();
        assert_eq!(
            (c.access_key.as_str(), c.secret.as_str()),
            ("AK1", "s3cr3t-value")
        );
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let c = parse(FILE, "backup").unwrap();
        assert_eq!(c.session_token.as_deref(), Some("tok"));
        let e = parse(FILE, "nope").unwrap_err();
        assert!(e.contains("no [nope] profile"), "{e}");
        let e = parse("[default]\naws_access_key_id=x\n", "default").unwrap_err();
        assert!(e.contains("aws_secret_access_key"), "{e}");
    }

    #[test]
    fn refuses_a_file_others_can_read_or_a_link() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("creds");
        std::fs::write(&p, FILE).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = format!("{:#}", read(&p, "default").unwrap_err());
        assert!(
            e.contains("must be root's alone") && e.contains("0644"),
            "{e}"
        );
        assert!(!e.contains("s3cr3t"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read(&p, "default").unwrap().access_key, "AK1");
        let l = d.path().join("link");
        std::os::unix::fs::symlink(&p, &l).unwrap();
        let e = format!("{:#}", read(&l, "default").unwrap_err());
        assert!(e.contains("symbolic link"), "{e}");
        let e = format!("{:#}", read(&d.path().join("none"), "default").unwrap_err());
        assert!(e.contains("does not exist"), "{e}");
    }
}
