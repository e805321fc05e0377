//! Reads a compact JWS token the way Envoy's `jwt_verify_lib` does before any key is involved:
//! three base64url segments, a JSON header with a supported `alg`, a JSON object payload whose
//! registered claims have the right types, and the `exp`/`nbf` window with 60 s of clock skew.

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::JwtError;

/// Envoy `jwt_authn`'s default `clock_skew_seconds`.
pub(super) const CLOCK_SKEW_SECS: u64 = 60;

/// A token that parsed; its signature is not verified yet.
#[derive(Debug)]
pub(super) struct Jwt<'t> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'t str,
    /// The payload segment as it appears in the token (for `outputPayloadToHeader`).
    pub payload_b64: &'t str,
    /// The signature segment without `=` padding.
    pub signature_b64: &'t str,
    /// The payload: always a JSON object.
    pub claims: Value,
    /// `iss`, empty when absent.
    pub iss: String,
    /// `sub`, empty when absent.
    pub sub: String,
    /// `aud` as a list (a single string becomes one element).
    pub audiences: Vec<String>,
    pub exp: Option<u64>,
    pub nbf: Option<u64>,
}

impl<'t> Jwt<'t> {
    pub fn parse(token: &'t str) -> Result<Jwt<'t>, JwtError> {
        let mut segments = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(JwtError::BadFormat);
        };
        let signing_input = &token[..header.len() + 1 + payload.len()];

        let header = decode_json(header, JwtError::HeaderBadBase64, JwtError::HeaderBadJson)?;
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => supported_alg(alg).ok_or(JwtError::HeaderUnsupportedAlg)?,
            _ => return Err(JwtError::HeaderBadAlg),
        };
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(JwtError::HeaderBadKid),
        };

        let claims = decode_json(
            payload,
            JwtError::PayloadBadBase64,
            JwtError::PayloadBadJson,
        )?;
        let iss = string_claim(&claims, "iss", JwtError::IssNotString)?;
        let sub = string_claim(&claims, "sub", JwtError::SubNotString)?;
        let audiences = audiences(&claims)?;
        let exp = time_claim(
            &claims,
            "exp",
            JwtError::ExpNotInteger,
            JwtError::ExpOutOfRange,
        )?;
        let nbf = time_claim(
            &claims,
            "nbf",
            JwtError::NbfNotInteger,
            JwtError::NbfOutOfRange,
        )?;
        time_claim(
            &claims,
            "iat",
            JwtError::IatNotInteger,
            JwtError::IatOutOfRange,
        )?;

        let signature_b64 = signature.trim_end_matches('=');
        if b64url_decode(signature_b64).is_none_or(|s| s.is_empty()) {
            return Err(JwtError::SignatureBadBase64);
        }
        Ok(Jwt {
            alg,
            kid,
            signing_input,
            payload_b64: payload,
            signature_b64,
            claims: Value::Object(claims),
            iss,
            sub,
            audiences,
            exp,
            nbf,
        })
    }

    /// Envoy's `verifyTimeConstraint`: not valid before `nbf - skew`, expired after
    /// `exp + skew`; a token without `exp` never expires.
    pub fn check_time(&self, now: u64) -> Result<(), JwtError> {
        if self
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(CLOCK_SKEW_SECS))
        {
            return Err(JwtError::NotYetValid);
        }
        if self
            .exp
            .is_some_and(|exp| exp.saturating_add(CLOCK_SKEW_SECS) < now)
        {
            return Err(JwtError::Expired);
        }
        Ok(())
    }
}

/// The algorithms weft verifies. HMAC is left out on purpose (a shared secret in a key set is
/// almost always a mistake, and refusing it rules out RSA-key-as-HMAC-secret confusion), as is
/// `ES512`, which the crypto backend cannot verify.
fn supported_alg(alg: &str) -> Option<Algorithm> {
    Some(match alg {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

fn decode_json(
    segment: &str,
    bad_base64: JwtError,
    bad_json: JwtError,
) -> Result<Map<String, Value>, JwtError> {
    let bytes = b64url_decode(segment).ok_or(bad_base64)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(bad_json),
    }
}

fn string_claim(
    claims: &Map<String, Value>,
    name: &str,
    err: JwtError,
) -> Result<String, JwtError> {
    match claims.get(name) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(err),
    }
}

fn audiences(claims: &Map<String, Value>) -> Result<Vec<String>, JwtError> {
    match claims.get("aud") {
        None => Ok(Vec::new()),
        Some(Value::String(aud)) => Ok(vec![aud.clone()]),
        Some(Value::Array(list)) => list
            .iter()
            .map(|a| a.as_str().map(str::to_string).ok_or(JwtError::AudNotString))
            .collect(),
        Some(_) => Err(JwtError::AudNotString),
    }
}

/// A NumericDate: a non-negative whole number of seconds (`1.7e9` is accepted, `1.5` is not).
fn time_claim(
    claims: &Map<String, Value>,
    name: &str,
    not_integer: JwtError,
    out_of_range: JwtError,
) -> Result<Option<u64>, JwtError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let Value::Number(n) = value else {
        return Err(not_integer);
    };
    if let Some(v) = n.as_u64() {
        return Ok(Some(v));
    }
    if n.is_i64() {
        return Err(out_of_range);
    }
    let f = n.as_f64().ok_or(not_integer)?;
    if f.fract() != 0.0 {
        return Err(not_integer);
    }
    if !(0.0..u64::MAX as f64).contains(&f) {
        return Err(out_of_range);
    }
    Ok(Some(f as u64))
}

/// Base64url (RFC 4648 §5) with optional `=` padding; non-canonical trailing bits are refused.
pub(super) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in text.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (acc == 0).then_some(out)
}
