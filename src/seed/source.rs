//! Where a seed comes from: a path, `-` (stdin), or a `file://` / `https://` URL.

use crate::util::http::Fetcher;
use crate::util::io::Sha256;
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;

pub const DEFAULT_SEED: &str = "/etc/etcd-bootstrap/seed.yaml";
pub const CMDLINE: &str = "/proc/cmdline";

/// Where the seed comes from, as the operator said (or did not say) on the command line.
#[derive(Debug, Clone, Default)]
pub struct SeedArg {
    /// `--seed`; when absent: the default file, else the kernel command line.
    pub src: Option<String>,
    /// `--seed-sha256`: the seed must have this digest.
    pub sha256: Option<String>,
}

impl SeedArg {
    pub fn path(src: &str) -> SeedArg {
        SeedArg {
            src: Some(src.to_string()),
            sha256: None,
        }
    }
}

/// `etcd_bootstrap.seed=<URL>` and `etcd_bootstrap.seed_sha256=<hex>` from a kernel command line.
pub fn from_cmdline(cmdline: &str) -> (Option<String>, Option<String>) {
    let mut seed = None;
    let mut digest = None;
    for word in cmdline.split_whitespace() {
        if let Some(v) = word.strip_prefix("etcd_bootstrap.seed=") {
            seed = Some(v.trim_matches('"').to_string());
        } else if let Some(v) = word.strip_prefix("etcd_bootstrap.seed_sha256=") {
            digest = Some(v.trim_matches('"').to_string());
        }
    }
    (seed, digest)
}

/// Picks the source: `--seed`, else the default file if it exists, else the kernel command line
/// (the PXE way). Returns the source and the digest it must have, if any.
pub fn resolve(arg: &SeedArg) -> Result<(String, Option<String>)> {
    if let Some(src) = &arg.src {
        return Ok((src.clone(), arg.sha256.clone()));
    }
    if Path::new(DEFAULT_SEED).exists() {
        return Ok((DEFAULT_SEED.to_string(), arg.sha256.clone()));
    }
    let cmdline = std::fs::read_to_string(CMDLINE).unwrap_or_default();
    match from_cmdline(&cmdline) {
        (Some(src), digest) => {
            log::info!("seed from the kernel command line: {src}");
            Ok((src, arg.sha256.clone().or(digest)))
        }
        (None, _) => bail!(crate::util::error::Error::input(format!(
            "no seed: {DEFAULT_SEED} does not exist, --seed was not given, and the kernel command line has no \
             etcd_bootstrap.seed=<URL>"
        ))),
    }
}

/// Reads the seed the operator meant and checks its pinned digest.
pub fn load(arg: &SeedArg) -> Result<SeedText> {
    let (src, pin) = resolve(arg)?;
    let text = read(&src, pin.is_some())?;
    if let Some(pin) = pin {
        let want: Sha256 = pin.parse().map_err(|e| {
            crate::util::error::Error::input(format!(
                "--seed-sha256 / etcd_bootstrap.seed_sha256: {e}"
            ))
        })?;
        let got = Sha256::of(text.text.as_bytes());
        if got != want {
            bail!(
                "seed {} has sha256 {got}, but {want} was pinned; refusing a seed that is not the one meant",
                text.origin
            );
        }
    }
    Ok(text)
}

/// A seed is a small text: anything larger is a mistake (or an attack) and is refused before parsing.
pub const MAX_SEED_BYTES: u64 = 1024 * 1024;

/// The seed text and a name for it to use in messages.
pub struct SeedText {
    pub origin: String,
    pub text: String,
}

