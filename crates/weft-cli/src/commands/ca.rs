//! `weft ca init` / `weft ca issue`: create or plug in a root CA, and issue workload
//! certificates (key, cert chain, trust bundle) for standalone use and tests.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use weft_identity::{CaError, CertificateAuthority, SpiffeId};

use super::EXIT_USAGE;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: CaCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CaCommand {
    /// Create a root CA (ECDSA P-256, 10 years) in DIR, or plug in an existing one.
    Init(InitArgs),
    /// Issue a workload certificate for a SPIFFE ID into OUT.
    Issue(IssueArgs),
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Directory for root-cert.pem, root-key.pem and ca.json.
    #[arg(long)]
    pub dir: PathBuf,
    /// Trust domain of the identities this CA issues.
    #[arg(long, default_value = "cluster.local")]
    pub trust_domain: String,
    /// Use this existing CA certificate (PEM) instead of generating one.
    #[arg(long, requires = "from_key")]
    pub from_cert: Option<PathBuf>,
    /// Private key (PEM) of --from-cert.
    #[arg(long, requires = "from_cert")]
    pub from_key: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// CA directory made by `weft ca init`.
    #[arg(long)]
    pub dir: PathBuf,
    /// Workload identity, spiffe://TRUST-DOMAIN/ns/NAMESPACE/sa/SERVICE-ACCOUNT.
    #[arg(long)]
    pub id: String,
    /// Directory for cert-chain.pem, key.pem and root-cert.pem.
    #[arg(long)]
    pub out: PathBuf,
    /// Certificate lifetime (Go duration: 24h, 90m, ...).
    #[arg(long, default_value = "24h")]
    pub ttl: String,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    match &args.command {
        CaCommand::Init(args) => init(args),
        CaCommand::Issue(args) => issue(args),
    }
}

fn init(args: &InitArgs) -> anyhow::Result<ExitCode> {
    let result = match (&args.from_cert, &args.from_key) {
        (Some(cert), Some(key)) => {
            let (Some(cert_pem), Some(key_pem)) = (read(cert), read(key)) else {
                return Ok(ExitCode::from(EXIT_USAGE));
            };
            CertificateAuthority::from_pem(&cert_pem, &key_pem, &args.trust_domain)
                .and_then(|ca| ca.save(&args.dir))
        }
        _ => CertificateAuthority::init(&args.dir, &args.trust_domain).map(|_| ca_files(&args.dir)),
    };
    Ok(report(
        result,
        &format!("CA for trust domain {}", args.trust_domain),
    ))
}

fn issue(args: &IssueArgs) -> anyhow::Result<ExitCode> {
    let id = match SpiffeId::parse(&args.id) {
        Ok(id) => id,
        Err(err) => return Ok(usage(&format!("--id {:?}: {err}", args.id))),
    };
    let ttl = match weft_api::duration::parse_duration(&args.ttl) {
        Ok(ttl) if !ttl.is_zero() => ttl,
        Ok(_) => return Ok(usage("--ttl must be greater than zero")),
        Err(err) => return Ok(usage(&format!("--ttl: {err}"))),
    };
    let ca = match CertificateAuthority::load(&args.dir) {
        Ok(ca) => ca,
        Err(err @ CaError::BadMetadata(_)) => return Ok(usage(&err.to_string())),
        Err(err) => return Ok(report(Err(err), "")),
    };
    let result = ca
        .issue(&id, ttl)
        .and_then(|issued| issued.write_to(&args.out));
    Ok(report(
        result,
        &format!("certificate for {id} (valid {})", args.ttl),
    ))
}

fn ca_files(dir: &Path) -> Vec<PathBuf> {
    [
        weft_identity::ca::ROOT_CERT_FILE,
        weft_identity::ca::ROOT_KEY_FILE,
        weft_identity::ca::CA_META_FILE,
    ]
    .iter()
    .map(|name| dir.join(name))
    .collect()
}

/// Prints the files written (exit 0) or the error (exit 1; 2 for a path that cannot be read or
/// written).
fn report(result: Result<Vec<PathBuf>, CaError>, what: &str) -> ExitCode {
    match result {
        Ok(files) => {
            println!("wrote {what}:");
            for file in files {
                println!("  {}", file.display());
            }
            ExitCode::SUCCESS
        }
        Err(err @ CaError::Io { .. }) => usage(&err.to_string()),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}

fn read(path: &Path) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(err) => {
            eprintln!("error: {}: {err}", path.display());
            None
        }
    }
}
