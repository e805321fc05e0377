//! `weft run`: runs a command as a mesh workload, next to its sidecar.
//!
//! The sidecar is a child `weft proxy` in control-plane mode: it gets its certificate and config
//! from `weft control` (bootstrap token + CA bundle) and registers as an endpoint of
//! `<service>.<namespace>.svc.cluster.local`. Once it announces its listeners, `weft run`
//! prints them first on stdout as its own (`listening outbound|inbound|admin on ...`, then
//! `listening upstream/<service> on ...` per `--upstream`), holds the app until the sidecar has
//! its first config (bounded by `--ready-timeout`), and starts the app with:
//!
//! | variable | value |
//! |---|---|
//! | `PORT` | the app's port (`--app-port`, else a free one below the ephemeral range, held until the app starts); `${PORT}` in the command is replaced too |
//! | `HTTP_PROXY`, `http_proxy` | `http://<outbound>`: the app calls `http://reviews:9080/...` and the sidecar routes it |
//! | `NO_PROXY`, `no_proxy` | `localhost,127.0.0.1,::1` |
//!
//! Why loopback is in `NO_PROXY`: the list is matched against the *destination* of a call, never
//! the proxy's own address, so it does not stop the app from reaching the sidecar; it makes calls
//! to local ports (the `--upstream` listeners, a local database) go straight there instead of
//! through the outbound listener, which would not know them. Mesh services are called by name
//! and still go through the sidecar.
//!
//! Output lines are prefixed `[proxy] ` and `[app] `. When the app exits, the sidecar is
//! stopped and `weft run` exits with the app's code (128 + signal if it was killed); on SIGTERM
//! or Ctrl-C both are stopped (SIGTERM, then SIGKILL after 5 s) and it exits 0. If the sidecar
//! dies, the app is stopped and `weft run` exits 1.

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use super::local::http;
use super::local::port::PortReservation;
use super::local::process::{self, Child, ChildSpec, Listener, Output, STOP_GRACE};
use super::local::upstream::{self, Upstream};

/// How long the sidecar may take to announce its listeners.
const SIDECAR_START: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The service this workload is an endpoint of (`<service>.<namespace>.svc.cluster.local`).
    #[arg(long)]
    pub service: String,
    /// The workload's version (its `version` label, what DestinationRule subsets select).
    #[arg(long, default_value = "v1")]
    pub version: String,
    /// The workload's namespace: short service names it calls resolve there.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// The service port clients call (`http://<service>:<port>`).
    #[arg(long, default_value_t = 9080)]
    pub port: u16,
    /// The port the app listens on, on 127.0.0.1 (default: a free port). Given to the app as
    /// PORT.
    #[arg(long)]
    pub app_port: Option<u16>,
    /// Extra labels, `k=v,k2=v2` (`app=<service>` and `version=<version>` are always set).
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// `SERVICE:LOCAL_PORT` (repeatable): listen on 127.0.0.1:LOCAL_PORT and send each HTTP
    /// request there to SERVICE through the sidecar.
    #[arg(long = "upstream")]
    pub upstreams: Vec<Upstream>,
    /// Health check of the app, `http:/PATH` or `tcp`, run by the sidecar: while it fails, the
    /// workload is not an endpoint of its service.
    #[arg(long)]
    pub probe: Option<String>,
    /// Time between probes (Go duration, e.g. 5s; default: the sidecar's).
    #[arg(long, requires = "probe")]
    pub probe_period: Option<String>,
    /// Failed probes in a row before the workload counts as unhealthy.
    #[arg(long, requires = "probe")]
    pub probe_failure_threshold: Option<u32>,
    /// The control plane's gRPC address, HOST:PORT.
    #[arg(long, env = "WEFT_CONTROL_PLANE")]
    pub control_plane: String,
    /// Bootstrap token (`weft token create`); prefer WEFT_TOKEN or --token-file, which other
    /// users cannot see in the process list.
    #[arg(long, env = "WEFT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the bootstrap token (wins over --token and WEFT_TOKEN).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// PEM roots the control plane's certificate chains to (`<data-dir>/root-cert.pem`).
    #[arg(long, env = "WEFT_CA_BUNDLE")]
    pub ca_bundle: PathBuf,
    /// The workload's service account (its SPIFFE identity); default: the service name.
    #[arg(long)]
    pub service_account: Option<String>,
    /// The sidecar's name in the control plane's registry (`weft proxy-status`); default:
    /// `<service>-<version>-<4 random hex digits>`.
    #[arg(long)]
    pub name: Option<String>,
    /// How long the app is held back waiting for the sidecar's first config (Go duration);
    /// after that it starts anyway.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub ready_timeout: Duration,
    /// Stop (as on SIGTERM) when the parent process goes away: `weft up` sets it, so that its
    /// workloads do not outlive it even when it is killed.
    #[arg(long, hide = true)]
    pub exit_with_parent: bool,
    /// The app: a program and its arguments, after `--`. A leading `weft` means this binary.
    #[arg(last = true, required = true, num_args = 1..)]
    pub command: Vec<OsString>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    weft_api::duration::parse_duration(s).map_err(|e| e.to_string())
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let token = token(args)?;
    if !args.ca_bundle.is_file() {
        bail!("--ca-bundle {}: no such file", args.ca_bundle.display());
    }
    let weft = std::env::current_exe().context("locating the weft binary")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut shutdown = std::pin::pin!(async {
            tokio::select! {
                () = super::shutdown_signal() => {}
                () = parent_gone(), if args.exit_with_parent => {
                    warn!("the parent process is gone; stopping");
                }
            }
        });
        let output = Output::Terminal;
        let mut app_port = match args.app_port {
            Some(port) => PortReservation::given(port),
            None => PortReservation::reserve()
                .await
                .context("finding a free port for the app")?,
        };
        let sidecar = sidecar_spec(args, &weft, &token, app_port.port());
        let mut proxy = process::spawn(sidecar, &output)?;
        let session = tokio::select! {
            () = &mut shutdown => {
                proxy.stop(STOP_GRACE).await;
                return Ok(ExitCode::SUCCESS);
            }
            session = start(args, &weft, &mut app_port, &mut proxy, &output) => session,
        };
        let mut session = match session {
            Ok(session) => session,
            Err(err) => {
                proxy.stop(STOP_GRACE).await;
                return Err(err);
            }
        };
        let code = session.supervise(&mut proxy, shutdown).await;
        Ok(ExitCode::from(code))
    })
}

