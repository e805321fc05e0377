//! Gateway validation.

use crate::diagnostic::{FieldPath, Findings};
use crate::model::Gateway;

pub fn check(_gw: &Gateway, _path: &FieldPath, _out: &mut Findings) {}
