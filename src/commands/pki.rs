//! `pki`: the cluster's certificates from the cluster file.

use crate::cli::{KeyTypeArg, PkiArgs};
use crate::pki::{self, issue::KeyType};
use crate::seed::{source::SeedArg, Seed};
use anyhow::{Context, Result};

pub fn run(o: &PkiArgs) -> Result<()> {
    let seed = Seed::load(&SeedArg::path(&o.seed))?;
    let opts = pki::Options {
        out: o.out.clone(),
        ca_cert: o.ca_cert.clone(),
        ca_key: o.ca_key.clone(),
        key_type: match o.key_type {
            KeyTypeArg::EcdsaP256 => KeyType::EcdsaP256,
            KeyTypeArg::Rsa2048 => KeyType::Rsa2048,
            KeyTypeArg::Ed25519 => KeyType::Ed25519,
        },
        days: o.days,
        ca_days: o.ca_days,
        renew_before: o.renew_before,
        now: crate::util::time::unix_now(),
    };
    let mut plan = pki::plan(&seed, &opts)?;
    print!("{}", plan.render());
    if o.dry_run {
        println!(
            "{} change(s) planned; nothing was written (--dry-run)",
            plan.changes()
        );
        return Ok(());
    }
    plan.apply()
        .with_context(|| format!("writing the certificates into {}", o.out.display()))?;
    log::info!(
        "{} change(s) written into {}",
        plan.changes(),
        o.out.display()
    );
    Ok(())
}
