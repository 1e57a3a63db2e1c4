//! sha256 digests and the role's checksum format: `sha256:<64 hex>` or `sha256:<URL of SHA256SUMS>`.

pub use crate::util::io::Sha256;
use anyhow::{bail, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChecksumSpec {
    /// A digest pinned in the seed.
    Digest(Sha256),
    /// A SHA256SUMS file to look the tarball's name up in.
    SumsUrl(String),
}

pub fn parse_spec(s: &str) -> Result<ChecksumSpec> {
    let s = s.trim();
    let Some((algo, rest)) = s.split_once(':') else {
        bail!("{s:?} is not a checksum; write sha256:<64 hex digits> or sha256:<URL of a SHA256SUMS file>");
    };
    if !algo.eq_ignore_ascii_case("sha256") {
        bail!("checksum algorithm {algo:?} is not supported; only sha256 is (sha256:<hex> or sha256:<URL>)");
    }
    let rest = rest.trim();
    if rest.contains("://") {
        return Ok(ChecksumSpec::SumsUrl(rest.to_string()));
    }
    rest.parse::<Sha256>()
        .map(ChecksumSpec::Digest)
        .map_err(|e| {
            anyhow::anyhow!(
                "{e}; write sha256:<64 hex digits> or sha256:<URL of a SHA256SUMS file>"
            )
        })
}

/// Finds `file_name`'s digest in a `sha256sum`-style listing (`<hex>  <name>` or `<hex> *<name>`,
/// names possibly with a leading `./` or a directory).
pub fn find_in_sums(text: &str, file_name: &str) -> Result<Sha256> {
    let mut seen = 0usize;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((hex, name)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        seen += 1;
        let name = name.trim().trim_start_matches('*').trim_start_matches("./");
        let base = name.rsplit('/').next().unwrap_or(name);
        if base == file_name {
            return hex
                .parse::<Sha256>()
                .map_err(|e| anyhow::anyhow!("the line for {file_name} has a bad digest: {e}"));
        }
    }
    if seen == 0 {
        bail!("it holds no `<sha256>  <file name>` lines");
    }
    bail!("it lists no digest for {file_name} ({seen} other files listed)")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "3c3b3b2f1d7e0e1a0e4c95ab2d8b0a6f2c0b2fd1f1b4c0d5e6f708192a3b4c5d";

    #[test]
    fn parses_both_forms() {
        assert_eq!(
            parse_spec(&format!("sha256:{HEX}")).unwrap(),
            ChecksumSpec::Digest(HEX.parse().unwrap())
        );
        assert_eq!(
            parse_spec("sha256:https://example.org/v3.6.14/SHA256SUMS").unwrap(),
            ChecksumSpec::SumsUrl("https://example.org/v3.6.14/SHA256SUMS".into())
        );
        assert!(parse_spec("md5:abc")
            .unwrap_err()
            .to_string()
            .contains("only sha256"));
        assert!(parse_spec("sha256:abc")
            .unwrap_err()
            .to_string()
            .contains("64 hex"));
        assert!(parse_spec(HEX)
            .unwrap_err()
            .to_string()
            .contains("not a checksum"));
    }

    #[test]
    fn finds_names_in_sums_files() {
        let other = "0".repeat(64);
        let text = format!(
            "{other}  etcd-v3.6.14-darwin-amd64.zip\n{HEX} *./etcd-v3.6.14-linux-amd64.tar.gz\n"
        );
        assert_eq!(
            find_in_sums(&text, "etcd-v3.6.14-linux-amd64.tar.gz")
                .unwrap()
                .to_string(),
            HEX
        );
        let e = find_in_sums(&text, "etcd-v3.6.14-linux-arm64.tar.gz")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no digest for etcd-v3.6.14-linux-arm64.tar.gz"),
            "{e}"
        );
        assert!(find_in_sums("<html>not found</html>", "x")
            .unwrap_err()
            .to_string()
            .contains("no `<sha256>"));
        let bad = "xyz  etcd.tar.gz\n";
        assert!(find_in_sums(bad, "etcd.tar.gz")
            .unwrap_err()
            .to_string()
            .contains("no `<sha256>"));
    }

    /// Specs drawn from what an operator writes (a digest, a SUMS URL), their near misses, and
    /// any text; listings that name the file in each way `sha256sum` writes it, or not.
    fn specs() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let hex64 = "[0-9a-fA-F]{64}";
        prop_oneof![
            (
                prop::sample::select(vec!["sha256:", "SHA256:", " sha256: "]),
                hex64
            )
                .prop_map(|(p, h)| format!("{p}{h}")),
            "sha256:(https|file|http)://[a-z./0-9]{1,30}",
            "(sha256|sha512|md5):[0-9a-f]{60,68}",
            any::<String>(),
        ]
    }

    /// Whatever the text, a spec is accepted only as sha256 with 64 hex digits or a URL, and a
    /// digest is found only on a line that names the file; each outcome is reached in at least a
    /// tenth of the cases, so no branch is proven by a handful of draws.
    #[test]
    fn checksum_parsers_accept_only_what_they_should() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        const CASES: u32 = 400;
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        });
        let [digest, url, refused, found, not_found] = [(); 5].map(|_| AtomicUsize::new(0));
        let sums_kind = 0..4u8;
        runner
            .run(
                &(specs(), any::<String>(), "[a-z.0-9-]{1,30}", sums_kind),
                |(spec, noise, name, kind)| {
                    match parse_spec(&spec) {
                        Ok(ChecksumSpec::Digest(d)) => {
                            digest.fetch_add(1, Relaxed);
                            let t = spec.trim();
                            prop_assert!(t.to_ascii_lowercase().starts_with("sha256:"));
                            prop_assert_eq!(d.to_string(), t[7..].trim().to_ascii_lowercase());
                        }
                        Ok(ChecksumSpec::SumsUrl(u)) => {
                            url.fetch_add(1, Relaxed);
                            prop_assert!(spec.trim().to_ascii_lowercase().starts_with("sha256:"));
                            prop_assert!(u.contains("://"));
                        }
                        Err(_) => {
                            refused.fetch_add(1, Relaxed);
                        }
                    }
                    let hex = "ab".repeat(32);
                    let sums = match kind {
                        0 => format!("{noise}\n{hex}  ./{name}\n"),
                        1 => format!("{hex} *dir/{name}\n{noise}"),
                        2 => format!("{hex}  {name}.asc\n{noise}"),
                        _ => noise.clone(),
                    };
                    match find_in_sums(&sums, &name) {
                        Ok(d) => {
                            found.fetch_add(1, Relaxed);
                            let hex = d.to_string();
                            prop_assert!(
                                sums.lines().any(|l| l
                                    .trim()
                                    .to_ascii_lowercase()
                                    .starts_with(&hex)
                                    && l.contains(name.as_str())),
                                "{} found in no line naming {}",
                                hex,
                                name
                            );
                        }
                        Err(_) => {
                            not_found.fetch_add(1, Relaxed);
                        }
                    }
                    Ok(())
                },
            )
            .unwrap();
        for (what, n) in [
            ("a digest", &digest),
            ("a SUMS URL", &url),
            ("a refusal", &refused),
            ("a listed file", &found),
            ("an unlisted file", &not_found),
        ] {
            let n = n.load(Relaxed);
            eprintln!("checksum property: {what} in {n} of {CASES} cases");
            assert!(n * 10 >= CASES as usize, "{what}: {n} of {CASES} cases");
        }
    }
}
