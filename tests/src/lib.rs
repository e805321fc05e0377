//! The end-to-end harness: starts real `weft` processes on 127.0.0.1 with port 0, learns their
//! addresses from the `listening ...` lines they print first, and talks to them with real clients.
//!
//! The binary is found by [`weft_bin`] (build it first with `cargo build -p weft-cli`, or point
//! `WEFT_BIN` at one). Readiness is always awaited by polling with a deadline
//! ([`wait_until`], [`wait_until_async`]), never by fixed sleeps. Every process is killed when its
//! handle drops, so a failing test leaves nothing behind.
//!
//! Fallible functions return [`anyhow::Result`]; the short constructors (`TestEcho::start`) fail
//! the test with the full error chain instead.

mod binary;
mod control;
mod echo;
mod fake_control;
mod group;
pub mod http;
mod identity;
mod live_mesh;
mod mesh;
mod plane_proxy;
mod process;
mod proxy;
pub mod raw;
pub mod tls;
mod wait;

pub use binary::{try_weft_bin, weft_bin};
pub use control::{CliOutput, TestControl};
pub use echo::{TestEcho, TestEchoBuilder, echo_count};
pub use fake_control::{FakeControlPlane, PlaneEvent};
pub use group::GroupProcess;
pub use identity::TestCa;
pub use live_mesh::{LiveControl, Sent, Traffic, Workload};
pub use mesh::{reviews_mesh, service_mesh, sidecar_service};
pub use plane_proxy::TestPlaneProxy;
pub use process::{Listener, WeftProcess};
pub use proxy::{ProxyClient, TestProxy};
pub use wait::{WaitTimeout, wait_until, wait_until_async};

/// How long a process may take to print its listening lines; generous for a loaded 2-core CI.
pub const START_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

/// Fails the calling test with the whole error chain when a harness step fails.
#[allow(
    clippy::panic,
    reason = "test harness: a failed setup step must fail the test that asked for it"
)]
#[track_caller]
pub(crate) fn or_fail<T>(result: anyhow::Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{err:#}"),
    }
}
