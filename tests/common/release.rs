//! The fixture releases: upstream-layout tarballs built from real etcd builds.

use super::*;

/// Release tarballs + SHA256SUMS built from real etcd 3.4.23 (Debian) and 3.5.1 (upstream, PyPI).
/// Built once; concurrent test processes serialise on a lock file.
pub fn fixtures() -> PathBuf {
    let dir = repo().join("target/fixtures");
    fs::create_dir_all(&dir).unwrap();
    ok(Command::new("flock")
        .arg(dir.join(".lock"))
        .arg("bash")
        .arg(support("fixtures.sh"))
        .arg(&dir));
    dir
}

/// Seed lines naming the fixture release `version` by file:// URL, checked against its SHA256SUMS.
pub fn file_release(version: &str) -> String {
    format!(
        "etcd_version: \"{version}\"\n\
         etcd_download_url: \"file://{0}/v{{{{ etcd_version }}}}/etcd-v{{{{ etcd_version }}}}-linux-amd64.tar.gz\"\n\
         etcd_download_url_checksum: \"sha256:file://{0}/v{{{{ etcd_version }}}}/SHA256SUMS\"\n",
        fixtures().display()
    )
}

/// Seed lines naming the fixture release `version` by file:// URL with its digest pinned.
pub fn pinned_release(version: &str) -> String {
    let fx = fixtures();
    let sums = fs::read_to_string(fx.join(format!("v{version}/SHA256SUMS"))).unwrap();
    format!(
        "etcd_version: \"{version}\"\n\
         etcd_download_url: \"file://{}/v{version}/etcd-v{version}-linux-amd64.tar.gz\"\n\
         etcd_download_url_checksum: \"sha256:{}\"\n",
        fx.display(),
        sums.split_whitespace().next().unwrap()
    )
}
