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
    release_in(&fixtures(), version)
}

/// Seed lines naming release `version` in the release dir `dir` (`v<version>/...`) by file://
/// URL, checked against its SHA256SUMS.
fn release_in(dir: &Path, version: &str) -> String {
    format!(
        "etcd_version: \"{version}\"\n\
         etcd_download_url: \"file://{0}/v{{{{ etcd_version }}}}/etcd-v{{{{ etcd_version }}}}-linux-amd64.tar.gz\"\n\
         etcd_download_url_checksum: \"sha256:file://{0}/v{{{{ etcd_version }}}}/SHA256SUMS\"\n",
        dir.display()
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

/// Stand-in etcd releases (tests/support/standin) for versions no real build of reaches this
/// machine: `etcd --version`/`--help` answer as that version, `etcd` with flags serves a one-member
/// stand-in cluster. Built on demand into target/fixtures/standin, one build at a time.
pub fn standin(version: &str) -> PathBuf {
    let dir = repo().join("target/fixtures/standin");
    fs::create_dir_all(&dir).unwrap();
    ok(Command::new("flock")
        .arg(dir.join(".lock"))
        .arg("bash")
        .arg(support("standin/build.sh"))
        .arg(version)
        .arg(&dir));
    dir
}

/// Seed lines naming the stand-in release `version` by file:// URL, checked against its SHA256SUMS.
pub fn standin_release(version: &str) -> String {
    release_in(&standin(version), version)
}
