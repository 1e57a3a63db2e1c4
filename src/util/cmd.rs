//! Running the programs the tool drives (systemctl, sysusers/useradd, etcdctl/etcdutl): one way to
//! run them and one shape of failure, naming the command, its exit status and what it said.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `cmd` (`shown` is how messages name it), feeding it `input` on stdin if given; returns its
/// stdout, or an error with its exit status and stderr.
pub fn run(mut cmd: Command, shown: &str, input: Option<&str>) -> Result<String> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("running {shown}"))?;
    if let Some(i) = input {
        child
            .stdin
            .take()
            .context("stdin was not piped")?
            .write_all(i.as_bytes())
            .with_context(|| format!("writing to {shown}"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("running {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_stdout_and_names_a_failure_with_its_stderr() {
        let mut c = Command::new("sh");
        c.args(["-c", "cat; echo out"]);
        assert_eq!(run(c, "sh", Some("in ")).unwrap(), "in out\n");
        let mut c = Command::new("sh");
        c.args(["-c", "echo bad >&2; exit 3"]);
        let e = run(c, "the failing sh", None).unwrap_err().to_string();
        assert!(
            e.starts_with("the failing sh failed (exit status: 3): bad"),
            "{e}"
        );
        assert!(run(Command::new("/nonexistent/x"), "x", None)
            .unwrap_err()
            .to_string()
            .contains("running x"));
    }
}
