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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 400, failure_persistence: None, .. proptest::prelude::ProptestConfig::default() })]
    /// Whatever the text, a spec is accepted only as sha256 with 64 hex digits or a URL, and a
    /// digest is found only on a line that names the file.
    #[test]
    fn checksum_parsers_accept_only_what_they_should(spec in proptest::prelude::any::<String>(), sums in proptest::prelude::any::<String>(), name in "[a-z.0-9-]{1,30}") {
        match parse_spec(&spec) {
            Ok(ChecksumSpec::Digest(d)) => {
                let t = spec.trim();
                proptest::prop_assert!(t.to_ascii_lowercase().starts_with("sha256:"));
                proptest::prop_assert_eq!(d.to_string(), t[7..].trim().to_ascii_lowercase());
            }
            Ok(ChecksumSpec::SumsUrl(u)) => {
                proptest::prop_assert!(spec.trim().to_ascii_lowercase().starts_with("sha256:"));
                proptest::prop_assert!(u.contains("://"));
            }
            Err(_) => {}
        }
        if let Ok(d) = find_in_sums(&sums, &name) {
            let hex = d.to_string();
            proptest::prop_assert!(
                sums.lines().any(|l| l.trim().to_ascii_lowercase().starts_with(&hex) && l.contains(name.as_str())),
                "{} found in no line naming {}", hex, name
            );
        }
        // A listing made for the name is always read back.
        let listed = format!("{}  ./{name}\n", "ab".repeat(32));
        proptest::prop_assert_eq!(find_in_sums(&listed, &name).unwrap().to_string(), "ab".repeat(32));
    }
    }
}
