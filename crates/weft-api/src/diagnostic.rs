//! Diagnostics: one finding about one field of one resource, with where it stands in its file.
//!
//! Validation and analysis both produce [`Diagnostic`]s; the CLI prints them as
//! `FILE:LINE:COL: Kind namespace/name: field.path: reason` or as JSON.

use std::fmt;

use serde::Serialize;

/// How serious a finding is. Ordered so that `Error > Warning > Info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "Info",
            Severity::Warning => "Warning",
            Severity::Error => "Error",
        }
    }

    /// Parses `Error`, `Warning` or `Info` (any case), as istioctl's `--failure-threshold` does.
    pub fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Some(Severity::Error),
            "warning" | "warn" => Some(Severity::Warning),
            "info" => Some(Severity::Info),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finding about a field, before it is tied to a file position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// Field path inside the resource, e.g. `spec.http[0].route[1].weight`.
    pub field: String,
    pub message: String,
}

/// Collects findings while validating one resource.
#[derive(Debug, Default, Clone)]
pub struct Findings {
    items: Vec<Finding>,
}

impl Findings {
    pub fn error(&mut self, field: impl fmt::Display, message: impl Into<String>) {
        self.push(Severity::Error, field, message);
    }

    pub fn warn(&mut self, field: impl fmt::Display, message: impl Into<String>) {
        self.push(Severity::Warning, field, message);
    }

    pub fn push(
        &mut self,
        severity: Severity,
        field: impl fmt::Display,
        message: impl Into<String>,
    ) {
        self.items.push(Finding {
            severity,
            field: field.to_string(),
            message: message.into(),
        });
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|f| f.severity == Severity::Error)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn into_vec(self) -> Vec<Finding> {
        self.items
    }

    pub fn iter(&self) -> impl Iterator<Item = &Finding> {
        self.items.iter()
    }
}

/// A finding placed in a file and attributed to a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Resource kind (`VirtualService`), empty when the document has none.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub field: String,
    pub message: String,
    pub severity: Severity,
    /// Stable analyzer code (`IST0101`, `WEFT0001`); absent for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.kind.is_empty() {
            write!(f, "{} {}/{}: ", self.kind, self.namespace, self.name)?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        match (&self.code, self.severity) {
            (Some(code), sev) => write!(f, "{sev} [{code}] {}", self.message),
            (None, Severity::Error) => f.write_str(&self.message),
            (None, sev) => write!(f, "{}: {}", sev.as_str().to_lowercase(), self.message),
        }
    }
}

/// Builds a field path such as `spec.http[0].route[1].weight` step by step.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FieldPath(String);

impl FieldPath {
    pub fn new(root: &str) -> FieldPath {
        FieldPath(root.to_string())
    }

    /// The path of a named field below this one.
    pub fn field(&self, name: &str) -> FieldPath {
        if self.0.is_empty() {
            FieldPath(name.to_string())
        } else {
            FieldPath(format!("{}.{name}", self.0))
        }
    }

    /// The path of a list element below this one.
    pub fn index(&self, i: usize) -> FieldPath {
        FieldPath(format!("{}[{i}]", self.0))
    }

    /// The path of a map entry below this one (rendered as a field, as kubectl does).
    pub fn key(&self, key: &str) -> FieldPath {
        self.field(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_kubectl() {
        let p = FieldPath::new("spec")
            .field("http")
            .index(0)
            .field("route")
            .index(1)
            .field("weight");
        assert_eq!(p.as_str(), "spec.http[0].route[1].weight");
    }

    #[test]
    fn diagnostic_line_format() {
        let d = Diagnostic {
            file: "vs.yaml".into(),
            line: 12,
            column: 7,
            kind: "VirtualService".into(),
            namespace: "default".into(),
            name: "reviews".into(),
            field: "spec.http[0].route[1].weight".into(),
            message: "weight -1 < 0".into(),
            severity: Severity::Error,
            code: None,
        };
        assert_eq!(
            d.to_string(),
            "vs.yaml:12:7: VirtualService default/reviews: spec.http[0].route[1].weight: weight -1 < 0"
        );
    }
}
