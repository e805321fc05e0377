//! `weft up -f MESH.yaml`: a whole mesh of plain processes on one machine.
//!
//! Starts `weft control` (a child), waits for its `listening grpc|admin` lines and prints them
//! first on stdout as its own, creates a bootstrap token per (namespace, service account)
//! through the admin API, applies the file's `config` (files or directories, in order), then
//! starts every workload as a `weft run` child with its token and the control plane's CA
//! bundle. Every output line of a child is prefixed with its name (`[control] `,
//! `[reviews-v1] `; inside a workload, `[proxy] ` and `[app] `), and each workload's
//! listeners are printed as `[NAME] listening outbound on ...`.
//!
//! A workload that exits is logged and the rest keep running. On SIGTERM or Ctrl-C every
//! workload is stopped (SIGTERM, then SIGKILL after 5 s), then the control plane, and `weft up`
//! exits 0. Children stay in `weft up`'s process group.
//!
//! The mesh file:
//!
//! ```yaml
//! apiVersion: weft.mesh/v1alpha1  # optional; marks the file as not Istio config, so
//! kind: Mesh                      # `weft validate DIR` skips it
//! controlPlane:                 # optional, as are all its fields
//!   listen: 127.0.0.1:15012     # gRPC (TLS) listener of `weft control`
//!   admin: 127.0.0.1:15014      # admin API listener
//!   dataDir: ./weft-data        # CA, tokens, applied config (default: weft-data beside the file)
//! config: [istio/]              # files or directories applied once the control plane is up
//! workloads:
//! - name: reviews-v1            # unique; prefixes the workload's output lines
//!   service: reviews            # the service it is an endpoint of
//!   version: v1                 # default v1 (the `version` label)
//!   namespace: default          # default "default"
//!   serviceAccount: reviews     # default: the service name
//!   port: 9080                  # the service port clients use (default 9080)
//!   appPort: 9180               # default: a free port, given to the command as PORT / ${PORT}
//!   labels: {tier: backend}     # extra labels (app and version are always set)
//!   env: {LOG_LEVEL: debug}     # extra environment for the command
//!   command: [weft, echo, --listen, "127.0.0.1:${PORT}", --name, reviews-v1]
//!   upstreams: [ratings:9081]   # SERVICE:LOCAL_PORT (see `weft run --upstream`)
//!   probe: http:/healthz        # http:/PATH or tcp
//! ```
//!
//! Relative paths (`config`, `dataDir`) are relative to the mesh file. In `command`, a leading
//! `weft` means this binary and `${PORT}` the app's port. `weft control` also watches
//! `DATA_DIR/config.d` (empty at first): files put there apply at once and are read-only
//! through the admin API.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::local::mesh::{ControlPlane, DEFAULT_ADMIN, DEFAULT_GRPC, RunningMesh, StartOptions};
use super::local::mesh_file::Mesh;
use super::local::process::{Output, STOP_GRACE, Tracker};

#[derive(Debug, clap::Args)]
#[command(after_long_help = MESH_FILE_HELP)]
pub struct Args {
    /// The mesh file (its schema is below, in `weft up --help`).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
}

/// `weft up --help`'s description of the mesh file.
const MESH_FILE_HELP: &str = "\
The mesh file (paths relative to it; in `command`, a leading `weft` means this binary and
${PORT} the app's port):

  apiVersion: weft.mesh/v1alpha1  # optional; lets `weft validate DIR` skip the file
  kind: Mesh
  controlPlane:                 # optional, as are all its fields
    listen: 127.0.0.1:15012     # gRPC (TLS) listener of `weft control`
    admin: 127.0.0.1:15014      # admin API listener
    dataDir: ./weft-data        # CA, tokens, applied config
  config: [istio/]              # files or directories applied once the control plane is up
  workloads:
  - name: reviews-v1            # unique; prefixes the workload's output lines
    service: reviews            # the service it is an endpoint of
    version: v1                 # default v1
    namespace: default          # default \"default\"
    serviceAccount: reviews     # default: the service name
    port: 9080                  # the service port clients use (default 9080)
    appPort: 9180               # default: a free port (PORT, ${PORT})
    labels: {tier: backend}     # extra labels (app and version are always set)
    env: {LOG_LEVEL: debug}     # extra environment for the command
    command: [weft, echo, --name, reviews-v1]
    upstreams: [ratings:9081]   # SERVICE:LOCAL_PORT (see `weft run --upstream`)
    probe: http:/healthz        # http:/PATH or tcp";

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mesh = Mesh::load(&args.file)?;
    let options = StartOptions {
        weft: std::env::current_exe().context("locating the weft binary")?,
        output: Output::Terminal,
        grpc: DEFAULT_GRPC,
        admin: DEFAULT_ADMIN,
        tracker: Tracker::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut shutdown = std::pin::pin!(super::shutdown_signal());
        let started = tokio::select! {
            () = &mut shutdown => {
                // The start was dropped, and with it the handles of the children started so
                // far, which tells each to stop; wait until they have.
                options.tracker.wait_all(STOP_GRACE + Duration::from_secs(1)).await;
                return Ok(ExitCode::SUCCESS);
            }
            started = RunningMesh::start(&mesh, &options, announce) => started?,
        };
        let mut running = started;
        running.supervise(&mut shutdown).await;
        tracing::info!("stopping the mesh");
        running.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Prints the control plane's listeners as `weft up`'s own, first on stdout.
fn announce(control: &ControlPlane) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening grpc on {}", control.grpc)?;
    writeln!(out, "listening admin on {}", control.admin.addr())?;
    out.flush()?;
    Ok(())
}