/// Resolves once this process has a new parent (the old one ended).
async fn parent_gone() {
    let parent = rustix::process::getppid();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if rustix::process::getppid() != parent {
            return;
        }
    }
}

/// The token from --token-file, else --token / WEFT_TOKEN.
fn token(args: &Args) -> anyhow::Result<String> {
    let token = match (&args.token_file, &args.token) {
        (Some(path), _) => std::fs::read_to_string(path)
            .with_context(|| format!("reading --token-file {}", path.display()))?,
        (None, Some(token)) => token.clone(),
        (None, None) => bail!("a bootstrap token is needed: --token-file, --token or WEFT_TOKEN"),
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        bail!("the bootstrap token is empty");
    }
    Ok(token)
}

fn sidecar_spec(args: &Args, weft: &std::path::Path, token: &str, app_port: u16) -> ChildSpec {
    let mut labels = vec![
        format!("app={}", args.service),
        format!("version={}", args.version),
    ];
    labels.extend(
        args.labels
            .iter()
            .filter(|l| !l.is_empty() && !l.starts_with("app=") && !l.starts_with("version="))
            .cloned(),
    );
    let service_account = args.service_account.as_deref().unwrap_or(&args.service);
    let mut spec = ChildSpec::new("proxy", weft)
        .arg("proxy")
        .arg("--control-plane")
        .arg(&args.control_plane)
        .arg("--ca-bundle")
        .arg(&args.ca_bundle)
        .arg("--service")
        .arg(&args.service)
        .arg("--version")
        .arg(&args.version)
        .arg("--namespace")
        .arg(&args.namespace)
        .arg("--service-account")
        .arg(service_account)
        .arg("--service-port")
        .arg(args.port.to_string())
        .arg("--labels")
        .arg(labels.join(","))
        .arg("--inbound")
        .arg("127.0.0.1:0")
        .arg("--app")
        .arg(format!("127.0.0.1:{app_port}"))
        .arg("--outbound")
        .arg("127.0.0.1:0")
        .arg("--admin")
        .arg("127.0.0.1:0")
        // In the environment, not the arguments: other users can list arguments.
        .env("WEFT_TOKEN", token);
    if let Some(name) = &args.name {
        spec = spec.arg("--name").arg(name);
    }
    if let Some(probe) = &args.probe {
        spec = spec.arg("--probe").arg(probe);
        if let Some(period) = &args.probe_period {
            spec = spec.arg("--probe-period").arg(period);
        }
        if let Some(threshold) = args.probe_failure_threshold {
            spec = spec
                .arg("--probe-failure-threshold")
                .arg(threshold.to_string());
        }
    }
    spec
}

