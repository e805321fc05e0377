//! `weft echo`: the test and demo backend. Prints `listening on IP:PORT` first, then serves
//! until SIGTERM or Ctrl-C. With `--call` it also calls other services for every request,
//! through the HTTP proxy named by `HTTP_PROXY`/`http_proxy` unless `NO_PROXY`/`no_proxy`
//! exempts the host (what `weft run` sets up for its app).

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use weft_echo::{CallConfig, EchoConfig, ProxyConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port). Default: 127.0.0.1:$PORT when the
    /// PORT variable is set (as `weft run` sets it for its app), else 127.0.0.1:8080.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Name reported in the `x-echo-name` header and the body.
    #[arg(long)]
    pub name: String,
    /// Answer every request with this status code (a `status=` query parameter overrides it).
    #[arg(long, value_parser = clap::value_parser!(u16).range(200..=999))]
    pub status: Option<u16>,
    /// Extra text included in every JSON answer as `"text"`.
    #[arg(long)]
    pub text: Option<String>,
    /// For every request, GET these http:// URLs (comma-separated or repeated) and report the
    /// answers under "calls", forwarding the request's user and tracing headers.
    #[arg(long, value_delimiter = ',')]
    pub call: Vec<http::Uri>,
    /// How long one call may take (Go duration: 500ms, 10s).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub call_timeout: std::time::Duration,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    weft_api::duration::parse_duration(s).map_err(|e| e.to_string())
}

/// The first non-empty value of these environment variables.
fn env_any(names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|n| std::env::var(n).ok())
        .find(|v| !v.trim().is_empty())
}

fn listen_addr(args: &Args) -> anyhow::Result<SocketAddr> {
    if let Some(addr) = args.listen {
        return Ok(addr);
    }
    match env_any(&["PORT"]) {
        Some(port) => {
            let port: u16 = port
                .trim()
                .parse()
                .with_context(|| format!("PORT={port:?} is not a port number"))?;
            Ok(SocketAddr::from(([127, 0, 0, 1], port)))
        }
        None => Ok(SocketAddr::from(([127, 0, 0, 1], 8080))),
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let status = args
        .status
        .map(http::StatusCode::from_u16)
        .transpose()
        .context("--status must be a code between 200 and 999")?;
    // Lower case first, as curl reads them.
    let proxy = ProxyConfig::from_env_values(
        env_any(&["http_proxy", "HTTP_PROXY"]).as_deref(),
        env_any(&["no_proxy", "NO_PROXY"]).as_deref(),
    )
    .context("reading HTTP_PROXY")?;
    let listen = listen_addr(args)?;
    let config = EchoConfig {
        name: args.name.clone(),
        status,
        text: args.text.clone(),
    };
    let calls = CallConfig {
        urls: args.call.clone(),
        proxy,
        timeout: Some(args.call_timeout),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr()?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "listening on {addr}")?;
        stdout.flush()?;
        weft_echo::serve_with_calls(listener, config, calls, super::shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
