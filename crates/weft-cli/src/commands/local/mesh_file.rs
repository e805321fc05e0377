//! The mesh file of `weft up -f MESH.yaml`: a control plane, the Istio config to apply, and the
//! workloads to run, each with its sidecar. Errors name `file:line:column` and the field.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use super::upstream::Upstream;

/// The optional `apiVersion` of a mesh file.
pub const API_VERSION: &str = "weft.mesh/v1alpha1";
/// The optional `kind` of a mesh file.
pub const KIND: &str = "Mesh";

/// The whole file; its schema, with every field and default, is in `weft up`'s module docs
/// (`commands/up.rs`), `weft up --help` and the README.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshFile {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    #[serde(default)]
    pub control_plane: ControlPlaneSpec,
    #[serde(default)]
    pub config: Vec<PathBuf>,
    #[serde(default)]
    pub workloads: Vec<WorkloadSpec>,
}

/// Where `weft control` listens and keeps its data.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ControlPlaneSpec {
    pub listen: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
}

/// One workload: a command and its sidecar, started with `weft run`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadSpec {
    pub name: String,
    pub service: String,
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub service_account: Option<String>,
    #[serde(default = "default_port")]
    pub port: u16,
    pub app_port: Option<u16>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub command: Vec<String>,
    #[serde(default)]
    pub upstreams: Vec<String>,
    pub probe: Option<String>,
}

fn default_version() -> String {
    "v1".to_string()
}

fn default_namespace() -> String {
    "default".to_string()
}

fn default_port() -> u16 {
    9080
}

impl WorkloadSpec {
    pub fn service_account(&self) -> &str {
        self.service_account.as_deref().unwrap_or(&self.service)
    }

    pub fn upstreams(&self) -> anyhow::Result<Vec<Upstream>> {
        self.upstreams
            .iter()
            .map(|u| u.parse::<Upstream>().map_err(anyhow::Error::msg))
            .collect()
    }
}

/// A mesh file with its paths resolved against the file's directory.
#[derive(Debug, Clone)]
pub struct Mesh {
    pub file: MeshFile,
    /// `config` entries, absolute.
    pub config: Vec<PathBuf>,
    /// Where the control plane keeps its data.
    pub data_dir: PathBuf,
}

impl Mesh {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> anyhow::Result<Mesh> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file = parse(&path.display().to_string(), &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Ok(Mesh::resolve(file, base))
    }

    /// Resolves relative paths against `base`; `dataDir` defaults to `base/weft-data`.
    pub fn resolve(file: MeshFile, base: &Path) -> Mesh {
        let config = file.config.iter().map(|p| base.join(p)).collect();
        let data_dir = base.join(
            file.control_plane
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("weft-data")),
        );
        Mesh {
            file,
            config,
            data_dir,
        }
    }
}

/// Parses a mesh file's text; `name` names positions in errors.
pub fn parse(name: &str, text: &str) -> anyhow::Result<MeshFile> {
    let documents =
        weft_api::source::parse_documents(text).map_err(|err| anyhow::anyhow!("{name}:{err}"))?;
    let [document] = documents.as_slice() else {
        bail!(
            "{name}: expected one YAML document, found {}",
            documents.len()
        );
    };
    let json = document.root.to_json();
    let file: MeshFile = serde_path_to_error::deserialize(json).map_err(|err| {
        let path = err.path().to_string();
        let pos = document
            .index
            .locate(&path)
            .map_or(String::new(), |p| format!("{p}:"));
        anyhow::anyhow!("{name}:{pos} {path}: {}", err.inner())
    })?;
    check(&file).map_err(|err| anyhow::anyhow!("{name}: {err:#}"))?;
    Ok(file)
}

