//! `weft demo`: a bookinfo-like mesh on this machine, and Istio's classic scenarios observed
//! with real traffic.
//!
//! The mesh is `examples/demo/mesh.yaml` (productpage → reviews v1/v2/v3 → ratings, every app a
//! `weft echo --call`, plus a `demo-client` workload whose sidecar is where requests enter),
//! started in-process with `weft up`'s machinery from a temporary directory, the control plane
//! on ephemeral ports. Once every proxy is SYNCED, the scenarios run one after another: each
//! applies its YAML through the admin API (the seeds', verbatim), waits until every proxy has
//! ACKed it, sends real requests to productpage through the client's sidecar and prints what
//! they showed, with `PASS` or `FAIL`. Weighted splits are judged within 5 standard deviations
//! of a binomial of the sample size. The exit code is 0 only if every scenario passed.
//!
//! The workloads' output goes to `mesh.log` in the temporary directory (kept when a scenario
//! fails), or to the terminal with `--show-logs`. `--keep-running` leaves the mesh up after
//! the scenarios, until Ctrl-C.

/// Prints one line of the demo's report. Unlike `println!`, a closed stdout (`weft demo |
/// head`) does not panic, which would leave the mesh's processes behind.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod scenarios;
mod traffic;

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::local::admin::Admin;
use super::local::mesh::{RunningMesh, StartOptions};
use super::local::mesh_file::Mesh;
use super::local::process::{Output, STOP_GRACE, Tracker};
use scenarios::{Outcome, Scenario, Target};

/// The mesh, as checked in.
const MESH: &str = include_str!("../../../../../examples/demo/mesh.yaml");
/// Its `config` directory.
const DESTINATION_RULES: &str =
    include_str!("../../../../../examples/demo/istio/destination-rules.yaml");
