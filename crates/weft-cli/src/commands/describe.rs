//! `weft describe SERVICE [-n NS] [-o json]`: what applies to a service — the VirtualService
//! routes for it or to it, the DestinationRule subsets and how many endpoints each selects,
//! the endpoints with their health, and the security policies that select them.

use std::process::ExitCode;

use http::Method;
use serde_json::Value;

use super::admin_client::{AdminClient, ServerArgs, encode};
use crate::output::Format;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service (a short name in the namespace, or a host).
    pub service: String,
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Format,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(&args.server)?;
    let path = format!(
        "/api/describe?service={}&namespace={}",
        encode(&args.service),
        encode(&args.namespace)
    );
    let reply = match client.send(Method::GET, &path, None) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if !reply.status.is_success() {
        return Ok(reply.fail());
    }
    if args.output == Format::Json {
        println!("{}", serde_json::to_string_pretty(&reply.json)?);
    } else {
        print!("{}", render(&reply.json));
    }
    Ok(ExitCode::SUCCESS)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

fn labels(v: &Value) -> String {
    let pairs: Vec<String> = v
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", s(v)))
        .collect();
    pairs.join(",")
}

fn named(v: &Value) -> String {
    format!(
        "{}/{} ({})",
        s(&v["namespace"]),
        s(&v["name"]),
        s(&v["source"])
    )
}

fn render(report: &Value) -> String {
    let mut out = format!("Service: {}\n", s(&report["host"]));
    let entries: Vec<String> = items(&report["serviceEntries"]).map(named).collect();
    out.push_str(&format!(
        "ServiceEntries: {}\n",
        if entries.is_empty() {
            "<none>".to_string()
        } else {
            entries.join(", ")
        }
    ));
    out.push_str("VirtualServices:\n");
    let mut any = false;
    for vs in items(&report["virtualServices"]) {
        any = true;
        let why = if vs["routesFor"] == true {
            "routes for this host"
        } else {
            "routes to this host"
        };
        out.push_str(&format!("  {} — {why}\n", named(vs)));
        for route in items(&vs["http"]) {
            let name = route["name"]
                .as_str()
                .map(|n| format!(" {n:?}"))
                .unwrap_or_default();
            let matches: Vec<&str> = items(&route["match"]).map(s).collect();
            let when = if matches.is_empty() {
                "any request".to_string()
            } else {
                matches.join(" OR ")
            };
            let dests: Vec<String> = items(&route["destinations"])
                .map(|d| {
                    let mut t = s(&d["host"]).to_string();
                    if let Some(subset) = d["subset"].as_str() {
                        t.push_str(&format!(" subset {subset}"));
                    }
                    if let Some(w) = d["weight"].as_i64() {
                        t.push_str(&format!(" weight {w}"));
                    }
                    t
                })
                .collect();
            let actions: Vec<&str> = items(&route["actions"]).map(s).collect();
            out.push_str(&format!("    route {}{name}: {when}", route["index"]));
            if !dests.is_empty() {
                out.push_str(&format!(" -> {}", dests.join(", ")));
            }
            if !actions.is_empty() {
                out.push_str(&format!(" [{}]", actions.join(", ")));
            }
            out.push('\n');
        }
    }
    if !any {
        out.push_str("  <none>: default routing to the service\n");
    }
    out.push_str("DestinationRules:\n");
    let mut any = false;
    for dr in items(&report["destinationRules"]) {
        any = true;
        out.push_str(&format!("  {}\n", named(dr)));
        for subset in items(&dr["subsets"]) {
            out.push_str(&format!(
                "    subset {} {{{}}}: {} endpoint(s)\n",
                s(&subset["name"]),
                labels(&subset["labels"]),
                subset["endpoints"]
            ));
        }
    }
    if !any {
        out.push_str("  <none>\n");
    }
    out.push_str("Endpoints:\n");
    let mut any = false;
    for e in items(&report["endpoints"]) {
        any = true;
        let health = if e["healthy"] == true {
            "HEALTHY"
        } else {
            "UNHEALTHY"
        };
        let status = e["status"]
            .as_str()
            .map(|st| format!(" {st}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {} {} {health}{status} ({}) {}\n",
            s(&e["name"]),
            s(&e["address"]),
            s(&e["source"]),
            labels(&e["labels"])
        ));
    }
    if !any {
        out.push_str("  <none>\n");
    }
    out.push_str("Policies:\n");
    let mut any = false;
    for kind in [
        "authorizationPolicies",
        "peerAuthentications",
        "requestAuthentications",
    ] {
        for p in items(&report[kind]) {
            any = true;
            let summary = &p["summary"];
            let what = match s(&p["kind"]) {
                "AuthorizationPolicy" => {
                    format!("{}, {} rule(s)", s(&summary["action"]), summary["rules"])
                }
                "PeerAuthentication" => {
                    format!("mTLS {}", summary["mode"].as_str().unwrap_or("UNSET"))
                }
                _ => format!("{} JWT rule(s)", summary["jwtRules"]),
            };
            out.push_str(&format!("  {} {}: {what}\n", s(&p["kind"]), named(p)));
        }
    }
    if !any {
        out.push_str("  <none>\n");
    }
    out
}