/// The app and what serves it once the sidecar is up.
struct Session {
    app: Child,
    /// Stops the `--upstream` listeners.
    upstreams: watch::Sender<bool>,
}

/// Waits for the sidecar's listeners, opens the upstream ports, announces everything, waits
/// (bounded) for the sidecar's first config, and starts the app.
async fn start(
    args: &Args,
    weft: &std::path::Path,
    app_port: &mut PortReservation,
    proxy: &mut Child,
    output: &Output,
) -> anyhow::Result<Session> {
    let listeners = proxy
        .listeners(&["outbound", "inbound", "admin"], SIDECAR_START)
        .await?;
    let find = |name: &str| {
        listeners
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.addr)
            .with_context(|| format!("the sidecar announced no {name} listener"))
    };
    let outbound = find("outbound")?;
    let admin = find("admin")?;
    let mut bound = Vec::new();
    for up in &args.upstreams {
        let addr = SocketAddr::from(([127, 0, 0, 1], up.local_port));
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("--upstream {up}: cannot listen on {addr}"))?;
        bound.push((up.clone(), listener));
    }
    announce(&listeners, &bound)?;
    let (stop_upstreams, stopped) = watch::channel(false);
    for (up, listener) in bound {
        let mut stopped = stopped.clone();
        let stop = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        tokio::spawn(upstream::serve(listener, up.service, outbound, stop));
    }
    tokio::select! {
        () = wait_ready(admin, args.ready_timeout) => {}
        exit = proxy.wait() => bail!("the sidecar exited ({exit}) before it was ready"),
    }
    app_port.release();
    let app = process::spawn(app_spec(args, weft, app_port.port(), outbound), output)?;
    info!(service = %args.service, version = %args.version, app_port = app_port.port(), "app started");
    Ok(Session {
        app,
        upstreams: stop_upstreams,
    })
}

