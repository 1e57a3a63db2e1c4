//! A response body copied into its file: capped, passed on chunk by chunk, its progress shown.

use super::{Stopped, Tee};
use crate::util::error::Error;
use crate::util::io::HashingWriter;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::Path;

pub(super) fn too_large(url: &str, cap: u64) -> String {
    let size = if cap >= 1 << 20 {
        format!("{} MiB", cap >> 20)
    } else {
        format!("{cap} bytes")
    };
    format!("{url} is larger than {size}, more than anything it should be; refusing it")
}

/// Copies a response body into the hashing file, passing each chunk on.
#[allow(clippy::too_many_arguments)]
pub(super) fn copy_body(
    url: &str,
    mut body: Box<dyn Read>,
    w: &mut HashingWriter<io::BufWriter<File>>,
    shown: &Path,
    cap: u64,
    tee: &mut dyn FnMut(Tee) -> bool,
    progress: &Progress,
) -> Result<()> {
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => bail!(Error::transient(format!(
                "reading {url} after {} bytes: {e}",
                w.written
            ))),
        };
        let before = w.written;
        if before + n as u64 > cap {
            bail!(too_large(url, cap));
        }
        w.write_all(&buf[..n])
            .with_context(|| format!("writing {}", shown.display()))?;
        if !tee(Tee::Bytes(&buf[..n])) {
            bail!(Stopped);
        }
        if before >> 20 != w.written >> 20 {
            // Named by how many MiB have arrived, not by a count of calls.
            crate::failpoint!("download-mid", &format!("{}MiB", w.written >> 20));
        }
        progress.set(w.written);
    }
}

/// The download's progress bar, only when a person watches stderr (never in the journal or
/// cloud-init's log).
pub(super) struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    pub(super) fn new() -> Progress {
        if !io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "downloading: {bytes} / {total_bytes} ({percent}%) {bytes_per_sec}",
        ) {
            bar.set_style(style);
        }
        Progress(Some(bar))
    }
    pub(super) fn set_total(&self, total: u64) {
        if let Some(b) = &self.0 {
            b.set_length(total);
        }
    }
    pub(super) fn set(&self, done: u64) {
        if let Some(b) = &self.0 {
            b.set_position(done);
        }
    }
    pub(super) fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