/// What the types cannot say: unique names, commands present, upstream ports not shared.
fn check(file: &MeshFile) -> anyhow::Result<()> {
    if let Some(v) = file.api_version.as_deref().filter(|v| *v != API_VERSION) {
        bail!("apiVersion: {v:?} is not {API_VERSION:?}");
    }
    if let Some(k) = file.kind.as_deref().filter(|k| *k != KIND) {
        bail!("kind: {k:?} is not {KIND:?}");
    }
    let mut names = BTreeSet::new();
    let mut ports = BTreeMap::new();
    for (i, w) in file.workloads.iter().enumerate() {
        let at = format!("workloads[{i}]");
        if w.name.is_empty()
            || !w
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            bail!(
                "{at}.name: {:?} must be letters, digits, '-', '_' or '.'",
                w.name
            );
        }
        if !names.insert(w.name.as_str()) {
            bail!("{at}.name: {:?} is used by two workloads", w.name);
        }
        if w.service.is_empty() {
            bail!("{at}.service: must not be empty");
        }
        if w.command.first().is_none_or(String::is_empty) {
            bail!("{at}.command: must name a program");
        }
        for up in w.upstreams().with_context(|| format!("{at}.upstreams"))? {
            if let Some(other) = ports.insert(up.local_port, w.name.as_str()) {
                bail!(
                    "{at}.upstreams: local port {} is also used by workload {other:?}",
                    up.local_port
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "\
apiVersion: weft.mesh/v1alpha1
kind: Mesh
controlPlane: {listen: 127.0.0.1:15012, admin: 127.0.0.1:15014, dataDir: ./data}
config: [istio/]
workloads:
- name: reviews-v1
  service: reviews
  command: [weft, echo, --name, reviews-v1]
  upstreams: [ratings:9081]
- name: ratings-v1
  service: ratings
  version: v2
  namespace: shop
  serviceAccount: rater
  port: 9090
  labels: {tier: data}
  env: {A: b}
  command: [./ratings]
  probe: tcp
";

    #[test]
    fn parses_the_documented_schema_with_defaults() {
        let file = parse("mesh.yaml", EXAMPLE).unwrap();
        let mesh = Mesh::resolve(file, Path::new("/m"));
        assert_eq!(mesh.config, vec![PathBuf::from("/m/istio/")]);
        assert_eq!(mesh.data_dir, PathBuf::from("/m/./data"));
        let w = &mesh.file.workloads;
        assert_eq!(w[0].version, "v1");
        assert_eq!(w[0].namespace, "default");
        assert_eq!(w[0].service_account(), "reviews");
        assert_eq!(w[0].port, 9080);
        assert_eq!(w[1].service_account(), "rater");
        assert_eq!(w[1].labels["tier"], "data");
        assert_eq!(w[1].probe.as_deref(), Some("tcp"));
        let empty = Mesh::resolve(parse("m", "workloads: []").unwrap(), Path::new("d"));
        assert_eq!(empty.data_dir, PathBuf::from("d/weft-data"));
    }

    #[test]
    fn errors_name_the_position_and_field() {
        let text = "workloads:\n- name: a\n  service: s\n  comand: [x]\n";
        let err = parse("mesh.yaml", text).unwrap_err().to_string();
        assert!(err.starts_with("mesh.yaml:4:3: workloads[0]"), "{err}");
        assert!(err.contains("comand"), "{err}");
    }

    #[test]
    fn checks_names_commands_and_ports() {
        for (text, wanted) in [
            (
                "workloads:\n- {name: a, service: s, command: [x]}\n- {name: a, service: t, command: [y]}\n",
                "used by two workloads",
            ),
            (
                "workloads:\n- {name: a, service: s, command: []}\n",
                "must name a program",
            ),
            (
                "workloads:\n- {name: 'a b', service: s, command: [x]}\n",
                "letters",
            ),
            (
                "workloads:\n- {name: a, service: s, command: [x], upstreams: [r:1]}\n- {name: b, service: t, command: [y], upstreams: [q:1]}\n",
                "also used",
            ),
            (
                "workloads:\n- {name: a, service: s, command: [x], upstreams: [r]}\n",
                "SERVICE:LOCAL_PORT",
            ),
            ("kind: Gateway\n", "is not \"Mesh\""),
        ] {
            let err = format!("{:#}", parse("m", text).unwrap_err());
            assert!(err.contains(wanted), "{text}: {err}");
        }
    }
}
