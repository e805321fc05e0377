//! `weft echo`: the test and demo backend. Prints `listening on IP:PORT` first, then serves
//! until SIGTERM or Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use weft_echo::EchoConfig;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Name reported in the `x-echo-name` header and the body.
    #[arg(long)]
    pub name: String,
    /// Answer every request with this status code (a `status=` query parameter overrides it).
    #[arg(long, value_parser = clap::value_parser!(u16).range(200..=999))]
    pub status: Option<u16>,
    /// Extra text included in every JSON answer as `"text"`.
    #[arg(long)]
    pub text: Option<String>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let status = args
        .status
        .map(http::StatusCode::from_u16)
        .transpose()
        .context("--status must be a code between 200 and 999")?;
    let config = EchoConfig {
        name: args.name.clone(),
        status,
        text: args.text.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let addr = listener.local_addr()?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "listening on {addr}")?;
        stdout.flush()?;
        weft_echo::serve(listener, config, super::shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
