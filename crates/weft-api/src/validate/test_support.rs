//! Assertions shared by the validators' unit tests.

use crate::diagnostic::{Findings, Severity};

/// Asserts one finding of `severity` at `field` whose message contains `needle`.
pub fn has(out: &Findings, severity: Severity, field: &str, needle: &str) {
    assert!(
        out.iter()
            .any(|f| f.severity == severity && f.field == field && f.message.contains(needle)),
        "no {severity} at {field} containing {needle:?}; got {:#?}",
        out.iter().collect::<Vec<_>>()
    );
}

pub fn error(out: &Findings, field: &str, needle: &str) {
    has(out, Severity::Error, field, needle);
}

pub fn warning(out: &Findings, field: &str, needle: &str) {
    has(out, Severity::Warning, field, needle);
}
