//! `etcd_backup.offsite`: the store's URL split into endpoint, bucket and prefix, and the rest
//! checked. Every mistake is a seed error naming its key; the credentials are a path, never a
//! value in the seed.

use super::day2::{nested, Got};
use super::Render;
use crate::seed::config::OffsiteSpec;
use crate::seed::schema::RawOffsite;
use crate::seed::Seed;
use crate::util::time::parse_duration;
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

const DEFAULT_KEEP: &str = "30";
const DEFAULT_TIMEOUT: &str = "10m";
const DEFAULT_PROFILE: &str = "default";

/// A bucket name as S3 allows it (3-63 of a-z, 0-9, `.`, `-`, starting and ending with a letter
/// or digit).
fn bucket_ok(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A prefix: path segments of printable ASCII without `..`, `.` or empty ones.
fn prefix_ok(p: &str) -> bool {
    p.split('/').all(|seg| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .chars()
                .all(|c| c.is_ascii_graphic() && !"\\?#%\"'<>{}^`|".contains(c))
    })
}

/// (endpoint, bucket, prefix) of `url`; Err: what is wrong with it.
pub fn split_url(url: &str, region: &str) -> Result<(String, String, String), String> {
    let (endpoint, path) = if let Some(rest) = url.strip_prefix("s3://") {
        (format!("https://s3.{region}.amazonaws.com"), rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
        if !host_ok {
            return Err("has no host name (https://HOST[:PORT]/BUCKET[/PREFIX])".into());
        }
        (format!("https://{host}"), path)
    } else {
        return Err(
            "must be https://HOST[:PORT]/BUCKET[/PREFIX] or s3://BUCKET[/PREFIX]: a snapshot never \
             travels unencrypted"
                .into(),
        );
    };
    let path = path.trim_end_matches('/');
    let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
    if !bucket_ok(bucket) {
        return Err(format!(
            "names no valid bucket ({:?}: 3-63 of a-z 0-9 . -)",
            crate::util::text::excerpt(bucket, 70)
        ));
    }
    if !prefix.is_empty() && !prefix_ok(prefix) {
        return Err(
            "has a prefix with an empty, `.` or `..` segment or a reserved character".into(),
        );
    }
    Ok((endpoint, bucket.to_string(), prefix.to_string()))
}

fn count(seed: &Seed, key: &str, got: &Got, min: u32) -> Result<u32> {
    got.value
        .parse::<u32>()
        .ok()
        .filter(|n| *n >= min)
        .ok_or_else(|| {
            seed.error(
                key,
                &got.raw,
                format!("must be a whole number of at least {min}"),
            )
        })
}

fn path(seed: &Seed, key: &str, got: &Got) -> Result<PathBuf> {
    if !got.value.starts_with('/') {
        return Err(seed.error(key, &got.raw, "must be an absolute path"));
    }
    Ok(PathBuf::from(&got.value))
}

pub(super) fn resolve(seed: &Seed, r: &Render, o: &RawOffsite) -> Result<OffsiteSpec> {
    const K: &str = "etcd_backup.offsite";
    let key = |k: &str| format!("{K}.{k}");
    let url = nested(r, &key("url"), &o.url, "")?;
    if url.value.is_empty() {
        return Err(seed.error(
            &key("url"),
            "",
            "is required: the store's https://HOST/BUCKET[/PREFIX]",
        ));
    }
    let region = nested(r, &key("region"), &o.region, "us-east-1")?;
    if region.value.is_empty()
        || !region
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(seed.error(
            &key("region"),
            &region.raw,
            "must be a region name like us-east-1",
        ));
    }
    let (endpoint, bucket, prefix) = split_url(&url.value, &region.value)
        .map_err(|why| seed.error(&key("url"), &url.raw, why))?;
    let creds = nested(r, &key("credentials"), &o.credentials, "")?;
    if creds.value.is_empty() {
        return Err(seed.error(
            &key("credentials"),
            "",
            "is required: the path of an AWS shared-credentials file (root's alone, 0600)",
        ));
    }
    let credentials = path(seed, &key("credentials"), &creds)?;
    let profile = nested(r, &key("profile"), &o.profile, DEFAULT_PROFILE)?;
    let ca_file = match &o.ca_file {
        Some(_) => Some(path(
            seed,
            &key("ca_file"),
            &nested(r, &key("ca_file"), &o.ca_file, "")?,
        )?),
        None => None,
    };
    let recipients = recipients(seed, r, o)?;
    let (keep, keep_daily, timeout) = limits(seed, r, o)?;
    Ok(OffsiteSpec {
        endpoint,
        bucket,
        prefix,
        region: region.value,
        credentials,
        profile: profile.value,
        ca_file,
        recipients,
        keep,
        keep_daily,
        timeout,
    })
}

