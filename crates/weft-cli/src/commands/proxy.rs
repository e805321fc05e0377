//! `weft proxy`: a standalone sidecar proxy configured from Istio YAML files, reloaded when
//! they change.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use weft_api::mesh::{CompileOptions, OutboundPolicy};
use weft_proxy::control::ConfigSource;
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
    /// Istio config: a file or a directory (repeatable). Watched for changes.
    #[arg(long = "config", required = true)]
    pub config: Vec<PathBuf>,
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
    /// Workload name for metrics (default: the `app` label, else "unknown").
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
    /// This workload's service account (policy `principals`); default: `default`.
    #[arg(long, default_value = "default")]
    pub service_account: String,
    /// How request paths are normalized before routing and policy: MERGE_SLASHES (weft's
    /// default), BASE (Istio's default), DECODE_AND_MERGE_SLASHES or NONE.
    #[arg(long, default_value = "MERGE_SLASHES")]
    pub path_normalization: PathNormalization,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let labels: Vec<(String, String)> = args
        .labels
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("--labels: {l:?} is not k=v"))
        })
        .collect::<anyhow::Result<_>>()?;
    let workload_name = args
        .workload
        .clone()
        .or_else(|| {
            labels
                .iter()
                .find(|(k, _)| k == "app")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| "unknown".to_string());
    let options = SidecarOptions {
        source: ConfigSource {
            paths: args.config.clone(),
            options: CompileOptions {
                namespace: args.namespace.clone(),
                root_namespace: args.root_namespace.clone(),
                outbound_policy: args.outbound_policy.map(|p| match p {
                    OutboundPolicyArg::AllowAny => OutboundPolicy::AllowAny,
                    OutboundPolicyArg::RegistryOnly => OutboundPolicy::RegistryOnly,
                }),
                shadow_suffix: !args.no_shadow_suffix,
                labels: labels.iter().cloned().collect(),
                ..CompileOptions::default()
            },
        },
        outbound: args.outbound,
        admin: args.admin,
        workload: Workload {
            name: workload_name,
            namespace: args.namespace.clone(),
            service_account: args.service_account.clone(),
            labels: labels.iter().cloned().collect(),
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
    };
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
