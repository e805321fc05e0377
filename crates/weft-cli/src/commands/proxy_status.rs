//! `weft proxy-status [-o json]`: every proxy connected to the control plane, the config
//! version it was sent, whether it ACKed it (`SYNCED`), has yet to (`STALE`) or refused it
//! (`NACK: reason`), and when its certificate expires.

use std::process::ExitCode;

use http::Method;

use super::admin_client::{AdminClient, ServerArgs, print_table};
use crate::output::Format;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Format,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(&args.server)?;
    let reply = match client.send(Method::GET, "/api/proxies", None) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if !reply.status.is_success() {
        return Ok(reply.fail());
    }
    let proxies = reply.json["proxies"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if args.output == Format::Json {
        println!("{}", serde_json::to_string_pretty(&proxies)?);
        return Ok(ExitCode::SUCCESS);
    }
    let text = |v: &serde_json::Value| match v.as_str() {
        Some("") | None => "-".to_string(),
        Some(s) => s.lines().next().unwrap_or_default().to_string(),
    };
    let rows: Vec<Vec<String>> = proxies
        .iter()
        .map(|p| {
            vec![
                text(&p["name"]),
                text(&p["namespace"]),
                text(&p["service"]),
                text(&p["version"]),
                text(&p["status"]),
                text(&p["certExpiry"]),
            ]
        })
        .collect();
    print_table(
        &[
            "NAME",
            "NAMESPACE",
            "SERVICE",
            "VERSION",
            "STATUS",
            "CERT-EXPIRY",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}
