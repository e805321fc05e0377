//! A running local mesh, what `weft up` and `weft demo` start: `weft control` as a child, a
//! bootstrap token per (namespace, service account), the mesh file's config applied through
//! the admin API, and one `weft run` child per workload, each line of its output prefixed with
//! the workload's name.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;
use tracing::{debug, error, warn};

use super::admin::Admin;
use super::mesh_file::{Mesh, WorkloadSpec};
use super::process::{self, Child, ChildSpec, Exit, Listener, Output, STOP_GRACE, Stream, Tracker};

/// How long `weft control` and each `weft run` may take to announce their listeners.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// Istio's ports, used when the mesh file names none.
pub const DEFAULT_GRPC: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 15012);
pub const DEFAULT_ADMIN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 15014);

/// How to start a mesh.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// This binary: `weft control` and `weft run` are started from it.
    pub weft: PathBuf,
    /// Where children's output goes.
    pub output: Output,
    /// Listeners of the control plane when the mesh file names none.
    pub grpc: SocketAddr,
    pub admin: SocketAddr,
    /// Every child started, so that an interrupted start can wait for them to stop.
    pub tracker: Tracker,
}

/// The control plane child.
#[derive(Debug)]
pub struct ControlPlane {
    pub child: Child,
    pub grpc: SocketAddr,
    pub admin: Admin,
    /// `<data dir>/root-cert.pem`: what proxies verify the control plane with.
    pub ca_bundle: PathBuf,
}

/// A workload's `weft run` child and what it announced.
#[derive(Debug)]
pub struct Workload {
    pub spec: WorkloadSpec,
    pub child: Child,
    pub listeners: Vec<Listener>,
}

impl Workload {
    pub fn listener(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.addr)
    }
}

/// A started mesh. Stop it with [`RunningMesh::stop`].
#[derive(Debug)]
pub struct RunningMesh {
    pub control: ControlPlane,
    pub workloads: Vec<Workload>,
    output: Output,
}

impl RunningMesh {
    /// Starts the control plane, calls `started` with it (before anything else is started),
    /// applies the config and starts every workload. Whatever was started is stopped again
    /// when a step fails. A workload that does not come up is logged, not fatal.
    pub async fn start(
        mesh: &Mesh,
        options: &StartOptions,
        started: impl FnOnce(&ControlPlane) -> anyhow::Result<()>,
    ) -> anyhow::Result<RunningMesh> {
        let mut control = start_control(mesh, options).await?;
        let configured = async {
            started(&control)?;
            apply_config(&control.admin, &mesh.config).await?;
            start_workloads(mesh, options, &control).await
        };
        match configured.await {
            Ok(workloads) => Ok(RunningMesh {
                control,
                workloads,
                output: options.output.clone(),
            }),
            Err(err) => {
                control.child.stop(STOP_GRACE).await;
                Err(err)
            }
        }
    }

    pub fn workload(&self, name: &str) -> Option<&Workload> {
        self.workloads.iter().find(|w| w.spec.name == name)
    }

    /// Logs every workload or control-plane exit until `shutdown` resolves. A workload that
    /// exits is not restarted; the others keep running.
    pub async fn supervise(&mut self, shutdown: impl Future<Output = ()>) {
        let (tx, mut exits) = mpsc::unbounded_channel::<(String, Exit)>();
        let watch = |label: String, child: &Child| {
            let tx = tx.clone();
            let mut exit = child.exit_watch();
            tokio::spawn(async move {
                if let Ok(exit) = exit.wait_for(Option::is_some).await {
                    let _ = tx.send((label, exit.unwrap_or(Exit::Unknown)));
                }
            });
        };
        watch("control".to_string(), &self.control.child);
        for w in &self.workloads {
            watch(w.spec.name.clone(), &w.child);
        }
        drop(tx);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                Some((label, exit)) = exits.recv() => {
                    let line = format!("exited ({exit})");
                    self.output.line(Stream::Stderr, &format!("[{label}] "), &line);
                    if label == "control" {
                        error!(%exit, "the control plane exited; proxies keep their last config");
                    } else {
                        warn!(workload = %label, %exit, "workload exited; the others keep running");
                    }
                }
            }
        }
    }

    /// Stops every workload (SIGTERM, SIGKILL after 5 s), then the control plane.
    pub async fn stop(&mut self) {
        let mut children: Vec<&mut Child> =
            self.workloads.iter_mut().map(|w| &mut w.child).collect();
        process::stop_all(&mut children, STOP_GRACE).await;
        self.control.child.stop(STOP_GRACE).await;
        debug!("mesh stopped");
    }
}