/// The workload whose sidecar sends the demo's requests.
const CLIENT: &str = "demo-client";
/// How long the proxies may take to connect and ACK.
const SYNC_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the mesh running after the scenarios, until Ctrl-C, to explore it.
    #[arg(long)]
    pub keep_running: bool,
    /// Requests sent per measurement.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(20..))]
    pub requests: u16,
    /// Show the workloads' output (access logs) instead of writing it to mesh.log.
    #[arg(long)]
    pub show_logs: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new()
        .prefix("weft-demo-")
        .tempdir()
        .context("creating a temporary directory")?;
    let mesh = write_mesh(dir.path())?;
    let log = dir.path().join("mesh.log");
    let output = if args.show_logs {
        Output::Terminal
    } else {
        let file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        Output::File(Arc::new(Mutex::new(file)))
    };
    let options = StartOptions {
        weft: std::env::current_exe().context("locating the weft binary")?,
        output,
        grpc: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin: SocketAddr::from(([127, 0, 0, 1], 0)),
        tracker: Tracker::default(),
    };
    say!("weft demo: a bookinfo-like mesh of plain processes (examples/demo/mesh.yaml)");
    if !args.show_logs {
        say!("workload output: {}", log.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let passed = runtime.block_on(async {
        let shutdown = std::pin::pin!(super::shutdown_signal());
        demo(&mesh, &options, args, shutdown).await
    })?;
    if passed {
        Ok(ExitCode::SUCCESS)
    } else {
        let kept = dir.keep();
        say!("the mesh's files and output are kept in {}", kept.display());
        Ok(ExitCode::from(1))
    }
}

/// Writes the mesh file and its config into `dir`, with the control plane on ephemeral ports
/// and its data in `dir/data`.
fn write_mesh(dir: &Path) -> anyhow::Result<Mesh> {
    let istio = dir.join("istio");
    std::fs::create_dir_all(&istio)?;
    std::fs::write(istio.join("destination-rules.yaml"), DESTINATION_RULES)?;
    let path = dir.join("mesh.yaml");
    std::fs::write(&path, MESH)?;
    let mut mesh = Mesh::load(&path)?;
    mesh.file.control_plane.listen = None;
    mesh.file.control_plane.admin = None;
    mesh.data_dir = dir.join("data");
    Ok(mesh)
}

/// Starts the mesh, runs every scenario, stops the mesh; true when all passed.
/// A signal stops it at any point; it then counts as failed, unless it came while the mesh
/// was kept running after the scenarios.
async fn demo(
    mesh: &Mesh,
    options: &StartOptions,
    args: &Args,
    mut shutdown: Pin<&mut impl Future<Output = ()>>,
) -> anyhow::Result<bool> {
    let started = Instant::now();
    let mut running = tokio::select! {
        () = &mut shutdown => {
            // The start was dropped, and with it the handles of the children started so
            // far, which tells each to stop; wait until they have.
            options.tracker.wait_all(STOP_GRACE + Duration::from_secs(1)).await;
            return Ok(false);
        }
        running = RunningMesh::start(mesh, options, |_| Ok(())) => running?,
    };
    let mut interrupted = false;
    let passed = tokio::select! {
        () = &mut shutdown => {
            say!("interrupted; stopping the mesh");
            interrupted = true;
            false
        }
        died = first_exit(&running) => {
            say!("FAIL: {died}; see its output");
            false
        }
        result = scenarios_on(&running, mesh, args) => match result {
            Ok(passed) => passed,
            Err(err) => {
                say!("FAIL: {err:#}");
                false
            }
        },
    };
    if args.keep_running && !interrupted {
        keep_running(&running);
        shutdown.as_mut().await;
    }
    running.stop().await;
    say!("({:.0}s)", started.elapsed().as_secs_f64());
    Ok(passed)
}

/// Resolves when the control plane or a workload ends: the demo cannot go on without it.
async fn first_exit(running: &RunningMesh) -> String {
    loop {
        if let Some(exit) = running.control.child.try_exit() {
            return format!("the control plane exited ({exit})");
        }
        for w in &running.workloads {
            if let Some(exit) = w.child.try_exit() {
                return format!("workload {} exited ({exit})", w.spec.name);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn scenarios_on(running: &RunningMesh, mesh: &Mesh, args: &Args) -> anyhow::Result<bool> {
    let target = target(running, args)?;
    let admin = &running.control.admin;
    let expected: Vec<(&str, &str)> = mesh
        .file
        .workloads
        .iter()
        .map(|w| (w.service.as_str(), w.version.as_str()))
        .collect();
    let proxies = admin.wait_synced(&expected, None, SYNC_DEADLINE).await?;
    // A sidecar is SYNCED a moment before its app listens.
    traffic::warm_up(target.outbound, SYNC_DEADLINE).await?;
    say!(
        "control plane admin on {}; {} workloads, every sidecar SYNCED, every app answering",
        admin.addr(),
        proxies.len()
    );
    let all = scenarios::all();
    let mut failed = Vec::new();
    for (i, scenario) in all.iter().enumerate() {
        say!("");
        say!(
            "[{}/{}] {}: {}",
            i + 1,
            all.len(),
            scenario.name,
            scenario.what
        );
        let outcome = match play(scenario, admin, &expected, &target).await {
            Ok(outcome) => outcome,
            Err(err) => Outcome {
                pass: false,
                lines: vec![format!("✗ {err:#}")],
            },
        };
        for line in &outcome.lines {
            say!("    {line}");
        }
        say!("    {}", if outcome.pass { "PASS" } else { "FAIL" });
        if !outcome.pass {
            failed.push(scenario.name);
        }
    }
    say!("");
    if failed.is_empty() {
        say!("demo: all {} scenarios passed", all.len());
    } else {
        say!(
            "demo: {} of {} scenarios failed: {}",
            failed.len(),
            all.len(),
            failed.join(", ")
        );
    }
    Ok(failed.is_empty())
}

fn target(running: &RunningMesh, args: &Args) -> anyhow::Result<Target> {
    for w in &running.workloads {
        if w.listeners.is_empty() {
            bail!("workload {} did not start (see its output)", w.spec.name);
        }
    }
    let listener = |workload: &str, name: &str| {
        running
            .workload(workload)
            .and_then(|w| w.listener(name))
            .with_context(|| format!("workload {workload} has no {name} listener"))
    };
    Ok(Target {
        outbound: listener(CLIENT, "outbound")?,
        productpage_inbound: listener("productpage-v1", "inbound")?,
        requests: usize::from(args.requests),
    })
}

/// Applies a scenario's config, waits until every proxy ACKed it, observes, and removes the
/// config again unless the scenario keeps it.
async fn play(
    scenario: &Scenario,
    admin: &Admin,
    expected: &[(&str, &str)],
    target: &Target,
) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::new();
    scenario.check.before(target, &mut outcome).await;
    if let Some((name, yaml)) = scenario.config {
        let before = admin.versions().await?;
        admin.apply(name, yaml).await?;
        admin
            .wait_synced(expected, Some(&before), SYNC_DEADLINE)
            .await?;
        outcome
            .lines
            .push(format!("  applied {name}; every sidecar ACKed it"));
    }
    scenario.check.after(target, &mut outcome).await;
    if let (Some((name, yaml)), false) = (scenario.config, scenario.keep) {
        let before = admin.versions().await?;
        for resource in weft_api::load_text(name, yaml).resources {
            admin
                .delete(
                    resource.kind.as_str(),
                    resource.namespace(),
                    resource.name(),
                )
                .await?;
        }
        admin
            .wait_synced(expected, Some(&before), SYNC_DEADLINE)
            .await?;
    }
    Ok(outcome)
}

fn keep_running(running: &RunningMesh) {
    let admin = &running.control.admin;
    say!("");
    say!("the mesh keeps running; Ctrl-C stops it. Try:");
    if let Some(outbound) = running
        .workload(CLIENT)
        .and_then(|w| w.listener("outbound"))
    {
        say!(
            "  curl -s -H 'Host: productpage:9080' -H 'end-user: jason' http://{outbound}/productpage"
        );
    }
    say!(
        "  WEFT_SERVER=http://{} weft proxy-status --token-file {}",
        admin.addr(),
        running
            .control
            .ca_bundle
            .with_file_name("admin.token")
            .display()
    );
}
