//! `weft delete KIND NAME [-n NS]`: removes a resource applied through the control plane.
//! Resources from the watched config directory are refused (exit 1): delete their file.

use std::process::ExitCode;

use http::Method;
use weft_api::Kind;

use super::EXIT_USAGE;
use super::admin_client::{AdminClient, ServerArgs, encode};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Resource kind: VirtualService, vs, dr, ...
    pub kind: String,
    pub name: String,
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let Some(kind) = Kind::from_name(&args.kind) else {
        eprintln!("error: unknown kind {:?}", args.kind);
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let client = AdminClient::new(&args.server)?;
    let path = format!(
        "/api/resources/{}/{}/{}",
        kind.as_str(),
        encode(&args.namespace),
        encode(&args.name)
    );
    let reply = match client.send(Method::DELETE, &path, None) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if !reply.status.is_success() {
        return Ok(reply.fail());
    }
    println!(
        "{}/{} deleted",
        kind.as_str().to_ascii_lowercase(),
        args.name
    );
    Ok(ExitCode::SUCCESS)
}
