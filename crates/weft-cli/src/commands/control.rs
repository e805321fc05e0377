//! `weft control`: the control plane. Prints `listening grpc on IP:PORT` and
//! `listening admin on IP:PORT` first, then serves until SIGTERM or Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use weft_control::{ControlOptions, ControlPlane, StartError};

use super::EXIT_USAGE;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of Istio config, watched for changes (its resources cannot be changed
    /// through the API).
    #[arg(long)]
    pub config_dir: PathBuf,
    /// gRPC listener for proxies: config and certificates, always TLS (Istio's port is 15012).
    #[arg(long, default_value = "127.0.0.1:15012")]
    pub listen: SocketAddr,
    /// Admin API listener, HTTP (Istio's port is 15014).
    #[arg(long, default_value = "127.0.0.1:15014")]
    pub admin: SocketAddr,
    /// Where the CA, root-cert.pem, admin.token, tokens.json and applied resources live.
    #[arg(long, default_value = "./weft-data")]
    pub data_dir: PathBuf,
    /// Trust domain of a new CA (default cluster.local); must match an existing one.
    #[arg(long)]
    pub trust_domain: Option<String>,
    /// Default lifetime of workload certificates (Go duration).
    #[arg(long, default_value = "24h")]
    pub cert_ttl: String,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let cert_ttl = match weft_api::duration::parse_duration(&args.cert_ttl) {
        Ok(ttl) if !ttl.is_zero() => ttl,
        Ok(_) => return Ok(usage("--cert-ttl must be greater than zero")),
        Err(err) => return Ok(usage(&format!("--cert-ttl: {err}"))),
    };
    let options = ControlOptions {
        config_dir: args.config_dir.clone(),
        listen: args.listen,
        admin: args.admin,
        data_dir: args.data_dir.clone(),
        trust_domain: args.trust_domain.clone(),
        cert_ttl,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let control = match ControlPlane::bind(options).await {
            Ok(c) => c,
            Err(StartError::Config { dir, source }) => {
                eprintln!(
                    "error: invalid config in {}, not starting:\n{source}",
                    dir.display()
                );
                return Ok(ExitCode::from(1));
            }
            Err(err) => return Ok(usage(&err.to_string())),
        };
        let mut out = std::io::stdout();
        writeln!(out, "listening grpc on {}", control.grpc_addr)?;
        writeln!(out, "listening admin on {}", control.admin_addr)?;
        out.flush()?;
        control.run(super::shutdown_signal()).await;
        Ok(ExitCode::SUCCESS)
    })
}

fn usage(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}