/// `recipients`: each an age X25519 public key (`age1…`), its checksum checked.
fn recipients(seed: &Seed, r: &Render, o: &RawOffsite) -> Result<Vec<[u8; 32]>> {
    let mut out = Vec::new();
    for (i, v) in o.recipients.iter().flatten().enumerate() {
        let key = format!("etcd_backup.offsite.recipients[{i}]");
        let got = nested(r, &key, &Some(v.clone()), "")?;
        let bad = |why: &str| seed.error(&key, &got.raw, why);
        if got.value.starts_with("AGE-SECRET-KEY-") {
            // Said without echoing it: a secret key pasted here must not reach a log.
            return Err(seed.error(
                &key,
                "AGE-SECRET-KEY-…",
                "is an age identity (a secret key): give its public key, `age-keygen -y IDENTITY`,                  and keep the identity off the node",
            ));
        }
        let (hrp, data) = crate::util::bech32::decode(&got.value)
            .map_err(|why| bad(&format!("is not an age recipient (age1…): it {why}")))?;
        let pk: [u8; 32] = data
            .try_into()
            .ok()
            .filter(|_| hrp == "age")
            .ok_or_else(|| bad("is not an age X25519 recipient (age1… of 32 bytes)"))?;
        if !out.contains(&pk) {
            out.push(pk);
        }
    }
    Ok(out)
}

/// `keep`, `keep_daily` and `timeout`.
fn limits(seed: &Seed, r: &Render, o: &RawOffsite) -> Result<(u32, u32, Duration)> {
    let key = |k: &str| format!("etcd_backup.offsite.{k}");
    let keep = count(
        seed,
        &key("keep"),
        &nested(r, &key("keep"), &o.keep, DEFAULT_KEEP)?,
        1,
    )?;
    let keep_daily = count(
        seed,
        &key("keep_daily"),
        &nested(r, &key("keep_daily"), &o.keep_daily, "0")?,
        0,
    )?;
    let t = nested(r, &key("timeout"), &o.timeout, DEFAULT_TIMEOUT)?;
    let timeout = parse_duration(&t.value)
        .ok()
        .filter(|d| d.as_secs() >= 10)
        .ok_or_else(|| {
            seed.error(
                &key("timeout"),
                &t.raw,
                "must be a duration of at least 10s, like 10m",
            )
        })?;
    Ok((keep, keep_daily, timeout))
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_into_endpoint_bucket_and_prefix() {
        let s = |u: &str| split_url(u, "eu-west-1");
        assert_eq!(
            s("https://s3.example.net:9000/etcd-backups/prod/"),
            Ok((
                "https://s3.example.net:9000".into(),
                "etcd-backups".into(),
                "prod".into()
            ))
        );
        assert_eq!(
            s("s3://etcd-backups"),
            Ok((
                "https://s3.eu-west-1.amazonaws.com".into(),
                "etcd-backups".into(),
                String::new()
            ))
        );
        for bad in [
            "http://s3.example.net/b",
            "https:///bucket",
            "https://h/",
            "https://h/Bucket",
            "https://h/bucket/../x",
            "https://h/bucket/a//b",
            "ftp://x/y",
        ] {
            assert!(s(bad).is_err(), "{bad}");
        }
    }
}