/// Prints this workload's listeners, first on stdout.
fn announce(sidecar: &[Listener], upstreams: &[(Upstream, TcpListener)]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for name in ["outbound", "inbound", "admin"] {
        for l in sidecar.iter().filter(|l| l.name == name) {
            writeln!(out, "{l}")?;
        }
    }
    for (up, listener) in upstreams {
        writeln!(
            out,
            "listening {} on {}",
            up.listener_name(),
            listener.local_addr()?
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Polls the sidecar's `/ready` until it answers 200 (its first config arrived) or `within`
/// passes.
async fn wait_ready(admin: SocketAddr, within: Duration) {
    let started = Instant::now();
    loop {
        let ready = http::get(admin, "/ready", Duration::from_secs(2)).await;
        if ready.is_ok_and(|reply| reply.status.is_success()) {
            info!(waited = ?started.elapsed(), "sidecar ready");
            return;
        }
        if started.elapsed() >= within {
            warn!(
                ?within,
                "the sidecar has no config from the control plane yet; starting the app anyway"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn app_spec(args: &Args, weft: &std::path::Path, app_port: u16, outbound: SocketAddr) -> ChildSpec {
    let port = app_port.to_string();
    let mut command = args.command.iter().map(|a| substitute(a, &port));
    let program = match command.next() {
        Some(p) if p == "weft" => OsString::from(weft),
        Some(p) => p,
        None => OsString::new(),
    };
    let proxy = format!("http://{outbound}");
    let no_proxy = "localhost,127.0.0.1,::1";
    let mut spec = ChildSpec::new("app", program)
        .env("PORT", &port)
        .env("HTTP_PROXY", &proxy)
        .env("http_proxy", &proxy)
        .env("NO_PROXY", no_proxy)
        .env("no_proxy", no_proxy)
        .env("WEFT_SERVICE", &args.service)
        .env("WEFT_VERSION", &args.version)
        .env("WEFT_NAMESPACE", &args.namespace);
    spec.args = command.collect();
    spec.env_remove = vec!["WEFT_TOKEN".into()];
    spec.inherit_stdin = true;
    spec
}

/// Replaces `${PORT}` in one argument.
fn substitute(arg: &OsString, port: &str) -> OsString {
    match arg.to_str() {
        Some(text) if text.contains("${PORT}") => OsString::from(text.replace("${PORT}", port)),
        _ => arg.clone(),
    }
}

impl Session {
    /// Runs until the app or the sidecar ends, or a signal; returns the exit code.
    async fn supervise(&mut self, proxy: &mut Child, shutdown: impl Future<Output = ()>) -> u8 {
        let mut shutdown = std::pin::pin!(shutdown);
        let code = tokio::select! {
            exit = self.app.wait() => {
                info!(%exit, "app exited; stopping the sidecar");
                proxy.stop(STOP_GRACE).await;
                exit.code()
            }
            exit = proxy.wait() => {
                tracing::error!(%exit, "the sidecar exited; stopping the app");
                self.app.stop(STOP_GRACE).await;
                1
            }
            () = &mut shutdown => {
                info!("stopping the app and its sidecar");
                self.app.stop(STOP_GRACE).await;
                proxy.stop(STOP_GRACE).await;
                0
            }
        };
        let _ = self.upstreams.send(true);
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: Args,
    }

    fn parse(args: &[&str]) -> Args {
        let mut argv = vec!["weft-run"];
        argv.extend(args);
        Cli::try_parse_from(argv).unwrap().run
    }

    #[test]
    fn defaults_and_command_after_the_separator() {
        let args = parse(&[
            "--service",
            "reviews",
            "--control-plane",
            "127.0.0.1:15012",
            "--token",
            "t",
            "--ca-bundle",
            "/ca.pem",
            "--upstream",
            "ratings:9081",
            "--",
            "weft",
            "echo",
            "--listen",
            "127.0.0.1:${PORT}",
        ]);
        assert_eq!(args.version, "v1");
        assert_eq!(args.namespace, "default");
        assert_eq!(args.port, 9080);
        assert_eq!(args.upstreams[0].local_port, 9081);
        let spec = app_spec(
            &args,
            std::path::Path::new("/bin/weft"),
            4321,
            "127.0.0.1:5".parse().unwrap(),
        );
        assert_eq!(spec.program, PathBuf::from("/bin/weft"));
        assert_eq!(spec.args, ["echo", "--listen", "127.0.0.1:4321"]);
        let env: std::collections::BTreeMap<_, _> = spec.env.iter().cloned().collect();
        assert_eq!(env[&OsString::from("PORT")], "4321");
        assert_eq!(env[&OsString::from("HTTP_PROXY")], "http://127.0.0.1:5");
        assert_eq!(env[&OsString::from("no_proxy")], "localhost,127.0.0.1,::1");
    }

    #[test]
    fn sidecar_gets_identity_labels_and_listeners() {
        let args = parse(&[
            "--service",
            "reviews",
            "--version",
            "v2",
            "--labels",
            "tier=web,version=bogus",
            "--control-plane",
            "cp:15012",
            "--token",
            "secret",
            "--ca-bundle",
            "/ca.pem",
            "--",
            "app",
        ]);
        let spec = sidecar_spec(&args, std::path::Path::new("/bin/weft"), "secret", 7000);
        let argv: Vec<String> = spec
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let value = |flag: &str| {
            let i = argv.iter().position(|a| a == flag).unwrap();
            argv[i + 1].clone()
        };
        assert_eq!(argv[0], "proxy");
        assert_eq!(value("--labels"), "app=reviews,version=v2,tier=web");
        assert_eq!(value("--service-account"), "reviews");
        assert_eq!(value("--app"), "127.0.0.1:7000");
        assert_eq!(value("--control-plane"), "cp:15012");
        assert!(!argv.contains(&"--probe".to_string()));
        assert!(
            !argv.contains(&"secret".to_string()),
            "the token is not an argument"
        );
        let env: std::collections::BTreeMap<_, _> = spec.env.iter().cloned().collect();
        assert_eq!(env[&OsString::from("WEFT_TOKEN")], "secret");
    }
}
