//! How diagnostics are shown: one line each (`FILE:LINE:COL: Kind ns/name: field: reason`) or
//! a JSON document for tools.

use clap::ValueEnum;
use serde::Serialize;
use weft_api::Diagnostic;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// The JSON shape shared by `weft validate` and `weft analyze`.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub valid: bool,
    pub errors: &'a [Diagnostic],
    pub resources: usize,
    pub files: usize,
    pub skipped: usize,
}

pub fn print_json(report: &Report<'_>) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(report)?);
    Ok(())
}

pub fn print_lines(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        println!("{d}");
    }
}

/// `1 error` / `3 errors`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}
