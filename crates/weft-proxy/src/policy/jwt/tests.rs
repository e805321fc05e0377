use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;

const ISS: &str = "https://issuer.example.com";
const NOW: u64 = 1_800_000_000;

// ---------------------------------------------------------------------------------------------
// Keys and tokens

struct TestKey {
    encoding: EncodingKey,
    alg: Algorithm,
    kid: String,
    jwk: Value,
}

fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn ec_key(kid: &str) -> TestKey {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = pair.public_key_raw();
    assert_eq!(raw.len(), 65);
    TestKey {
        encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
        alg: Algorithm::ES256,
        kid: kid.to_string(),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": b64url(&raw[1..33]), "y": b64url(&raw[33..]),
        }),
    }
}

fn ed_key(kid: &str) -> TestKey {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    TestKey {
        encoding: EncodingKey::from_ed_der(&pair.serialize_der()),
        alg: Algorithm::EdDSA,
        kid: kid.to_string(),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64url(pair.public_key_raw())}),
    }
}

/// RSA generation is slow in debug builds: one key for all tests.
static RSA: LazyLock<(EncodingKey, Value)> = LazyLock::new(|| {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let encoding = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes()).unwrap();
    let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap();
    (encoding, serde_json::to_value(jwk).unwrap())
});

fn rsa_key(kid: &str, alg: Algorithm) -> TestKey {
    let (encoding, jwk) = &*RSA;
    let mut jwk = jwk.clone();
    jwk["kid"] = json!(kid);
    jwk.as_object_mut().unwrap().remove("alg");
    TestKey {
        encoding: encoding.clone(),
        alg,
        kid: kid.to_string(),
        jwk,
    }
}

