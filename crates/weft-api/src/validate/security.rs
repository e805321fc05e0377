//! PeerAuthentication, AuthorizationPolicy and RequestAuthentication validation.

use crate::diagnostic::{FieldPath, Findings};
use crate::model::{AuthorizationPolicy, PeerAuthentication, RequestAuthentication};
use crate::resource::ObjectMeta;

pub fn check_peer_authentication(_pa: &PeerAuthentication, _meta: &ObjectMeta, _path: &FieldPath, _out: &mut Findings) {}

pub fn check_authorization_policy(_ap: &AuthorizationPolicy, _meta: &ObjectMeta, _path: &FieldPath, _out: &mut Findings) {}

pub fn check_request_authentication(_ra: &RequestAuthentication, _path: &FieldPath, _out: &mut Findings) {}
