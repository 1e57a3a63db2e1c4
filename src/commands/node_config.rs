//! `node-config`: one node's cloud-init user-data or self-contained seed, from the cluster file and
//! the `pki` output.

use crate::cli::{NodeConfigArgs, NodeConfigFormat};
use crate::facts::Facts;
use crate::pki;
use crate::seed::{source::SeedArg, Seed};
use crate::util::error::invalid;
use crate::util::io::Sha256;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Where the pki output holds `name` for `node`: its own dir, then the client dir, then the CA's
/// certificate at the top. The CA key is never handed out.
fn find(pki_dir: &Path, node: &str, name: &str) -> Result<PathBuf> {
    if name == pki::CA_KEY {
        bail!(invalid(format!(
            "etcd_certificates lists {name}, the CA's private key: a node never needs it; remove it"
        )));
    }
    let node_dir = crate::util::fs::child(pki_dir, node, "--node")?;
    for dir in [node_dir, pki_dir.join(pki::CLIENT_DIR)] {
        let file = crate::util::fs::child(&dir, name, "a name in etcd_certificates")?;
        if file.is_file() {
            return Ok(file);
        }
    }
    if name == pki::CA_CERT && pki_dir.join(name).is_file() {
        return Ok(pki_dir.join(name));
    }
    bail!(
        "{name} (listed in the seed's certificates) is neither in {} nor in {}: run `etcd-bootstrap pki` with this seed first",
        pki_dir.join(node).display(),
        pki_dir.join(pki::CLIENT_DIR).display()
    )
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

/// The seed text with the node's certificates and keys added as `etcd_certificate_data`.
fn seed_with_certificates(seed: &Seed, o: &NodeConfigArgs) -> Result<String> {
    if seed.raw().etcd_certificate_data.is_some() {
        bail!(invalid(format!(
            "seed {}: node-config writes etcd_certificate_data itself; remove it from the cluster file",
            seed.origin
        )));
    }
    if !crate::util::text::is_plain_name(&o.node) {
        bail!(invalid(format!(
            "--node is not {}",
            crate::util::text::PLAIN_NAME
        )));
    }
    let m = seed
        .raw()
        .etcd_members
        .iter()
        .flatten()
        .find(|m| m.name.0.trim() == o.node)
        .ok_or_else(|| invalid(format!("--node {}: not in the seed's etcd_members", o.node)))?;
    let ip = m.address.0.trim().parse().map_err(|_| {
        invalid(format!(
            "--node {}: its address in etcd_members is not an IP address",
            o.node
        ))
    })?;
    let (iface, _) = seed.interface_and_override(&Facts::gather())?;
    let cfg = seed.resolve(&Facts::of_member(&o.node, &iface, ip), ip)?;
    let mut text = seed.text().trim_end().to_string();
    text.push_str(&format!(
        "\n# Added by etcd-bootstrap node-config for {}: its certificates and keys.\netcd_certificate_data:\n",
        o.node
    ));
    for name in &cfg.certificates {
        let path = find(&o.pki, &o.node, name)?;
        // Not through a link someone planted in the pki dir, and never a FIFO.
        let mut f = crate::util::fs::open_regular(&path, false)?
            .with_context(|| format!("{} vanished", path.display()))?;
        let mut pem = String::new();
        std::io::Read::read_to_string(&mut f, &mut pem)
            .with_context(|| format!("reading {}", path.display()))?;
        if !pem.contains("-----BEGIN") {
            bail!("{} is not PEM text", path.display());
        }
        text.push_str(&format!("  {name}: |\n{}", indent(&pem, "    ")));
    }
    Ok(text)
}

fn user_data(seed: &Seed, seed_text: &str, o: &NodeConfigArgs) -> Result<String> {
    let mut out = format!(
        "#cloud-config\n# Made by etcd-bootstrap node-config for {node}: it holds private keys; keep it private.\n\
         # etcd-bootstrap.service applies the seed at first boot, after cloud-init wrote these files.\n\
         hostname: {node}\nwrite_files:\n  - path: /etc/etcd-bootstrap/seed.yaml\n    owner: root:root\n    permissions: '0600'\n    content: |\n{}",
        indent(seed_text, "      "),
        node = o.node
    );
    let (iface, _) = seed.interface_and_override(&Facts::gather())?;
    if let Some(wg) = &o.wg_conf {
        let conf = std::fs::read_to_string(wg)
            .with_context(|| format!("reading the WireGuard config {}", wg.display()))?;
        out.push_str(&format!(
            "  - path: /etc/wireguard/{iface}.conf\n    owner: root:root\n    permissions: '0600'\n    content: |\n{}",
            indent(&conf, "      ")
        ));
    }
    for spec in &o.write_file {
        let (dest, src) = spec
            .split_once('=')
            // Into YAML unquoted: every part of the path a plain name.
            .filter(|(d, s)| {
                !s.is_empty()
                    && d.strip_prefix('/')
                        .is_some_and(|r| r.split('/').all(crate::util::text::is_plain_name))
            })
            .ok_or_else(|| {
                invalid(format!(
                    "--write-file {}: give DEST=SRC, DEST an absolute path on the node made of \
                     plain names",
                    crate::util::text::printable(spec)
                ))
            })?;
        let text = std::fs::read_to_string(src)
            .with_context(|| format!("reading {src} (--write-file {dest}=...)"))?;
        out.push_str(&format!(
            "  - path: {dest}\n    owner: root:root\n    permissions: '0600'\n    content: |\n{}",
            indent(&text, "      ")
        ));
    }
    if o.runcmd {
        out.push_str("runcmd:\n");
        if o.wg_conf.is_some() {
            out.push_str(&format!(
                "  - [systemctl, enable, --now, wg-quick@{iface}]\n"
            ));
        }
        out.push_str("  - [etcd-bootstrap, apply]\n");
    }
    Ok(out)
}

pub fn run(o: &NodeConfigArgs) -> Result<()> {
    let seed = Seed::load(&SeedArg::path(&o.seed))?;
    // It holds every key the node gets: others must not be able to put files there.
    let pki_dir =
        std::path::absolute(&o.pki).with_context(|| format!("--pki {}", o.pki.display()))?;
    if !pki_dir.is_dir() {
        bail!(invalid(format!(
            "--pki {}: not a directory; run `etcd-bootstrap pki` first",
            o.pki.display()
        )));
    }
    crate::util::fs::private_dir(Path::new("/"), &pki_dir, 0o700)
        .with_context(|| format!("--pki {}", o.pki.display()))?;
    let text = seed_with_certificates(&seed, o)?;
    // What is printed must be a seed this tool reads back.
    Seed::parse(&format!("node-config for {}", o.node), &text)?;
    match o.format {
        NodeConfigFormat::Seed => {
            if o.wg_conf.is_some() || o.runcmd || !o.write_file.is_empty() {
                bail!(invalid(
                    "--wg-conf, --write-file and --runcmd go with --format user-data"
                ));
            }
            println!("{text}");
            eprintln!(
                "etcd-bootstrap: warning: this seed holds {}'s private keys: serve it only over https or from local media",
                o.node
            );
            eprintln!(
                "etcd-bootstrap: pin it on the kernel command line with etcd_bootstrap.seed_sha256={}",
                Sha256::of(format!("{text}\n").as_bytes())
            );
        }
        NodeConfigFormat::UserData => {
            print!("{}", user_data(&seed, &text, o)?);
        }
    }
    Ok(())
}
