//! Finds the `weft` binary the tests run.

use std::env;
use std::path::PathBuf;

use anyhow::{Context, bail};

/// The `weft` binary: `$WEFT_BIN` when set, else `weft` in the target directory of the running
/// test (`target/<profile>/deps/<test>` → `target/<profile>/weft`). Fails the test with
/// instructions when it is missing.
#[track_caller]
pub fn weft_bin() -> PathBuf {
    crate::or_fail(try_weft_bin())
}

/// [`weft_bin`], returning the problem instead of failing the test.
pub fn try_weft_bin() -> anyhow::Result<PathBuf> {
    if let Some(path) = env::var_os("WEFT_BIN") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("WEFT_BIN={} is not a file", path.display());
        }
        return Ok(path);
    }
    let exe = env::current_exe().context("cannot locate the running test executable")?;
    let mut dir = exe
        .parent()
        .context("the test executable has no parent directory")?;
    if dir.ends_with("deps") {
        dir = dir
            .parent()
            .context("the deps directory has no parent directory")?;
    }
    let bin = dir.join(format!("weft{}", env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        bail!(
            "the weft binary is missing at {}: build it with `cargo build -p weft-cli` \
             (same profile as the tests), or set WEFT_BIN to a weft binary",
            bin.display()
        );
    }
    Ok(bin)
}
