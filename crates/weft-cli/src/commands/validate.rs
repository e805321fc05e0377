//! `weft validate PATH...`: exit 0 when every resource is valid, 1 with every error otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use weft_api::{Severity, load_paths};

use crate::output::{Format, Report, plural, print_json, print_lines};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories (searched recursively for *.yaml, *.yml, *.json).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: Format,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let loaded = match load_paths(&args.paths) {
        Ok(l) => l,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let errors = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = loaded.diagnostics.len() - errors;
    let valid = errors == 0;
    match args.output {
        Format::Json => print_json(&Report {
            valid,
            errors: &loaded.diagnostics,
            resources: loaded.resources.len(),
            files: loaded.files,
            skipped: loaded.skipped,
        })?,
        Format::Text => {
            print_lines(&loaded.diagnostics);
            let skipped = match loaded.skipped {
                0 => String::new(),
                n => format!(" ({} skipped)", plural(n, "non-Istio document")),
            };
            if valid {
                let warned = match warnings {
                    0 => String::new(),
                    n => format!(", with {}", plural(n, "warning")),
                };
                println!(
                    "OK: {} in {} are valid{warned}{skipped}",
                    plural(loaded.resources.len(), "resource"),
                    plural(loaded.files, "file")
                );
            } else {
                println!(
                    "FAILED: {} and {} in {}{skipped}",
                    plural(errors, "error"),
                    plural(warnings, "warning"),
                    plural(loaded.files, "file")
                );
            }
        }
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
