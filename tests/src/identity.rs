//! [`TestCa`]: a certificate authority made with the real `weft ca init`, issuing workload
//! identities with `weft ca issue` into directories a proxy's `--identity` reads.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::{or_fail, weft_bin};

/// A CA in a temporary directory (removed on drop).
pub struct TestCa {
    dir: PathBuf,
}

fn run(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(weft_bin())
        .args(args)
        .output()
        .with_context(|| format!("running weft {args:?}"))?;
    if !out.status.success() {
        bail!(
            "weft {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

impl TestCa {
    /// A new CA for `trust_domain`.
    pub fn new(trust_domain: &str) -> TestCa {
        let dir = std::env::temp_dir().join(format!(
            "weft-ca-test-{}-{}",
            std::process::id(),
            crate::proxy::unique()
        ));
        let ca = TestCa { dir };
        let dir = ca.dir.join("ca");
        or_fail(run(&[
            "ca",
            "init",
            "--dir",
            &dir.display().to_string(),
            "--trust-domain",
            trust_domain,
        ]));
        ca
    }

    /// Issues `spiffe_id` (`spiffe://td/ns/NS/sa/SA`) into a new directory and returns it.
    pub fn issue(&self, spiffe_id: &str) -> PathBuf {
        let out = self.dir.join(format!("id-{}", crate::proxy::unique()));
        or_fail(self.issue_into(spiffe_id, &out, "24h"));
        out
    }

    /// Issues `spiffe_id` into `out` (replacing what is there) with `ttl`.
    pub fn issue_into(&self, spiffe_id: &str, out: &Path, ttl: &str) -> anyhow::Result<()> {
        run(&[
            "ca",
            "issue",
            "--dir",
            &self.dir.join("ca").display().to_string(),
            "--id",
            spiffe_id,
            "--out",
            &out.display().to_string(),
            "--ttl",
            ttl,
        ])
    }
}

impl TestCa {
    /// Re-issues `spiffe_id` into `dir` as a rotating agent would: a new certificate and key
    /// are written to a sibling directory first, then `cert-chain.pem`, `key.pem` and
    /// `root-cert.pem` are renamed into place one after the other. A reader may therefore
    /// briefly see the new certificate next to the old key, and must keep its identity then.
    pub fn rotate(&self, spiffe_id: &str, dir: &Path) -> anyhow::Result<()> {
        let staging = self.dir.join(format!("staging-{}", crate::proxy::unique()));
        self.issue_into(spiffe_id, &staging, "24h")?;
        for name in ["cert-chain.pem", "key.pem", "root-cert.pem"] {
            std::fs::rename(staging.join(name), dir.join(name))
                .with_context(|| format!("moving {name} into {}", dir.display()))?;
        }
        let _ = std::fs::remove_dir(&staging);
        Ok(())
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
