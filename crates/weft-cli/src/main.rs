//! `weft`: one binary for the weft service mesh. Each subcommand is one user task; the work is
//! done by the library crates, this binary only parses arguments and wires them together.

mod commands;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "weft",
    version,
    about = "weft: a service mesh configured with the Istio API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check Istio config files the way Istio's validation webhook does.
    Validate(commands::validate::Args),
    /// Find problems across resources (dangling subsets and hosts, conflicts, shadowed routes).
    Analyze(commands::analyze::Args),
    /// Run the test and demo backend: answers every request with a JSON echo of it.
    Echo(commands::echo::Args),
    /// Run a standalone sidecar proxy configured from Istio YAML files.
    Proxy(commands::proxy::Args),
    /// Create a certificate authority and issue SPIFFE workload certificates.
    Ca(commands::ca::Args),
    /// Run the control plane: config, registry, certificates, pushes to every proxy.
    Control(commands::control::Args),
    /// Apply Istio resources to a running control plane (all or nothing).
    Apply(commands::apply::Args),
    /// List or show resources of a running control plane.
    Get(commands::get::Args),
    /// Delete a resource from a running control plane.
    Delete(commands::delete::Args),
    /// Manage bootstrap tokens that let a proxy get its certificate.
    Token(commands::token::Args),
    /// Every connected proxy: config version, ACK state, certificate expiry.
    ProxyStatus(commands::proxy_status::Args),
    /// What applies to a service: routes, subsets, endpoints with health, policies.
    Describe(commands::describe::Args),
    /// Run a command with a sidecar registered to the control plane.
    Run(commands::run::Args),
    /// Bring up a control plane and a set of workloads from one file.
    Up(commands::up::Args),
    /// A bookinfo-like demo mesh: canary, header routing, mTLS and faults, observed live.
    Demo(commands::demo::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Validate(args) => commands::validate::run(&args),
        Command::Analyze(args) => commands::analyze::run(&args),
        Command::Echo(args) => commands::echo::run(&args),
        Command::Proxy(args) => commands::proxy::run(&args),
        Command::Ca(args) => commands::ca::run(&args),
        Command::Control(args) => commands::control::run(&args),
        Command::Apply(args) => commands::apply::run(&args),
        Command::Get(args) => commands::get::run(&args),
        Command::Delete(args) => commands::delete::run(&args),
        Command::Token(args) => commands::token::run(&args),
        Command::ProxyStatus(args) => commands::proxy_status::run(&args),
        Command::Describe(args) => commands::describe::run(&args),
        Command::Run(args) => commands::run::run(&args),
        Command::Up(args) => commands::up::run(&args),
        Command::Demo(args) => commands::demo::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(commands::EXIT_USAGE)
        }
    }
}

/// Logs go to stderr (stdout carries `listening ...` lines and command output), filtered by
/// `WEFT_LOG` (e.g. `WEFT_LOG=debug`), `info` by default.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}
