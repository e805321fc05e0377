//! Loading: files and directories of multi-document YAML or JSON become typed [`Resource`]s
//! plus every [`Diagnostic`] found on the way (syntax, unknown fields, wrong types, validation).
//!
//! The same loader serves `weft validate`, the proxy's config watcher and the control plane's
//! apply API, so a resource gets the same verdict everywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::diagnostic::{Diagnostic, Findings, Severity};
use crate::hints::unknown_field_message;
use crate::model;
use crate::resource::Kind;
use crate::resource::{KindLookup, ObjectMeta, Origin, Resource, Spec, lookup_kind};
use crate::source::{Document, Node, PathIndex, Pos, parse_documents};
use crate::validate::validate_spec;

/// A path that could not be read at all (as opposed to content that is invalid).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Everything read from a set of inputs.
#[derive(Debug, Default, Clone)]
pub struct Loaded {
    pub resources: Vec<Resource>,
    pub diagnostics: Vec<Diagnostic>,
    /// Files read.
    pub files: usize,
    /// Non-mesh documents (Service, Deployment, ...) that were skipped.
    pub skipped: usize,
    /// The Kubernetes Services and workloads among the skipped documents: `weft analyze` uses
    /// them as the known services and pods, as `istioctl analyze` does with files.
    pub platform: Vec<PlatformObject>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn merge(&mut self, other: Loaded) {
        self.resources.extend(other.resources);
        self.diagnostics.extend(other.diagnostics);
        self.files += other.files;
        self.skipped += other.skipped;
        self.platform.extend(other.platform);
    }
}

const EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// Lists the config files under `path`: the file itself, or every `*.yaml|*.yml|*.json` below a
/// directory (recursively, sorted, hidden entries skipped).
pub fn config_files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    collect_dir(path, &mut out)?;
    out.sort();
    Ok(out)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let io = |source| LoadError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect_dir(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads every file or directory in `paths`.
pub fn load_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Loaded, LoadError> {
    let mut loaded = Loaded::default();
    for path in paths {
        for file in config_files(path.as_ref())? {
            let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Io {
                path: file.clone(),
                source,
            })?;
            loaded.merge(load_text(&file.display().to_string(), &text));
        }
    }
    Ok(loaded)
}

/// Loads one file's text; `file` is only used to name positions.
pub fn load_text(file: &str, text: &str) -> Loaded {
    let mut loaded = Loaded {
        files: 1,
        ..Loaded::default()
    };
    match parse_documents(text) {
        Ok(docs) => {
            for doc in docs {
                load_document(file, doc, &mut loaded);
            }
        }
        Err(err) => loaded.diagnostics.push(Diagnostic {
            file: file.to_string(),
            line: err.pos.line,
            column: err.pos.column,
            kind: String::new(),
            namespace: String::new(),
            name: String::new(),
            field: String::new(),
            message: format!("invalid YAML: {}", err.message),
            severity: Severity::Error,
            code: None,
        }),
    }
    loaded
}

/// Reports findings about one document against its file and resource.
struct DocReport<'a> {
    file: &'a str,
    index: &'a PathIndex,
    kind: String,
    namespace: String,
    name: String,
}

impl DocReport<'_> {
    fn emit(&self, findings: Findings, out: &mut Vec<Diagnostic>) {
        for f in findings.into_vec() {
            let pos = self
                .index
                .locate(&f.field)
                .unwrap_or(Pos { line: 1, column: 1 });
            out.push(Diagnostic {
                file: self.file.to_string(),
                line: pos.line,
                column: pos.column,
                kind: self.kind.clone(),
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                field: f.field,
                message: f.message,
                severity: f.severity,
                code: None,
            });
        }
    }
}

/// A Kubernetes object weft does not manage but can learn services and workloads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformObject {
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// Labels of the pods it runs (workloads) or its own labels (Service).
    pub pod_labels: BTreeMap<String, String>,
    /// `spec.selector` of a Service.
    pub selector: BTreeMap<String, String>,
    pub file: String,
}

