//! One offsite upload through the tool's own code (`day2::offsite::upload`): file → gzip →
//! (age) → 8 MiB checksummed parts → completed and checked by HEAD. `make bench` times it
//! against `aws s3 cp` of the same file to the same store, and measures its peak RSS.
use etcd_bootstrap::day2::offsite::{s3::Store, upload};
use etcd_bootstrap::seed::OffsiteSpec;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 6 {
        eprintln!("usage: offsite_upload ENDPOINT BUCKET KEY CREDENTIALS CA FILE [age1RECIPIENT]");
        std::process::exit(2);
    }
    let recipients: Vec<[u8; 32]> = a
        .get(6)
        .map(|r| {
            let (_, k) = etcd_bootstrap::util::bech32::decode(r).expect("an age1 recipient");
            vec![k.try_into().expect("32 bytes")]
        })
        .unwrap_or_default();
    let spec = OffsiteSpec {
        endpoint: a[0].clone(),
        bucket: a[1].clone(),
        prefix: String::new(),
        region: "us-east-1".into(),
        credentials: PathBuf::from(&a[3]),
        profile: "default".into(),
        ca_file: Some(PathBuf::from(&a[4])),
        recipients: recipients.clone(),
        keep: 1,
        keep_daily: 0,
        timeout: Duration::from_secs(600),
    };
    let started = Instant::now();
    let store = Store::open(&spec, Path::new("/"), started + spec.timeout).expect("the store");
    let stored = upload::upload(&store, &a[2], Path::new(&a[5]), &recipients).expect("upload");
    println!(
        "stored={} parts={} seconds={:.3}",
        stored.size,
        stored.parts,
        started.elapsed().as_secs_f64()
    );
}
