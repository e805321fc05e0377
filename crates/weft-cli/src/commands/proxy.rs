//! `weft proxy`: a sidecar proxy configured either from Istio YAML files (reloaded when they
//! change) or by a control plane (`--control-plane`), which also issues its certificate.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use weft_api::mesh::{CompileOptions, OutboundPolicy};
use weft_proxy::control::ConfigSource;
use weft_proxy::control::plane::{
    BootstrapToken, ControlPlaneOptions, HealthProbe, ProbeKind, ServiceProtocol,
};
use weft_proxy::listener::http::Workload;
use weft_proxy::policy::normalize::PathNormalization;
use weft_proxy::sidecar::{Sidecar, SidecarOptions, StartError};
use weft_proxy::telemetry::access_log::AccessLog;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
#[clap(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundPolicyArg {
    AllowAny,
    RegistryOnly,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Istio config: a file or a directory (repeatable). Watched for changes. Not used with
    /// --control-plane.
    #[arg(long = "config", required_unless_present = "control_plane")]
    pub config: Vec<PathBuf>,
    /// Get config and the workload certificate from this control plane (`HOST:PORT`, its
    /// TLS gRPC port, 15012 by convention) instead of --config and --identity. The proxy
    /// registers as an endpoint of --service through its inbound listener.
    #[arg(
        long,
        env = "WEFT_CONTROL_PLANE",
        conflicts_with_all = ["config", "identity"],
        requires_all = ["ca_bundle", "service", "inbound"]
    )]
    pub control_plane: Option<String>,
    /// The bootstrap token that gets this proxy its first certificate (`weft token`).
    #[arg(
        long,
        env = "WEFT_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,
    /// A file holding the bootstrap token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// The PEM root certificate(s) the control plane's certificate must chain to.
    #[arg(long, env = "WEFT_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,
    /// The service this workload is an endpoint of (control-plane mode).
    #[arg(long)]
    pub service: Option<String>,
    /// The version of the service this workload runs (the `version` label).
    #[arg(long = "version", default_value = "v1")]
    pub service_version: String,
    /// The service port clients call (default: the --app port).
    #[arg(long, requires = "control_plane")]
    pub service_port: Option<u16>,
    /// The protocol of the service port: HTTP, HTTP2, GRPC or TCP.
    #[arg(long, default_value = "HTTP")]
    pub service_protocol: ServiceProtocol,
    /// This proxy's unique name in the control plane's registry (default:
    /// <service>-<version>-<4 random hex digits>).
    #[arg(long)]
    pub name: Option<String>,
    /// The mesh's SPIFFE trust domain.
    #[arg(long, default_value = "cluster.local")]
    pub trust_domain: String,
    /// Health check of the app the control plane runs, `http:/PATH` or `tcp`: while it
    /// fails, this workload is not an endpoint of its service.
    #[arg(long, requires = "control_plane")]
    pub probe: Option<ProbeKind>,
    /// Time between probes (Go duration, e.g. `5s`; default: the control plane's).
    #[arg(long, requires = "probe", value_parser = parse_duration)]
    pub probe_period: Option<Duration>,
    /// Failed probes in a row before the workload counts as unhealthy.
    #[arg(long, requires = "probe", default_value_t = 3)]
    pub probe_failure_threshold: u32,
    /// Where applications send outbound requests (Istio's port is 15001).
    #[arg(long, default_value = "127.0.0.1:15001")]
    pub outbound: SocketAddr,
    /// Admin listener: /ready, /config_dump, /metrics (Istio's port is 15000).
    #[arg(long, default_value = "127.0.0.1:15000")]
    pub admin: SocketAddr,
    /// This workload's namespace: short host names resolve here.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// This workload's labels, `k=v,k2=v2`.
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// The mesh's root namespace (mesh-wide Sidecar and policies).
    #[arg(long, default_value = "istio-system")]
    pub root_namespace: String,
    /// Unknown hosts: forward them (ALLOW_ANY, Istio's default) or refuse with 502.
    #[arg(long, value_enum)]
    pub outbound_policy: Option<OutboundPolicyArg>,
    /// Workload name for metrics (default: <service>-<version> with a control plane, else the
    /// `app` label, else "unknown").
    #[arg(long)]
    pub workload: Option<String>,
    /// Do not write access log lines to stdout.
    #[arg(long)]
    pub no_access_log: bool,
    /// Mirror requests with the Host unchanged instead of appending `-shadow`.
    #[arg(long)]
    pub no_shadow_suffix: bool,
    /// Inbound listener: where other workloads reach this one (mTLS and policies apply).
    /// Istio's port is 15006. Requires --app.
    #[arg(long, requires = "app")]
    pub inbound: Option<SocketAddr>,
    /// The local application inbound requests are forwarded to.
    #[arg(long, requires = "inbound")]
    pub app: Option<SocketAddr>,
    /// Directory with this workload's `cert-chain.pem`, `key.pem` and `root-cert.pem`
    /// (`weft ca issue`); re-read when the files change. Enables mutual TLS.
    #[arg(long)]
    pub identity: Option<PathBuf>,
    /// This workload's service account (policy `principals`); default: the service name with
    /// a control plane, else `default`.
    #[arg(long)]
    pub service_account: Option<String>,
    /// How request paths are normalized before routing and policy: MERGE_SLASHES (weft's
    /// default), BASE (Istio's default), DECODE_AND_MERGE_SLASHES or NONE.
    #[arg(long, default_value = "MERGE_SLASHES")]
    pub path_normalization: PathNormalization,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    weft_api::duration::parse_duration(text).map_err(|e| e.to_string())
}