const WORKLOAD_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
];

impl PlatformObject {
    fn from_document(kind: &str, root: &Node, file: &str) -> Option<PlatformObject> {
        let json = root.to_json();
        let labels_at = |ptr: &str| -> BTreeMap<String, String> {
            json.pointer(ptr)
                .and_then(|v| v.as_object())
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (pod_labels, selector) = match kind {
            "Service" => (labels_at("/metadata/labels"), labels_at("/spec/selector")),
            "Pod" => (labels_at("/metadata/labels"), BTreeMap::new()),
            k if WORKLOAD_KINDS.contains(&k) => {
                (labels_at("/spec/template/metadata/labels"), BTreeMap::new())
            }
            _ => return None,
        };
        let text = |ptr: &str| {
            json.pointer(ptr)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        Some(PlatformObject {
            kind: kind.to_string(),
            name: text("/metadata/name")?,
            namespace: text("/metadata/namespace")
                .unwrap_or_else(|| crate::resource::DEFAULT_NAMESPACE.to_string()),
            pod_labels,
            selector,
            file: file.to_string(),
        })
    }
}

const ENVELOPE_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];

fn load_document(file: &str, doc: Document, loaded: &mut Loaded) {
    let root = &doc.root;
    let api_version = root.get("apiVersion").and_then(Node::as_str).unwrap_or("");
    let kind_name = root.get("kind").and_then(Node::as_str).unwrap_or("");
    let meta_json = root.get("metadata").map(Node::to_json);
    let name = meta_json
        .as_ref()
        .and_then(|m| m.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or("")
        .to_string();
    let namespace = meta_json
        .as_ref()
        .and_then(|m| m.get("namespace"))
        .and_then(|n| n.as_str())
        .unwrap_or(crate::resource::DEFAULT_NAMESPACE)
        .to_string();
    let report = DocReport {
        file,
        index: &doc.index,
        kind: kind_name.to_string(),
        namespace,
        name,
    };
    let mut findings = Findings::default();

    if !matches!(root.value, crate::source::Value::Map(_)) {
        findings.error(
            "",
            "document is not a mapping (expected apiVersion, kind, metadata, spec)",
        );
        report.emit(findings, &mut loaded.diagnostics);
        return;
    }
    if api_version.is_empty() || kind_name.is_empty() {
        let missing = if api_version.is_empty() {
            "apiVersion"
        } else {
            "kind"
        };
        findings.error(missing, format!("missing {missing}"));
        report.emit(findings, &mut loaded.diagnostics);
        return;
    }
    let kind = match lookup_kind(api_version, kind_name) {
        KindLookup::Foreign => {
            loaded.skipped += 1;
            loaded
                .platform
                .extend(PlatformObject::from_document(kind_name, root, file));
            return;
        }
        KindLookup::Unsupported => {
            findings.error(
                "kind",
                format!("unsupported kind {kind_name} ({api_version}): weft does not implement it"),
            );
            report.emit(findings, &mut loaded.diagnostics);
            return;
        }
        KindLookup::BadVersion(kind) => {
            findings.error(
                "apiVersion",
                format!(
                    "{kind} is not served at {api_version}; use {}/{}",
                    kind.group(),
                    kind.versions().join(" or ")
                ),
            );
            report.emit(findings, &mut loaded.diagnostics);
            return;
        }
        KindLookup::Known(kind) => kind,
    };

    if let crate::source::Value::Map(entries) = &root.value {
        for e in entries
            .iter()
            .filter(|e| !ENVELOPE_FIELDS.contains(&e.key.as_str()))
        {
            findings.error(&e.key, unknown_field_message(&e.key));
        }
    }
    let meta: Option<ObjectMeta> = match meta_json {
        Some(json) => decode(json, "metadata", &mut findings),
        None => {
            findings.error("metadata", "missing metadata (metadata.name is required)");
            None
        }
    };
    if let Some(m) = &meta
        && m.name.is_empty()
    {
        findings.error("metadata.name", "metadata.name is required");
    }
    let spec_json = root
        .get("spec")
        .map(Node::to_json)
        .filter(|v| !v.is_null())
        .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
    let spec = decode_spec(kind, spec_json, &mut findings);
    if let (Some(meta), Some(spec)) = (meta, spec) {
        validate_spec(&spec, &meta, &mut findings);
        let resource = Resource {
            kind,
            api_version: api_version.to_string(),
            meta,
            spec,
            origin: Origin {
                file: file.to_string(),
                index: Arc::new(doc.index.clone()),
            },
        };
        loaded.resources.push(resource);
    }
    report.emit(findings, &mut loaded.diagnostics);
}

fn decode_spec(kind: Kind, json: serde_json::Value, findings: &mut Findings) -> Option<Spec> {
    let f = findings;
    Some(match kind {
        Kind::VirtualService => {
            Spec::VirtualService(Box::new(decode::<model::VirtualService>(json, "spec", f)?))
        }
        Kind::DestinationRule => {
            Spec::DestinationRule(Box::new(decode::<model::DestinationRule>(json, "spec", f)?))
        }
        Kind::Gateway => Spec::Gateway(Box::new(decode::<model::Gateway>(json, "spec", f)?)),
        Kind::ServiceEntry => {
            Spec::ServiceEntry(Box::new(decode::<model::ServiceEntry>(json, "spec", f)?))
        }
        Kind::WorkloadEntry => {
            Spec::WorkloadEntry(Box::new(decode::<model::WorkloadEntry>(json, "spec", f)?))
        }
        Kind::Sidecar => Spec::Sidecar(Box::new(decode::<model::Sidecar>(json, "spec", f)?)),
        Kind::PeerAuthentication => Spec::PeerAuthentication(Box::new(decode::<
            model::PeerAuthentication,
        >(json, "spec", f)?)),
        Kind::AuthorizationPolicy => {
            Spec::AuthorizationPolicy(Box::new(decode::<model::AuthorizationPolicy>(
                json, "spec", f,
            )?))
        }
        Kind::RequestAuthentication => {
            Spec::RequestAuthentication(Box::new(decode::<model::RequestAuthentication>(
                json, "spec", f,
            )?))
        }
    })
}

/// Deserializes `json` (found at `prefix`) into `T`, reporting every unknown field and the
/// first type error with its full field path.
pub(crate) fn decode<T: DeserializeOwned>(
    json: serde_json::Value,
    prefix: &str,
    findings: &mut Findings,
) -> Option<T> {
    let mut unknown = Vec::new();
    let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(ignored_path(prefix, &path));
    let de = serde_ignored::Deserializer::new(json, &mut on_unknown);
    let result: Result<T, _> = serde_path_to_error::deserialize(de);
    for path in unknown {
        let leaf = path.rsplit(['.', '[']).next().unwrap_or(&path).to_string();
        findings.error(&path, unknown_field_message(&leaf));
    }
    match result {
        Ok(value) => Some(value),
        Err(err) => {
            let inner = err.path().to_string();
            let field = if inner == "." || inner.is_empty() {
                prefix.to_string()
            } else {
                format!("{prefix}.{inner}")
            };
            findings.error(field, err.into_inner().to_string());
            None
        }
    }
}

/// Renders a serde_ignored path as `prefix.a.b[0].c`.
fn ignored_path(prefix: &str, path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    fn walk(path: &P<'_>, out: &mut String) {
        match path {
            P::Root => {}
            P::Seq { parent, index } => {
                walk(parent, out);
                out.push_str(&format!("[{index}]"));
            }
            P::Map { parent, key } => {
                walk(parent, out);
                out.push('.');
                out.push_str(key);
            }
            P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
                walk(parent, out);
            }
        }
    }
    let mut out = prefix.to_string();
    walk(path, &mut out);
    out
}
