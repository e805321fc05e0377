//! `weft token create --namespace NS --service-account SA`: a bootstrap token with which a
//! proxy gets its first certificate and registers as that identity. Printed once.

use std::process::ExitCode;

use http::Method;
use serde_json::json;

use super::admin_client::{AdminClient, ServerArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a bootstrap token and print it.
    Create(CreateArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub namespace: String,
    #[arg(long)]
    pub service_account: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let TokenCommand::Create(args) = &args.command;
    let client = AdminClient::new(&args.server)?;
    let body = serde_json::to_vec(&json!({
        "namespace": args.namespace,
        "serviceAccount": args.service_account,
    }))?;
    let reply = match client.send(
        Method::POST,
        "/api/tokens",
        Some(("application/json", body)),
    ) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if !reply.status.is_success() {
        return Ok(reply.fail());
    }
    println!("{}", reply.json["token"].as_str().unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}