/// `k=v` pairs from `--labels`.
fn parse_labels(args: &Args) -> anyhow::Result<Vec<(String, String)>> {
    args.labels
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("--labels: {l:?} is not k=v"))
        })
        .collect()
}

/// The control-plane options, when `--control-plane` is given.
fn control_plane(args: &Args) -> anyhow::Result<Option<ControlPlaneOptions>> {
    let Some(address) = args.control_plane.clone() else {
        return Ok(None);
    };
    let token = match (&args.token, &args.token_file) {
        (Some(token), _) => token.trim().to_string(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .with_context(|| format!("--token-file {}", file.display()))?
            .trim()
            .to_string(),
        (None, None) => String::new(),
    };
    anyhow::ensure!(
        !token.is_empty(),
        "--control-plane needs a bootstrap token: --token, WEFT_TOKEN or --token-file"
    );
    let (Some(ca_bundle), Some(service), Some(app)) = (&args.ca_bundle, &args.service, args.app)
    else {
        anyhow::bail!("--control-plane needs --ca-bundle, --service, --inbound and --app");
    };
    Ok(Some(ControlPlaneOptions {
        address,
        token: BootstrapToken::new(token),
        ca_bundle: ca_bundle.clone(),
        service: service.clone(),
        version: args.service_version.clone(),
        service_port: args.service_port.unwrap_or(app.port()),
        protocol: args.service_protocol,
        trust_domain: args.trust_domain.clone(),
        name: args.name.clone(),
        health: args.probe.clone().map(|kind| HealthProbe {
            kind,
            port: app.port(),
            period: args.probe_period,
            failure_threshold: args.probe_failure_threshold,
        }),
    }))
}

fn options(args: &Args) -> anyhow::Result<SidecarOptions> {
    let plane = control_plane(args)?;
    let mut labels = parse_labels(args)?;
    if let Some(plane) = &plane {
        // The registry's labels: app and version, then --labels.
        labels.splice(
            0..0,
            [
                ("app".to_string(), plane.service.clone()),
                ("version".to_string(), plane.version.clone()),
            ],
        );
    }
    let labels: std::collections::BTreeMap<String, String> = labels.into_iter().collect();
    let workload_name = args
        .workload
        .clone()
        .or_else(|| {
            let plane = plane.as_ref()?;
            Some(format!("{}-{}", plane.service, plane.version))
        })
        .or_else(|| labels.get("app").cloned())
        .unwrap_or_else(|| "unknown".to_string());
    let service_account = args
        .service_account
        .clone()
        .or_else(|| plane.as_ref().map(|p| p.service.clone()))
        .unwrap_or_else(|| "default".to_string());
    Ok(SidecarOptions {
        source: ConfigSource {
            paths: args.config.clone(),
            options: CompileOptions {
                namespace: args.namespace.clone(),
                root_namespace: args.root_namespace.clone(),
                trust_domain: args.trust_domain.clone(),
                outbound_policy: args.outbound_policy.map(|p| match p {
                    OutboundPolicyArg::AllowAny => OutboundPolicy::AllowAny,
                    OutboundPolicyArg::RegistryOnly => OutboundPolicy::RegistryOnly,
                }),
                shadow_suffix: !args.no_shadow_suffix,
                labels: labels.clone(),
                ..CompileOptions::default()
            },
        },
        outbound: args.outbound,
        admin: args.admin,
        workload: Workload {
            name: workload_name,
            namespace: args.namespace.clone(),
            service_account,
            labels,
            root_namespace: args.root_namespace.clone(),
        },
        inbound: args.inbound.zip(args.app),
        identity: args.identity.clone(),
        normalization: args.path_normalization,
        access_log: if args.no_access_log {
            AccessLog::disabled()
        } else {
            AccessLog::stdout()
        },
        control_plane: plane,
    })
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let options = options(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let sidecar = match Sidecar::bind(options).await {
            Ok(s) => s,
            Err(StartError::Config(err)) => {
                eprintln!("error: invalid config, not starting:\n{}", err.message);
                return Ok(ExitCode::from(1));
            }
            Err(err) => return Err(anyhow::Error::new(err)),
        };
        let mut out = std::io::stdout();
        writeln!(out, "listening outbound on {}", sidecar.outbound_addr)?;
        if let Some(addr) = sidecar.inbound_addr {
            writeln!(out, "listening inbound on {addr}")?;
        }
        writeln!(out, "listening admin on {}", sidecar.admin_addr)?;
        out.flush()?;
        sidecar.run(super::shutdown_signal()).await;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("proxy").chain(args.iter().copied())).map(|c| c.args)
    }

    const PLANE: &[&str] = &[
        "--control-plane",
        "127.0.0.1:15012",
        "--token",
        "tok",
        "--ca-bundle",
        "/tmp/root-cert.pem",
        "--service",
        "reviews",
        "--inbound",
        "127.0.0.1:0",
        "--app",
        "127.0.0.1:9080",
    ];

    #[test]
    fn file_mode_needs_config_and_keeps_its_defaults() {
        assert!(parse(&[]).is_err());
        let args = parse(&["--config", "mesh.yaml", "--labels", "app=ratings"]).unwrap();
        let opts = options(&args).unwrap();
        assert!(opts.control_plane.is_none());
        assert_eq!(opts.workload.service_account, "default");
        assert_eq!(opts.workload.name, "ratings");
        assert_eq!(opts.source.paths, vec![PathBuf::from("mesh.yaml")]);
    }

    #[test]
    fn control_plane_mode_defaults_from_the_service() {
        let mut argv = PLANE.to_vec();
        argv.extend(["--version", "v2", "--labels", "tier=backend"]);
        let opts = options(&parse(&argv).unwrap()).unwrap();
        let plane = opts.control_plane.unwrap();
        assert_eq!(plane.address, "127.0.0.1:15012");
        assert_eq!(plane.token, BootstrapToken::new("tok"));
        assert_eq!(
            (plane.service.as_str(), plane.version.as_str()),
            ("reviews", "v2")
        );
        assert_eq!(plane.service_port, 9080);
        assert_eq!(plane.protocol, ServiceProtocol::Http);
        assert_eq!(plane.trust_domain, "cluster.local");
        assert_eq!(opts.workload.service_account, "reviews");
        assert_eq!(opts.workload.name, "reviews-v2");
        let labels: Vec<_> = opts.workload.labels.iter().collect();
        assert_eq!(
            labels,
            [
                (&"app".to_string(), &"reviews".to_string()),
                (&"tier".to_string(), &"backend".to_string()),
                (&"version".to_string(), &"v2".to_string()),
            ]
        );
        assert_eq!(opts.source.options.labels, opts.workload.labels);
        assert_eq!(plane.health, None);
    }

    #[test]
    fn probes_check_the_app_port() {
        let mut argv = PLANE.to_vec();
        argv.extend(["--probe", "http:/healthz", "--probe-period", "1.5s"]);
        let plane = options(&parse(&argv).unwrap())
            .unwrap()
            .control_plane
            .unwrap();
        assert_eq!(
            plane.health,
            Some(HealthProbe {
                kind: ProbeKind::Http {
                    path: "/healthz".into()
                },
                port: 9080,
                period: Some(Duration::from_millis(1500)),
                failure_threshold: 3,
            })
        );
        let mut argv = PLANE.to_vec();
        argv.extend(["--probe", "udp"]);
        assert!(parse(&argv).is_err());
        assert!(parse(&["--config", "m.yaml", "--probe", "tcp"]).is_err());
    }

    #[test]
    fn control_plane_mode_needs_its_flags_and_refuses_files() {
        for missing in ["--ca-bundle", "--service", "--inbound"] {
            let i = PLANE.iter().position(|a| *a == missing).unwrap();
            let mut argv = PLANE.to_vec();
            argv.drain(i..i + 2);
            if missing == "--inbound" {
                // --app requires --inbound as well.
                let j = argv.iter().position(|a| *a == "--app").unwrap();
                argv.drain(j..j + 2);
            }
            assert!(parse(&argv).is_err(), "without {missing}");
        }
        let mut argv = PLANE.to_vec();
        argv.extend(["--config", "mesh.yaml"]);
        assert!(parse(&argv).is_err());
        let mut argv = PLANE.to_vec();
        argv.extend(["--identity", "/tmp/id"]);
        assert!(parse(&argv).is_err());
        let mut argv = PLANE.to_vec();
        argv.extend(["--token-file", "/tmp/t"]);
        assert!(parse(&argv).is_err(), "--token and --token-file together");
    }

    #[test]
    fn the_token_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let mut argv: Vec<&str> = PLANE.iter().copied().filter(|a| *a != "tok").collect();
        let i = argv.iter().position(|a| *a == "--token").unwrap();
        argv.remove(i);
        let path = file.display().to_string();
        argv.extend([
            "--token-file",
            &path,
            "--service-port",
            "80",
            "--name",
            "r-1",
        ]);
        let plane = options(&parse(&argv).unwrap())
            .unwrap()
            .control_plane
            .unwrap();
        assert_eq!(plane.token, BootstrapToken::new("from-file"));
        assert_eq!(plane.service_port, 80);
        assert_eq!(plane.name.as_deref(), Some("r-1"));

        std::fs::write(&file, "\n").unwrap();
        let Err(err) = options(&parse(&argv).unwrap()) else {
            panic!("an empty token file must be refused");
        };
        assert!(err.to_string().contains("bootstrap token"), "{err}");
    }
}
