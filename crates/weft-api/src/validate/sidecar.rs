//! Sidecar validation.

use crate::diagnostic::{FieldPath, Findings};
use crate::model::Sidecar;

pub fn check(_sc: &Sidecar, _path: &FieldPath, _out: &mut Findings) {}