/// Starts `weft control` and waits for its listeners and its admin token.
async fn start_control(mesh: &Mesh, options: &StartOptions) -> anyhow::Result<ControlPlane> {
    let data_dir = &mesh.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    // `weft control` also watches a directory; resources put there are read-only through the
    // admin API. weft up applies its config through the API, so this one starts empty.
    let watched = data_dir.join("config.d");
    std::fs::create_dir_all(&watched).with_context(|| format!("creating {}", watched.display()))?;
    let spec = &mesh.file.control_plane;
    let child = ChildSpec::new("control", &options.weft)
        .arg("control")
        .arg("--config-dir")
        .arg(&watched)
        .arg("--listen")
        .arg(spec.listen.unwrap_or(options.grpc).to_string())
        .arg("--admin")
        .arg(spec.admin.unwrap_or(options.admin).to_string())
        .arg("--data-dir")
        .arg(data_dir);
    let mut child = process::spawn(child, &options.output)?;
    options.tracker.track(&child);
    let started = async {
        let listeners = child.listeners(&["grpc", "admin"], START_DEADLINE).await?;
        let find = |name: &str| {
            listeners
                .iter()
                .find(|l| l.name == name)
                .map(|l| l.addr)
                .with_context(|| format!("weft control announced no {name} listener"))
        };
        let grpc = find("grpc")?;
        let admin_addr = find("admin")?;
        let ca_bundle = data_dir.join("root-cert.pem");
        wait_for_file(&data_dir.join("admin.token")).await?;
        wait_for_file(&ca_bundle).await?;
        let admin = Admin::from_data_dir(admin_addr, data_dir)?;
        anyhow::Ok((grpc, admin, ca_bundle))
    };
    match started.await {
        Ok((grpc, admin, ca_bundle)) => {
            debug!(%grpc, admin = %admin.addr(), "control plane started");
            Ok(ControlPlane {
                child,
                grpc,
                admin,
                ca_bundle,
            })
        }
        Err(err) => {
            child.stop(STOP_GRACE).await;
            Err(err.context("starting weft control"))
        }
    }
}

/// `weft control` writes its files before it announces its listeners; this only guards
/// against a slow file system.
async fn wait_for_file(path: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    while !path.is_file() {
        if started.elapsed() > Duration::from_secs(5) {
            anyhow::bail!("weft control did not write {}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Applies every config file (directories recursively, in name order), one file at a time.
pub async fn apply_config(admin: &Admin, paths: &[PathBuf]) -> anyhow::Result<()> {
    for path in paths {
        let files = weft_api::load::config_files(path)
            .with_context(|| format!("config {}", path.display()))?;
        for file in files {
            admin.apply_file(&file).await?;
            debug!(file = %file.display(), "config applied");
        }
    }
    Ok(())
}

/// Starts every workload's `weft run` at once, then collects what each announced.
async fn start_workloads(
    mesh: &Mesh,
    options: &StartOptions,
    control: &ControlPlane,
) -> anyhow::Result<Vec<Workload>> {
    let mut tokens: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut started = Vec::new();
    for spec in &mesh.file.workloads {
        let key = (spec.namespace.clone(), spec.service_account().to_string());
        let token = match tokens.get(&key) {
            Some(token) => token.clone(),
            None => {
                let token = control.admin.create_token(&key.0, &key.1).await?;
                tokens.insert(key, token.clone());
                token
            }
        };
        let child = process::spawn(run_spec(spec, options, control, &token), &options.output)?;
        options.tracker.track(&child);
        started.push((spec.clone(), child));
    }
    let mut workloads = Vec::new();
    for (spec, mut child) in started {
        let mut names = vec!["outbound".to_string(), "inbound".into(), "admin".into()];
        for up in spec.upstreams()? {
            names.push(up.listener_name());
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let prefix = format!("[{}] ", spec.name);
        let listeners = match child.listeners(&names, START_DEADLINE).await {
            Ok(listeners) => listeners,
            Err(err) => {
                error!(workload = %spec.name, error = %format!("{err:#}"), "workload did not start");
                Vec::new()
            }
        };
        for l in &listeners {
            options.output.line(Stream::Stdout, &prefix, &l.to_string());
        }
        workloads.push(Workload {
            spec,
            child,
            listeners,
        });
    }
    Ok(workloads)
}

/// `weft run ... -- COMMAND` for one workload; the token goes in the environment.
fn run_spec(
    spec: &WorkloadSpec,
    options: &StartOptions,
    control: &ControlPlane,
    token: &str,
) -> ChildSpec {
    let mut child = ChildSpec::new(&spec.name, &options.weft)
        .arg("run")
        .arg("--service")
        .arg(&spec.service)
        .arg("--version")
        .arg(&spec.version)
        .arg("--namespace")
        .arg(&spec.namespace)
        .arg("--service-account")
        .arg(spec.service_account())
        .arg("--name")
        .arg(&spec.name)
        .arg("--port")
        .arg(spec.port.to_string())
        .arg("--exit-with-parent")
        .arg("--control-plane")
        .arg(control.grpc.to_string())
        .arg("--ca-bundle")
        .arg(&control.ca_bundle)
        .env("WEFT_TOKEN", token);
    if let Some(port) = spec.app_port {
        child = child.arg("--app-port").arg(port.to_string());
    }
    if !spec.labels.is_empty() {
        let labels: Vec<String> = spec
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        child = child.arg("--labels").arg(labels.join(","));
    }
    for up in &spec.upstreams {
        child = child.arg("--upstream").arg(up);
    }
    if let Some(probe) = &spec.probe {
        child = child.arg("--probe").arg(probe);
    }
    for (key, value) in &spec.env {
        child = child.env(key, value);
    }
    child = child.arg("--");
    for arg in &spec.command {
        child = child.arg(arg);
    }
    child
}
