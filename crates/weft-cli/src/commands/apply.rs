//! `weft apply -f FILE|DIR... [-n NS]`: sends Istio resources to the control plane, which
//! validates them exactly as `weft validate` does and applies all of them or none.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use http::{Method, StatusCode};
use serde_json::json;
use weft_control::admin::FILES_CONTENT_TYPE;

use super::EXIT_USAGE;
use super::admin_client::{AdminClient, EXIT_REJECTED, ServerArgs, encode};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A file or a directory (searched for *.yaml, *.yml, *.json); `-` reads standard input.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Namespace of resources that name none.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let files = match read_inputs(&args.files) {
        Ok(files) => files,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let client = AdminClient::new(&args.server)?;
    let mut path = "/api/apply".to_string();
    if let Some(ns) = &args.namespace {
        path.push_str(&format!("?namespace={}", encode(ns)));
    }
    let body = serde_json::to_vec(&json!({ "files": files }))?;
    let reply = match client.send(Method::POST, &path, Some((FILES_CONTENT_TYPE, body))) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if reply.status == StatusCode::BAD_REQUEST
        && let Some(messages) = reply.json.get("messages").and_then(|m| m.as_array())
    {
        for m in messages {
            eprintln!("{}", m.as_str().unwrap_or_default());
        }
        eprintln!("error: {}; nothing was applied", reply.error());
        return Ok(ExitCode::from(EXIT_REJECTED));
    }
    if !reply.status.is_success() {
        return Ok(reply.fail());
    }
    for w in reply.json["warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", w.as_str().unwrap_or_default());
    }
    for r in reply.json["resources"].as_array().into_iter().flatten() {
        println!(
            "{}/{} {}",
            r["kind"].as_str().unwrap_or_default().to_ascii_lowercase(),
            r["name"].as_str().unwrap_or_default(),
            r["action"].as_str().unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Every input file as `{"name", "content"}`.
fn read_inputs(paths: &[PathBuf]) -> Result<Vec<serde_json::Value>, String> {
    let mut out = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut content = String::new();
            std::io::stdin()
                .read_to_string(&mut content)
                .map_err(|e| format!("reading standard input: {e}"))?;
            out.push(json!({"name": "<stdin>", "content": content}));
            continue;
        }
        let files = weft_api::load::config_files(path).map_err(|e| e.to_string())?;
        for file in files {
            let content =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            out.push(json!({"name": file.display().to_string(), "content": content}));
        }
    }
    if out.is_empty() {
        return Err("no *.yaml, *.yml or *.json files in the given paths".to_string());
    }
    Ok(out)
}
