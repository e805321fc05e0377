//! `weft get KIND [NAME] [-n NS] [-o yaml|json]`: the control plane's effective config. Kinds
//! are case-insensitive and accept plurals and short names (`vs`, `dr`, `se`, ...). Without
//! `-n`, every namespace is listed.

use std::process::ExitCode;

use http::Method;
use serde_json::{Value, json};
use weft_api::Kind;

use super::EXIT_USAGE;
use super::admin_client::{AdminClient, EXIT_REJECTED, ServerArgs, encode, print_table};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GetFormat {
    Yaml,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Resource kind: VirtualService, virtualservices, vs, dr, se, ...
    pub kind: String,
    /// Only this resource.
    pub name: Option<String>,
    /// Only this namespace (default: all).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Print the resources instead of a table.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<GetFormat>,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let Some(kind) = Kind::from_name(&args.kind) else {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        eprintln!(
            "error: unknown kind {:?}; known kinds: {}",
            args.kind,
            known.join(", ")
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let mut path = format!("/api/resources?kind={}", kind.as_str());
    if let Some(ns) = &args.namespace {
        path.push_str(&format!("&namespace={}", encode(ns)));
    }
    if let Some(name) = &args.name {
        path.push_str(&format!("&name={}", encode(name)));
    }
    let client = AdminClient::new(&args.server)?;
    let reply = match client.send(Method::GET, &path, None) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if !reply.status.is_success() {
        return Ok(reply.fail());
    }
    let items: Vec<&Value> = reply.json["items"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    if items.is_empty() {
        if let Some(name) = &args.name {
            let ns = args.namespace.as_deref().unwrap_or("any namespace");
            eprintln!("error: {kind} {name:?} not found in {ns}");
            return Ok(ExitCode::from(EXIT_REJECTED));
        }
        eprintln!("No resources found.");
        return Ok(ExitCode::SUCCESS);
    }
    let resources: Vec<&Value> = items.iter().map(|i| &i["resource"]).collect();
    match args.output {
        Some(GetFormat::Json) => {
            let doc = match (args.name.is_some(), resources.as_slice()) {
                (true, [one]) => (*one).clone(),
                _ => json!({"apiVersion": "v1", "kind": "List", "items": resources}),
            };
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Some(GetFormat::Yaml) => {
            let docs: Vec<String> = resources
                .iter()
                .map(|r| weft_control::yaml::to_yaml(r))
                .collect();
            print!("{}", docs.join("---\n"));
        }
        None => {
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|i| {
                    let meta = &i["resource"]["metadata"];
                    vec![
                        meta["name"].as_str().unwrap_or_default().to_string(),
                        meta["namespace"].as_str().unwrap_or_default().to_string(),
                    ]
                })
                .collect();
            print_table(&["NAME", "NAMESPACE"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}
