//! The ELF header of a staged binary: is it a Linux executable for the seed's architecture?

use anyhow::{bail, Result};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// ELF e_machine values for the release architectures.
fn machine(arch: &str) -> Option<u16> {
    match arch {
        "amd64" => Some(62),
        "arm64" => Some(183),
        "ppc64le" => Some(21),
        "s390x" => Some(22),
        _ => None,
    }
}

fn machine_name(m: u16) -> String {
    match m {
        62 => "amd64 (x86-64)".into(),
        183 => "arm64 (aarch64)".into(),
        21 => "ppc64".into(),
        22 => "s390x".into(),
        3 => "386".into(),
        40 => "arm".into(),
        other => format!("machine type {other}"),
    }
}

/// Refuses `path` (binary `name` from `tarball`) unless it is an ELF executable for `arch`.
pub fn check(path: &Path, name: &str, arch: &str, tarball: &Path) -> Result<()> {
    let mut head = [0u8; 20];
    let n = File::open(path)?.read(&mut head)?;
    if n < 20 || &head[..4] != b"\x7fELF" {
        bail!(
            "{name} in {} is not a Linux executable (no ELF header)",
            tarball.display()
        );
    }
    let got = u16::from_le_bytes([head[18], head[19]]);
    if let Some(want) = machine(arch) {
        if got != want {
            bail!(
                "{name} in {} is built for {}, but etcd_architecture is {arch}; download the {arch} release",
                tarball.display(),
                machine_name(got)
            );
        }
    }
    Ok(())
}