/// Reads a seed; `pinned`: its digest will be checked, so plain http is acceptable.
pub fn read(src: &str, pinned: bool) -> Result<SeedText> {
    let (origin, bytes) = if src == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .take(MAX_SEED_BYTES + 1)
            .read_to_end(&mut buf)
            .context("reading the seed from stdin")?;
        ("<stdin>".to_string(), buf)
    } else if src.starts_with("https://")
        || src.starts_with("http://")
        || src.starts_with("file://")
    {
        if src.starts_with("http://") && !pinned {
            bail!(crate::util::error::Error::input(format!(
                "refusing to read the seed over plain http ({src}) without a pinned digest: anyone on the path \
                 could change it; use https://, or pin it with --seed-sha256 / etcd_bootstrap.seed_sha256"
            )));
        }
        let fetcher = Fetcher::new(None).context("setting up the HTTPS client")?;
        (src.to_string(), fetcher.fetch_small(src, MAX_SEED_BYTES)?)
    } else {
        let path = Path::new(src);
        let f = std::fs::File::open(path).with_context(|| {
            format!("opening the seed {src} (give another with --seed PATH|URL|-)")
        })?;
        let mut buf = Vec::new();
        f.take(MAX_SEED_BYTES + 1)
            .read_to_end(&mut buf)
            .with_context(|| format!("reading the seed {src}"))?;
        (src.to_string(), buf)
    };
    if bytes.len() as u64 > MAX_SEED_BYTES {
        bail!(crate::util::error::Error::input(format!(
            "seed {origin} is larger than {MAX_SEED_BYTES} bytes; a seed is a small YAML file"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        crate::util::error::Error::input(format!("seed {origin} is not UTF-8 text: {e}"))
    })?;
    Ok(SeedText { origin, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_seed_from_a_kernel_command_line() {
        let (s, d) = from_cmdline(
            "BOOT_IMAGE=/vmlinuz root=/dev/vda ro etcd_bootstrap.seed=https://10.0.0.1/seed.yaml etcd_bootstrap.seed_sha256=abc quiet",
        );
        assert_eq!(s.as_deref(), Some("https://10.0.0.1/seed.yaml"));
        assert_eq!(d.as_deref(), Some("abc"));
        assert_eq!(from_cmdline("root=/dev/vda"), (None, None));
    }

    fn serve(text: &'static str) -> crate::util::testserver::Server {
        use crate::util::testserver::{Response, Server};
        Server::start(
            "127.0.0.1:0",
            None,
            std::sync::Arc::new(move |_| Response::new(200, text)),
        )
        .unwrap()
    }

    fn pinned(src: &str, pin: Option<&str>) -> anyhow::Result<SeedText> {
        load(&SeedArg {
            src: Some(src.to_string()),
            sha256: pin.map(str::to_string),
        })
    }

    #[test]
    fn a_seed_over_plain_http_is_read_only_when_pinned_and_only_if_it_is_the_pinned_one() {
        let s = serve("etcd_version: \"3.5.1\"\n");
        let url = format!("{}/seed.yaml", s.url("http"));
        let e = pinned(&url, None).err().unwrap();
        assert_eq!(crate::util::error::exit_code(&e), 2);
        assert!(e.to_string().contains("without a pinned digest"), "{e}");
        let right = Sha256::of(b"etcd_version: \"3.5.1\"\n").to_string();
        assert_eq!(
            pinned(&url, Some(&right)).unwrap().text,
            "etcd_version: \"3.5.1\"\n"
        );
        let wrong = "ab".repeat(32);
        let e = pinned(&url, Some(&wrong)).err().unwrap();
        assert!(
            e.to_string()
                .contains(&format!("has sha256 {right}, but {wrong} was pinned")),
            "{e}"
        );
        let e = pinned(&url, Some("not-hex")).err().unwrap();
        assert_eq!(crate::util::error::exit_code(&e), 2, "{e}");
    }

    #[test]
    fn a_seed_from_a_file_url_and_one_too_large_from_a_server() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("seed.yaml");
        std::fs::write(&p, "etcd_members: []\n").unwrap();
        let t = pinned(&format!("file://{}", p.display()), None).unwrap();
        assert_eq!(t.text, "etcd_members: []\n");
        use crate::util::testserver::{Response, Server};
        let endless = Server::start(
            "127.0.0.1:0",
            None,
            std::sync::Arc::new(|_| Response {
                endless: true,
                ..Response::new(200, vec![])
            }),
        )
        .unwrap();
        let url = format!("{}/seed.yaml", endless.url("http"));
        let pin = "ab".repeat(32);
        let e = pinned(&url, Some(&pin)).err().unwrap();
        assert!(
            format!("{e:#}").contains("is larger than 1048576 bytes"),
            "{e:#}"
        );
    }

    #[test]
    fn an_oversized_seed_is_refused_before_parsing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("seed.yaml");
        std::fs::write(&p, "#".repeat(MAX_SEED_BYTES as usize + 1)).unwrap();
        let e = read(p.to_str().unwrap(), false).err().unwrap();
        assert_eq!(crate::util::error::exit_code(&e), 2);
        assert!(
            e.to_string().contains("is larger than 1048576 bytes"),
            "{e}"
        );
        std::fs::write(&p, [0xffu8, 0xfe, b'a']).unwrap();
        let e = read(p.to_str().unwrap(), false).err().unwrap();
        assert!(e.to_string().contains("is not UTF-8"), "{e}");
    }
}
