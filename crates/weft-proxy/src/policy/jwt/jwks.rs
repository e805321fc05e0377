//! A JSON Web Key Set made ready for verification: the public keys weft can verify with, each
//! with its `kid`, its optional `alg` and the algorithms its key type allows.
//!
//! Accepted: `RSA` keys (RS256/384/512, PS256/384/512), `EC` keys on P-256 (ES256) and P-384
//! (ES384), `OKP` Ed25519 keys (EdDSA). Other keys (`oct`, P-521, X25519, malformed members,
//! an `alg` that does not fit the key type) are skipped. A document with no usable key is an
//! error, never an empty set that would verify nothing silently.

use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use super::JwtError;
use super::token::{Jwt, b64url_decode};

const RSA_ALGS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// The usable keys of one JWKS document.
#[derive(Debug)]
pub(super) struct KeySet {
    keys: Vec<Key>,
}

#[derive(Debug)]
struct Key {
    kid: Option<String>,
    /// The algorithms this key verifies: its `alg` when set, else every one of its type.
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

impl KeySet {
    /// Parses a key set `{"keys": [...]}` or a single key object.
    pub fn parse(text: &str) -> Result<KeySet, JwtError> {
        let document: Value = serde_json::from_str(text).map_err(|_| JwtError::JwksParse)?;
        let Value::Object(object) = document else {
            return Err(JwtError::JwksParse);
        };
        let keys: Vec<Key> = match object.get("keys") {
            Some(Value::Array(keys)) => keys
                .iter()
                .filter_map(Value::as_object)
                .filter_map(prepare)
                .collect(),
            Some(_) => return Err(JwtError::JwksParse),
            None => prepare(&object).into_iter().collect(),
        };
        if keys.is_empty() {
            return Err(JwtError::JwksNoValidKeys);
        }
        Ok(KeySet { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Envoy's key selection: a key whose `kid` differs from the token's is skipped (keys
    /// without `kid` are tried for any token), as is one whose `alg` or type does not fit the
    /// token's `alg`. The token verifies if one remaining key verifies its signature.
    pub fn verify(&self, jwt: &Jwt<'_>) -> Result<(), JwtError> {
        let mut matched = false;
        for key in &self.keys {
            if let (Some(want), Some(have)) = (&jwt.kid, &key.kid)
                && want != have
            {
                continue;
            }
            if !key.algorithms.contains(&jwt.alg) {
                continue;
            }
            matched = true;
            let verified = jsonwebtoken::crypto::verify(
                jwt.signature_b64,
                jwt.signing_input.as_bytes(),
                &key.key,
                jwt.alg,
            );
            if matches!(verified, Ok(true)) {
                return Ok(());
            }
        }
        Err(if matched {
            JwtError::VerificationFail
        } else {
            JwtError::JwksKidAlgMismatch
        })
    }
}

fn prepare(jwk: &Map<String, Value>) -> Option<Key> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let bytes = |name: &str| text(name).and_then(b64url_decode);
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return None,
    };
    let (key, algorithms): (DecodingKey, &[Algorithm]) = match (text("kty")?, text("crv")) {
        ("RSA", _) => {
            let (n, e) = (bytes("n")?, bytes("e")?);
            if n.is_empty() || e.is_empty() {
                return None;
            }
            (DecodingKey::from_rsa_raw_components(&n, &e), RSA_ALGS)
        }
        ("EC", Some(crv)) => {
            let (algorithms, len): (&[Algorithm], usize) = match crv {
                "P-256" => (&[Algorithm::ES256], 32),
                "P-384" => (&[Algorithm::ES384], 48),
                _ => return None,
            };
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != len || y.len() != len {
                return None;
            }
            let point: Vec<u8> = [&[0x04][..], &x, &y].concat();
            (DecodingKey::from_ec_der(&point), algorithms)
        }
        ("OKP", Some("Ed25519")) => {
            let x = bytes("x")?;
            if x.len() != 32 {
                return None;
            }
            (DecodingKey::from_ed_der(&x), &[Algorithm::EdDSA])
        }
        _ => return None,
    };
    let algorithms = match jwk.get("alg") {
        None => algorithms.to_vec(),
        Some(Value::String(alg)) => {
            let alg = alg.parse::<Algorithm>().ok()?;
            if !algorithms.contains(&alg) {
                return None;
            }
            vec![alg]
        }
        Some(_) => return None,
    };
    Some(Key {
        kid,
        algorithms,
        key,
    })
}