fn jwks(keys: &[&TestKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

fn sign_with(key: &TestKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

fn sign(key: &TestKey, claims: Value) -> String {
    sign_with(key, Some(&key.kid), &claims)
}

fn claims(sub: &str) -> Value {
    json!({"iss": ISS, "sub": sub, "aud": "api", "exp": NOW + 3600, "iat": NOW})
}

// ---------------------------------------------------------------------------------------------
// Policies and requests

fn policy(name: &str, ns: &str, spec: Value) -> String {
    json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "RequestAuthentication",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
    .to_string()
}

fn load(docs: &[String]) -> Vec<Resource> {
    let loaded = weft_api::load_text("t.yaml", &docs.join("\n---\n"));
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == weft_api::Severity::Error)
        // weft-api validation accepts only http(s) URIs; the proxy also reads files.
        .filter(|d| !d.field.ends_with("jwksUri"))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    loaded.resources
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn authn(docs: &[String]) -> JwtAuthenticator {
    JwtAuthenticator::for_workload(
        &load(docs),
        "default",
        &labels(&[("app", "api")]),
        "istio-system",
    )
}

/// One policy in `default` with one rule.
fn one_rule(rule: Value) -> JwtAuthenticator {
    authn(&[policy("jwt", "default", json!({"jwtRules": [rule]}))])
}

fn inline_rule(keys: &[&TestKey]) -> Value {
    json!({"issuer": ISS, "jwks": jwks(keys)})
}

fn request(uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut builder = Request::get(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

fn bearer(token: &str) -> http::request::Parts {
    request("/path", &[("authorization", &format!("Bearer {token}"))])
}

async fn run(
    a: &JwtAuthenticator,
    parts: &mut http::request::Parts,
) -> Result<Option<Authenticated>, JwtError> {
    a.authenticate_at(parts, &JwksCache::new(), NOW).await
}

async fn check(a: &JwtAuthenticator, token: &str) -> Result<Option<Authenticated>, JwtError> {
    run(a, &mut bearer(token)).await
}

fn principal(result: Result<Option<Authenticated>, JwtError>) -> String {
    result.unwrap().expect("a principal").principal
}

// ---------------------------------------------------------------------------------------------
// Verification

#[tokio::test]
async fn valid_token_gives_principal_and_claims() {
    let key = ec_key("ec1");
    let a = one_rule(inline_rule(&[&key]));
    let mut parts = bearer(&sign(&key, claims("alice")));
    let got = run(&a, &mut parts).await.unwrap().unwrap();
    assert_eq!(got.principal, format!("{ISS}/alice"));
    assert_eq!(got.claims["aud"], "api");
    assert_eq!(got.claims["iat"], NOW);
    assert!(parts.headers.get("authorization").is_none());
}

#[tokio::test]
async fn rsa_pss_and_eddsa_tokens_verify() {
    let rs = rsa_key("rsa1", Algorithm::RS256);
    let ps = rsa_key("rsa1", Algorithm::PS256);
    let rs512 = rsa_key("rsa1", Algorithm::RS512);
    let ed = ed_key("ed1");
    let a = one_rule(inline_rule(&[&rs, &ed]));
    for key in [&rs, &ps, &rs512, &ed] {
        assert_eq!(
            principal(check(&a, &sign(key, claims("bob"))).await),
            format!("{ISS}/bob")
        );
    }
}

#[tokio::test]
async fn key_alg_restricts_token_alg() {
    let mut rs = rsa_key("rsa1", Algorithm::RS256);
    rs.jwk["alg"] = json!("RS256");
    let ps = rsa_key("rsa1", Algorithm::PS256);
    let a = one_rule(inline_rule(&[&rs]));
    assert!(
        check(&a, &sign(&rs, claims("bob")))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        check(&a, &sign(&ps, claims("bob"))).await,
        Err(JwtError::JwksKidAlgMismatch)
    );
}

#[tokio::test]
async fn bad_signature_is_rejected() {
    let key = ec_key("ec1");
    let forger = ec_key("ec1");
    let a = one_rule(inline_rule(&[&key]));
    let forged = sign(&forger, claims("mallory"));
    assert_eq!(check(&a, &forged).await, Err(JwtError::VerificationFail));
    // A valid token whose payload was swapped.
    let good = sign(&key, claims("alice"));
    let other = sign(&key, claims("root"));
    let parts: Vec<&str> = good.split('.').collect();
    let other_payload = other.split('.').nth(1).unwrap();
    let spliced = format!("{}.{}.{}", parts[0], other_payload, parts[2]);
    assert_eq!(check(&a, &spliced).await, Err(JwtError::VerificationFail));
}

#[tokio::test]
async fn token_without_kid_tries_every_key() {
    let k1 = ec_key("k1");
    let k2 = ec_key("k2");
    let a = one_rule(inline_rule(&[&k1, &k2]));
    let token = sign_with(&k2, None, &claims("alice"));
    assert!(check(&a, &token).await.unwrap().is_some());
}

#[tokio::test]
async fn unknown_kid_is_rejected() {
    let key = ec_key("ec1");
    let a = one_rule(inline_rule(&[&key]));
    let token = sign_with(&key, Some("other"), &claims("alice"));
    assert_eq!(check(&a, &token).await, Err(JwtError::JwksKidAlgMismatch));
    assert_eq!(
        JwtError::JwksKidAlgMismatch.to_string(),
        "Jwks doesn't have key to match kid or alg from Jwt"
    );
}

#[tokio::test]
async fn expiry_and_not_before_use_60s_skew() {
    let key = ec_key("ec1");
    let a = one_rule(inline_rule(&[&key]));
    let with = |patch: Value| {
        let mut c = claims("alice");
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        sign(&key, c)
    };
    let expired = with(json!({"exp": NOW - 61}));
    assert_eq!(check(&a, &expired).await, Err(JwtError::Expired));
    assert_eq!(JwtError::Expired.to_string(), "Jwt is expired");
    assert_eq!(
        JwtError::Expired.response_code_details(),
        "jwt_authn_access_denied{Jwt_is_expired}"
    );
    assert!(
        check(&a, &with(json!({"exp": NOW - 30})))
            .await
            .unwrap()
            .is_some()
    );
    let early = with(json!({"nbf": NOW + 61}));
    assert_eq!(check(&a, &early).await, Err(JwtError::NotYetValid));
    assert!(
        check(&a, &with(json!({"nbf": NOW + 30})))
            .await
            .unwrap()
            .is_some()
    );
    let no_exp = sign(&key, json!({"iss": ISS, "sub": "alice"}));
    assert!(check(&a, &no_exp).await.unwrap().is_some());
    let text_exp = with(json!({"exp": "tomorrow"}));
    assert_eq!(check(&a, &text_exp).await, Err(JwtError::ExpNotInteger));
}

#[tokio::test]
async fn unconfigured_issuer_is_rejected() {
    let key = ec_key("ec1");
    let a = one_rule(inline_rule(&[&key]));
    let mut c = claims("alice");
    c["iss"] = json!("https://other.example.com");
    assert_eq!(
        check(&a, &sign(&key, c)).await,
        Err(JwtError::UnknownIssuer)
    );
    let no_iss = sign(&key, json!({"sub": "alice"}));
    assert_eq!(check(&a, &no_iss).await, Err(JwtError::UnknownIssuer));
}

#[tokio::test]
async fn wrong_audience_passes_without_principal() {
    let key = ec_key("ec1");
    let mut rule = inline_rule(&[&key]);
    rule["audiences"] = json!(["https://api.example.com/", "other"]);
    let a = one_rule(rule);
    let token = sign(&key, claims("alice")); // aud: "api"
    let mut parts = bearer(&token);
    assert_eq!(run(&a, &mut parts).await, Ok(None));
    // The ignored token is left in place.
    assert!(parts.headers.get("authorization").is_some());
    // Envoy compares audiences without scheme and trailing slash; lists work.
    let mut c = claims("alice");
    c["aud"] = json!(["x", "http://api.example.com"]);
    assert!(check(&a, &sign(&key, c)).await.unwrap().is_some());
    // A forged token with a wrong audience is still rejected.
    let forged = sign(&ec_key("ec1"), claims("mallory"));
    assert_eq!(check(&a, &forged).await, Err(JwtError::VerificationFail));
}

#[tokio::test]
async fn missing_token_passes_without_principal() {
    let key = ec_key("ec1");
    let a = one_rule(inline_rule(&[&key]));
    assert_eq!(run(&a, &mut request("/", &[])).await, Ok(None));
    let mut basic = request("/", &[("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")]);
    assert_eq!(run(&a, &mut basic).await, Ok(None));
    assert!(basic.headers.get("authorization").is_some());
    assert_eq!(
        run(&a, &mut request("/", &[("authorization", "Bearer ")])).await,
        Ok(None)
    );
    let empty = JwtAuthenticator::default();
    assert!(empty.is_empty());
    assert_eq!(check(&empty, "garbage").await, Ok(None));
}

#[tokio::test]
async fn malformed_tokens_are_rejected_without_panic() {
    let key = ec_key("ec1");
    let a = one_rule(inline_rule(&[&key]));
    let header = b64url(br#"{"alg":"ES256"}"#);
    let payload = b64url(json!({"iss": ISS}).to_string().as_bytes());
    let none = b64url(br#"{"alg":"none"}"#);
    let hs256 = b64url(br#"{"alg":"HS256"}"#);
    let huge = "a".repeat(1 << 20);
    let cases = [
        ("a.b".to_string(), JwtError::BadFormat),
        ("a.b.c.d".to_string(), JwtError::BadFormat),
        ("notatoken".to_string(), JwtError::BadFormat),
        (format!("!!.{payload}.c2ln"), JwtError::HeaderBadBase64),
        (
            format!("{}.{payload}.c2ln", b64url(b"[1]")),
            JwtError::HeaderBadJson,
        ),
        (
            format!("{}.{payload}.c2ln", b64url(b"{}")),
            JwtError::HeaderBadAlg,
        ),
        (
            format!("{none}.{payload}.c2ln"),
            JwtError::HeaderUnsupportedAlg,
        ),
        (format!("{none}.{payload}."), JwtError::HeaderUnsupportedAlg),
        // Algorithm confusion: HMAC over the public key is never accepted.
        (
            format!("{hs256}.{payload}.c2ln"),
            JwtError::HeaderUnsupportedAlg,
        ),
        (format!("{header}.%%%.c2ln"), JwtError::PayloadBadBase64),
        (
            format!("{header}.{}.c2ln", b64url(b"nope")),
            JwtError::PayloadBadJson,
        ),
        (format!("{header}.{payload}."), JwtError::SignatureBadBase64),
        (
            format!("{header}.{payload}.@@"),
            JwtError::SignatureBadBase64,
        ),
        (
            format!("{header}.{payload}.c2ln"),
            JwtError::VerificationFail,
        ),
        (
            format!("{header}.{}.c2ln", b64url(br#"{"iss":1}"#)),
            JwtError::IssNotString,
        ),
        (
            format!("{header}.{}.c2ln", b64url(br#"{"iss":"x","aud":[1]}"#)),
            JwtError::AudNotString,
        ),
        (
            format!("{header}.{}.c2ln", b64url(br#"{"iss":"x","exp":-5}"#)),
            JwtError::ExpOutOfRange,
        ),
        (format!("{header}.{huge}.c2ln"), JwtError::PayloadBadJson),
    ];
    for (token, want) in cases {
        let got = check(&a, &token).await;
        assert_eq!(got, Err(want), "{}", &token[..token.len().min(80)]);
    }
}

#[tokio::test]
async fn every_token_must_be_valid() {
    let key = ec_key("ec1");
    let a = one_rule(inline_rule(&[&key]));
    let good = sign(&key, claims("alice"));
    let mut expired = claims("bob");
    expired["exp"] = json!(NOW - 3600);
    let expired = sign(&key, expired);
    let mut parts = request(
        &format!("/p?access_token={expired}"),
        &[("authorization", &format!("Bearer {good}"))],
    );
    assert_eq!(run(&a, &mut parts).await, Err(JwtError::Expired));
    // Two valid tokens: the first location's gives the principal, both are removed.
    let other = sign(&key, claims("bob"));
    let mut parts = request(
        &format!("/p?access_token={other}&x=1"),
        &[("authorization", &format!("Bearer {good}"))],
    );
    assert_eq!(principal(run(&a, &mut parts).await), format!("{ISS}/alice"));
    assert_eq!(parts.uri.to_string(), "/p?x=1");
}

#[tokio::test]
async fn invalid_inline_jwks_fails_closed() {
    let key = ec_key("ec1");
    let other_iss = "https://other.example.com";
    let a = authn(&[policy(
        "jwt",
        "default",
        json!({"jwtRules": [
            {"issuer": ISS, "jwks": r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#},
            {"issuer": other_iss, "jwks": jwks(&[&key])},
        ]}),
    )]);
    assert_eq!(
        check(&a, &sign(&key, claims("alice"))).await,
        Err(JwtError::JwksNoValidKeys)
    );
    let mut c = claims("alice");
    c["iss"] = json!(other_iss);
    assert!(check(&a, &sign(&key, c)).await.unwrap().is_some());
    let no_keys = one_rule(json!({"issuer": ISS}));
    assert_eq!(
        check(&no_keys, &sign(&key, claims("alice"))).await,
        Err(JwtError::JwksFetchFail)
    );
}

// ---------------------------------------------------------------------------------------------
// Locations and outputs

#[tokio::test]
async fn from_headers_with_prefix() {
    let key = ec_key("ec1");
    let mut rule = inline_rule(&[&key]);
    rule["fromHeaders"] =
        json!([{"name": "X-Jwt-Assertion", "prefix": "Token "}, {"name": "x-raw"}]);
    let a = one_rule(rule);
    let token = sign(&key, claims("alice"));
    let mut parts = request("/", &[("x-jwt-assertion", &format!("token {token}"))]);
    assert_eq!(principal(run(&a, &mut parts).await), format!("{ISS}/alice"));
    assert!(parts.headers.get("x-jwt-assertion").is_none());
    let mut raw = request("/", &[("x-raw", &token)]);
    assert!(run(&a, &mut raw).await.unwrap().is_some());
    // Only the configured locations are read.
    let mut default = bearer(&token);
    assert_eq!(run(&a, &mut default).await, Ok(None));
    assert!(default.headers.get("authorization").is_some());
    let mut wrong_prefix = request("/", &[("x-jwt-assertion", &format!("Bearer {token}"))]);
    assert_eq!(run(&a, &mut wrong_prefix).await, Ok(None));
}

#[tokio::test]
async fn from_params_and_cookies() {
    let key = ec_key("ec1");
    let mut rule = inline_rule(&[&key]);
    rule["fromParams"] = json!(["token"]);
    rule["fromCookies"] = json!(["session"]);
    let a = one_rule(rule);
    let token = sign(&key, claims("alice"));
    let mut parts = request(&format!("/a/b?x=1&token={token}&y=%20"), &[]);
    assert!(run(&a, &mut parts).await.unwrap().is_some());
    assert_eq!(parts.uri.to_string(), "/a/b?x=1&y=%20");
    let mut only = request(&format!("/a?token={token}"), &[]);
    assert!(run(&a, &mut only).await.unwrap().is_some());
    assert_eq!(only.uri.to_string(), "/a");
    let cookie = format!("theme=dark; session=\"{token}\"; lang=en");
    let mut parts = request("/", &[("cookie", &cookie)]);
    assert!(run(&a, &mut parts).await.unwrap().is_some());
    assert_eq!(parts.headers["cookie"], "theme=dark; lang=en");
    // access_token is not read when fromParams is set.
    assert_eq!(
        run(&a, &mut request(&format!("/?access_token={token}"), &[])).await,
        Ok(None)
    );
}

#[tokio::test]
async fn token_in_other_rules_location_is_unknown_issuer() {
    let key = ec_key("ec1");
    let other = ec_key("ec2");
    let mut a_rule = inline_rule(&[&key]);
    a_rule["fromHeaders"] = json!([{"name": "x-a"}]);
    let b_rule = json!({"issuer": "https://b.example.com", "jwks": jwks(&[&other])});
    let a = authn(&[policy(
        "jwt",
        "default",
        json!({"jwtRules": [a_rule, b_rule]}),
    )]);
    let token = sign(&key, claims("alice"));
    assert!(
        run(&a, &mut request("/", &[("x-a", &token)]))
            .await
            .unwrap()
            .is_some()
    );
    // The default location belongs to issuer b only.
    assert_eq!(check(&a, &token).await, Err(JwtError::UnknownIssuer));
}

#[tokio::test]
async fn forward_original_token() {
    let key = ec_key("ec1");
    let token = sign(&key, claims("alice"));
    let strip = one_rule(inline_rule(&[&key]));
    let mut parts = request(
        "/",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("authorization", "Basic eDp5"),
        ],
    );
    assert!(run(&strip, &mut parts).await.unwrap().is_some());
    let left: Vec<_> = parts.headers.get_all("authorization").iter().collect();
    assert_eq!(left, ["Basic eDp5"]);

    let mut rule = inline_rule(&[&key]);
    rule["forwardOriginalToken"] = json!(true);
    let keep = one_rule(rule);
    let mut parts = bearer(&token);
    assert!(run(&keep, &mut parts).await.unwrap().is_some());
    assert_eq!(parts.headers["authorization"], format!("Bearer {token}"));
}

#[tokio::test]
async fn outputs_payload_and_claims_to_headers() {
    let key = ec_key("ec1");
    let mut rule = inline_rule(&[&key]);
    rule["outputPayloadToHeader"] = json!("x-jwt-payload");
    rule["outputClaimToHeaders"] = json!([
        {"header": "x-sub", "claim": "sub"},
        {"header": "x-admin", "claim": "admin"},
        {"header": "x-level", "claim": "level"},
        {"header": "x-team", "claim": "org.team"},
        {"header": "x-groups", "claim": "groups"},
    ]);
    let a = one_rule(rule);
    let mut c = claims("alice");
    c["admin"] = json!(true);
    c["level"] = json!(3);
    c["org"] = json!({"team": "core"});
    c["groups"] = json!(["a", "b"]);
    c["scope"] = json!("read write");
    let token = sign(&key, c);
    let mut parts = request(
        "/",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("x-groups", "spoofed"),
        ],
    );
    let got = run(&a, &mut parts).await.unwrap().unwrap();
    let h = &parts.headers;
    assert_eq!(h["x-jwt-payload"], token.split('.').nth(1).unwrap());
    assert_eq!(h["x-sub"], "alice");
    assert_eq!(h["x-admin"], "true");
    assert_eq!(h["x-level"], "3");
    assert_eq!(h["x-team"], "core");
    assert!(
        h.get("x-groups").is_none(),
        "client-supplied output header removed"
    );
    assert_eq!(got.claims["scope"], json!(["read", "write"]));

    // Without a token the spoofable headers are still cleared.
    let mut parts = request("/", &[("x-sub", "admin"), ("x-jwt-payload", "e30")]);
    assert_eq!(run(&a, &mut parts).await, Ok(None));
    assert!(parts.headers.get("x-sub").is_none());
    assert!(parts.headers.get("x-jwt-payload").is_none());
}

// ---------------------------------------------------------------------------------------------
// Remote key sets

#[tokio::test]
async fn jwks_uri_file_path() {
    let key = ec_key("ec1");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks(&[&key])).unwrap();
    let token = sign(&key, claims("alice"));
    for uri in [
        path.display().to_string(),
        format!("file://{}", path.display()),
    ] {
        let a = one_rule(json!({"issuer": ISS, "jwksUri": uri}));
        assert_eq!(a.jwks_uris(), [uri.as_str()]);
        assert!(check(&a, &token).await.unwrap().is_some(), "{uri}");
    }
    let missing = one_rule(json!({"issuer": ISS, "jwksUri": "/does/not/exist.json"}));
    assert_eq!(check(&missing, &token).await, Err(JwtError::JwksFetchFail));
    let https = one_rule(json!({"issuer": ISS, "jwksUri": "https://127.0.0.1:1/jwks"}));
    assert_eq!(check(&https, &token).await, Err(JwtError::JwksFetchFail));
}

/// A JWKS server on 127.0.0.1:0 answering with `status` and `body`, counting requests.
struct JwksServer {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    status: Arc<AtomicU16>,
    body: Arc<Mutex<String>>,
}

impl JwksServer {
    async fn start(body: String) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = JwksServer {
            addr: listener.local_addr().unwrap(),
            hits: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            body: Arc::new(Mutex::new(body)),
        };
        let (hits, status, body) = (
            server.hits.clone(),
            server.status.clone(),
            server.body.clone(),
        );
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (hits, status, body) = (hits.clone(), status.clone(), body.clone());
                let service = hyper::service::service_fn(move |_req| {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let response = http::Response::builder()
                        .status(status.load(Ordering::SeqCst))
                        .body(Full::new(Bytes::from(body.lock().unwrap().clone())))
                        .unwrap();
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        server
    }

    fn uri(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn jwks_uri_http_is_fetched_once_for_concurrent_requests() {
    let key = ec_key("ec1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let a = one_rule(json!({"issuer": ISS, "jwksUri": server.uri(), "timeout": "2s"}));
    let cache = Arc::new(JwksCache::new());
    let token = sign(&key, claims("alice"));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (a, cache, token) = (a.clone(), cache.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            a.authenticate_at(&mut bearer(&token), &cache, NOW).await
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap().unwrap().is_some());
    }
    assert_eq!(server.hits(), 1);
    // Cached: no further fetch.
    assert!(
        a.authenticate_at(&mut bearer(&token), &cache, NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn unreachable_jwks_uri_fails_closed() {
    let key = ec_key("ec1");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let a = one_rule(json!({"issuer": ISS, "jwksUri": format!("http://127.0.0.1:{port}/jwks")}));
    let cache = JwksCache::with_intervals(DEFAULT_REFRESH_INTERVAL, Duration::from_millis(50));
    let token = sign(&key, claims("alice"));
    for _ in 0..2 {
        let got = a.authenticate_at(&mut bearer(&token), &cache, NOW).await;
        assert_eq!(got, Err(JwtError::JwksFetchFail));
    }
    // Any token of the issuer, even one with a wrong signature or audience.
    let forged = sign(&ec_key("ec1"), claims("mallory"));
    let got = a.authenticate_at(&mut bearer(&forged), &cache, NOW).await;
    assert_eq!(got, Err(JwtError::JwksFetchFail));
    assert_eq!(
        JwtError::JwksFetchFail.response_code_details(),
        "jwt_authn_access_denied{Jwks_remote_fetch_is_failed}"
    );
    // No token still passes.
    let got = a.authenticate_at(&mut request("/", &[]), &cache, NOW).await;
    assert_eq!(got, Ok(None));
}

#[tokio::test]
async fn failed_first_fetch_is_not_retried_within_the_backoff() {
    let key = ec_key("ec1");
    let server = JwksServer::start(jwks(&[&key])).await;
    server.status.store(503, Ordering::SeqCst);
    let a = one_rule(json!({"issuer": ISS, "jwksUri": server.uri()}));
    let cache = JwksCache::with_intervals(DEFAULT_REFRESH_INTERVAL, Duration::from_secs(3600));
    let token = sign(&key, claims("alice"));
    let got = a.authenticate_at(&mut bearer(&token), &cache, NOW).await;
    assert_eq!(got, Err(JwtError::JwksFetchFail));
    server.status.store(200, Ordering::SeqCst);
    let got = a.authenticate_at(&mut bearer(&token), &cache, NOW).await;
    assert_eq!(got, Err(JwtError::JwksFetchFail));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn failed_first_fetch_is_retried_after_the_backoff() {
    let key = ec_key("ec1");
    let server = JwksServer::start(jwks(&[&key])).await;
    server.status.store(503, Ordering::SeqCst);
    let a = one_rule(json!({"issuer": ISS, "jwksUri": server.uri()}));
    let cache = JwksCache::with_intervals(DEFAULT_REFRESH_INTERVAL, Duration::ZERO);
    let token = sign(&key, claims("alice"));
    let got = a.authenticate_at(&mut bearer(&token), &cache, NOW).await;
    assert_eq!(got, Err(JwtError::JwksFetchFail));
    server.status.store(200, Ordering::SeqCst);
    let got = a.authenticate_at(&mut bearer(&token), &cache, NOW).await;
    assert_eq!(principal(got), format!("{ISS}/alice"));
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn failed_refresh_keeps_serving_the_last_good_keys() {
    let old = ec_key("old");
    let new = ec_key("new");
    let server = JwksServer::start(jwks(&[&old])).await;
    let a = one_rule(json!({"issuer": ISS, "jwksUri": server.uri()}));
    let cache = JwksCache::with_intervals(Duration::ZERO, Duration::from_millis(20));
    let old_token = sign(&old, claims("alice"));
    let new_token = sign(&new, claims("bob"));
    assert!(
        a.authenticate_at(&mut bearer(&old_token), &cache, NOW)
            .await
            .unwrap()
            .is_some()
    );

    // The server fails: every later use triggers a refresh (interval 0) that fails.
    server.status.store(500, Ordering::SeqCst);
    let before = server.hits();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.hits() < before + 2 && tokio::time::Instant::now() < deadline {
        let got = a
            .authenticate_at(&mut bearer(&old_token), &cache, NOW)
            .await;
        assert!(got.unwrap().is_some(), "stale keys keep serving");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(server.hits() >= before + 2);

    // The server rotates its key: a later refresh picks it up.
    *server.body.lock().unwrap() = jwks(&[&new]);
    server.status.store(200, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got = a
            .authenticate_at(&mut bearer(&new_token), &cache, NOW)
            .await;
        if got.is_ok() {
            assert_eq!(principal(got), format!("{ISS}/bob"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "new key never fetched"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn jwks_document_without_usable_keys_is_a_failed_fetch() {
    let key = ec_key("ec1");
    let server = JwksServer::start("{\"keys\": []}".to_string()).await;
    let a = one_rule(json!({"issuer": ISS, "jwksUri": server.uri()}));
    let got = check(&a, &sign(&key, claims("alice"))).await;
    assert_eq!(got, Err(JwtError::JwksFetchFail));
}

// ---------------------------------------------------------------------------------------------
// Selection

#[test]
fn selection_by_namespace_selector_and_target_ref() {
    let rule = json!({"issuer": ISS, "jwksUri": "http://127.0.0.1:1/jwks"});
    let docs = [
        policy("mesh", "istio-system", json!({"jwtRules": [rule]})),
        policy("ns", "default", json!({"jwtRules": [rule]})),
        policy(
            "api",
            "default",
            json!({"selector": {"matchLabels": {"app": "api"}}, "jwtRules": [rule]}),
        ),
        policy(
            "web",
            "default",
            json!({"selector": {"matchLabels": {"app": "web"}}, "jwtRules": [rule]}),
        ),
        policy(
            "gw",
            "default",
            json!({"targetRefs": [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "g"}], "jwtRules": [rule]}),
        ),
        policy("other", "other", json!({"jwtRules": [rule]})),
    ];
    let resources = load(&docs);
    let ids = |ns: &str, l: &[(&str, &str)]| {
        let a = JwtAuthenticator::for_workload(&resources, ns, &labels(l), "istio-system");
        a.policy_ids().map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(
        ids("default", &[("app", "api")]),
        ["default.api", "default.ns", "istio-system.mesh"]
    );
    assert_eq!(
        ids("default", &[("app", "web"), ("v", "1")]),
        ["default.ns", "default.web", "istio-system.mesh"]
    );
    assert_eq!(
        ids("other", &[("app", "api")]),
        ["istio-system.mesh", "other.other"]
    );
    assert_eq!(ids("third", &[]), ["istio-system.mesh"]);
    let none = JwtAuthenticator::for_workload(&resources, "third", &labels(&[]), "elsewhere");
    assert!(none.is_empty());
}

#[tokio::test]
async fn rules_of_several_policies_combine() {
    let k1 = ec_key("k1");
    let k2 = ec_key("k2");
    let iss2 = "https://second.example.com";
    let a = authn(&[
        policy("one", "default", json!({"jwtRules": [inline_rule(&[&k1])]})),
        policy(
            "two",
            "istio-system",
            json!({"jwtRules": [{"issuer": iss2, "jwks": jwks(&[&k2])}]}),
        ),
    ]);
    assert!(
        check(&a, &sign(&k1, claims("alice")))
            .await
            .unwrap()
            .is_some()
    );
    let mut c = claims("bob");
    c["iss"] = json!(iss2);
    assert_eq!(
        principal(check(&a, &sign(&k2, c)).await),
        format!("{iss2}/bob")
    );
}

#[test]
fn response_code_details_follow_the_message() {
    let all = [
        JwtError::BadFormat,
        JwtError::HeaderBadBase64,
        JwtError::HeaderBadJson,
        JwtError::HeaderBadAlg,
        JwtError::HeaderUnsupportedAlg,
        JwtError::HeaderBadKid,
        JwtError::PayloadBadBase64,
        JwtError::PayloadBadJson,
        JwtError::IssNotString,
        JwtError::SubNotString,
        JwtError::AudNotString,
        JwtError::ExpNotInteger,
        JwtError::ExpOutOfRange,
        JwtError::NbfNotInteger,
        JwtError::NbfOutOfRange,
        JwtError::IatNotInteger,
        JwtError::IatOutOfRange,
        JwtError::SignatureBadBase64,
        JwtError::UnknownIssuer,
        JwtError::NotYetValid,
        JwtError::Expired,
        JwtError::VerificationFail,
        JwtError::JwksParse,
        JwtError::JwksNoValidKeys,
        JwtError::JwksKidAlgMismatch,
        JwtError::JwksFetchFail,
    ];
    for e in all {
        let want = format!(
            "jwt_authn_access_denied{{{}}}",
            e.to_string().replace(' ', "_")
        );
        assert_eq!(e.response_code_details(), want);
        assert_eq!(e.status(), http::StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        JwtError::BadFormat.to_string(),
        "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
    );
}

#[tokio::test]
async fn odd_jwks_uris_fail_closed_without_panic() {
    let key = ec_key("ec1");
    let token = sign(&key, claims("alice"));
    for uri in [
        "htt€p://x/jwks",
        "€",
        "ftp://example.com/jwks",
        "relative/jwks.json",
        "HTTPS://x/",
    ] {
        let a = one_rule(json!({"issuer": ISS, "jwksUri": uri}));
        assert_eq!(
            check(&a, &token).await,
            Err(JwtError::JwksFetchFail),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn rule_without_issuer_accepts_any_issuer_its_keys_verify() {
    let key = ec_key("ec1");
    let a = one_rule(json!({"jwks": jwks(&[&key]), "jwksUri": "http://127.0.0.1:1/unused"}));
    let mut c = claims("carol");
    c["iss"] = json!("https://anyone.example.com");
    assert_eq!(
        principal(check(&a, &sign(&key, c)).await),
        "https://anyone.example.com/carol"
    );
}

#[test]
fn base64url_decoding() {
    use super::token::b64url_decode;
    assert_eq!(b64url_decode("").unwrap(), b"");
    assert_eq!(b64url_decode("YQ").unwrap(), b"a");
    assert_eq!(b64url_decode("YQ==").unwrap(), b"a");
    assert_eq!(b64url_decode("YWI").unwrap(), b"ab");
    assert_eq!(b64url_decode("_-8").unwrap(), [0xff, 0xef]);
    assert!(b64url_decode("Y").is_none(), "impossible length");
    assert!(b64url_decode("YR").is_none(), "non-canonical trailing bits");
    assert!(b64url_decode("Y+/=").is_none(), "standard alphabet");
    assert!(b64url_decode("€€").is_none());
    let bytes: Vec<u8> = (0..=255).collect();
    assert_eq!(b64url_decode(&b64url(&bytes)).unwrap(), bytes);
}
