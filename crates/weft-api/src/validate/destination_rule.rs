//! DestinationRule validation.

use crate::diagnostic::{FieldPath, Findings};
use crate::model::DestinationRule;

pub fn check(_dr: &DestinationRule, _namespace: &str, _path: &FieldPath, _out: &mut Findings) {}
