//! weft's model: Istio resource types, YAML loading with source positions, validation that
//! accepts and rejects what Istio does, and cross-resource analysis.
//!
//! No I/O beyond reading files and no async runtime: the proxy, the control plane and the CLI all
//! call into this crate, so the same input gets the same verdict everywhere.

pub mod analyze;
pub mod diagnostic;
pub mod duration;
mod hints;
pub mod host;
pub mod load;
pub mod mesh;
pub mod model;
pub mod resource;
pub mod source;
pub mod validate;

pub use diagnostic::{Diagnostic, FieldPath, Findings, Severity};
pub use load::{LoadError, Loaded, load_paths, load_text};
pub use resource::{Kind, ObjectMeta, Resource, Spec};
