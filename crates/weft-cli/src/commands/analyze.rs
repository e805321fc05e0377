//! `weft analyze PATH...`: validation plus cross-resource checks, reported with stable codes
//! (`IST0101`, `WEFT0001`, ...). Exits 79 when a finding reaches `--failure-threshold`, as
//! `istioctl analyze` does.

use std::path::PathBuf;
use std::process::ExitCode;

use weft_api::{Severity, analyze::analyze, load_paths};

use crate::output::{Format, Report, plural, print_json, print_lines};

/// istioctl's exit code for "analysis found problems".
const EXIT_FINDINGS: u8 = 79;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories (searched recursively for *.yaml, *.yml, *.json).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: Format,
    /// Lowest level that fails the run: Error, Warning or Info.
    #[arg(long, default_value = "Error", value_parser = parse_severity)]
    pub failure_threshold: Severity,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::parse(s).ok_or_else(|| format!("{s:?} is not one of Error, Warning, Info"))
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let loaded = match load_paths(&args.paths) {
        Ok(l) => l,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let findings = analyze(&loaded);
    let failing = findings
        .iter()
        .any(|d| d.severity >= args.failure_threshold);
    match args.output {
        Format::Json => print_json(&Report {
            valid: !findings.iter().any(|d| d.severity == Severity::Error),
            errors: &findings,
            resources: loaded.resources.len(),
            files: loaded.files,
            skipped: loaded.skipped,
        })?,
        Format::Text if findings.is_empty() => println!(
            "No validation issues found when analyzing {} in {}.",
            plural(loaded.resources.len(), "resource"),
            plural(loaded.files, "file")
        ),
        Format::Text => {
            print_lines(&findings);
            let count = |s: Severity| findings.iter().filter(|d| d.severity == s).count();
            println!(
                "Found {}, {} and {} in {}.",
                plural(count(Severity::Error), "error"),
                plural(count(Severity::Warning), "warning"),
                plural(count(Severity::Info), "info message"),
                plural(loaded.files, "file")
            );
        }
    }
    Ok(if failing {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}
