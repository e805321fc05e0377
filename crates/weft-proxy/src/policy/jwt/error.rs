//! Why a request's JWT was rejected: one variant per Envoy `jwt_authn` status weft can report,
//! displayed as Envoy's response body text.

/// A token was found but cannot be accepted; the request is answered with 401.
///
/// `Display` is the text Envoy's `jwt_authn` filter sends as the response body (its
/// `jwt_verify_lib` status string) and [`JwtError::response_code_details`] the matching
/// `response_code_details`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections")]
    BadFormat,
    #[error("Jwt header is an invalid Base64url encoded")]
    HeaderBadBase64,
    #[error("Jwt header is an invalid JSON")]
    HeaderBadJson,
    #[error("Jwt header [alg] field is required and must be a string")]
    HeaderBadAlg,
    /// `none`, HMAC (`HS*`), `ES512` and unknown algorithms.
    #[error("Jwt header [alg] is not supported")]
    HeaderUnsupportedAlg,
    #[error("Jwt header [kid] field is not a string")]
    HeaderBadKid,
    #[error("Jwt payload is an invalid Base64url encoded")]
    PayloadBadBase64,
    #[error("Jwt payload is an invalid JSON")]
    PayloadBadJson,
    #[error("Jwt payload [iss] field is not a string")]
    IssNotString,
    #[error("Jwt payload [sub] field is not a string")]
    SubNotString,
    #[error("Jwt payload [aud] field is not a string or string list")]
    AudNotString,
    #[error("Jwt payload [exp] field is not an integer")]
    ExpNotInteger,
    #[error("Jwt payload [exp] field is not a positive 64 bit integer")]
    ExpOutOfRange,
    #[error("Jwt payload [nbf] field is not an integer")]
    NbfNotInteger,
    #[error("Jwt payload [nbf] field is not a positive 64 bit integer")]
    NbfOutOfRange,
    #[error("Jwt payload [iat] field is not an integer")]
    IatNotInteger,
    #[error("Jwt payload [iat] field is not a positive 64 bit integer")]
    IatOutOfRange,
    #[error("Jwt signature is an invalid Base64url encoded")]
    SignatureBadBase64,
    /// No rule for the token's location has the token's issuer.
    #[error("Jwt issuer is not configured")]
    UnknownIssuer,
    #[error("Jwt not yet valid")]
    NotYetValid,
    #[error("Jwt is expired")]
    Expired,
    /// A key matched by `kid` and algorithm did not verify the signature.
    #[error("Jwt verification fails")]
    VerificationFail,
    /// An inline `jwks` that is not a JSON key or key set.
    #[error("Jwks is an invalid JSON")]
    JwksParse,
    /// An inline `jwks` without a usable public key.
    #[error("Jwks doesn't have any valid public key")]
    JwksNoValidKeys,
    #[error("Jwks doesn't have key to match kid or alg from Jwt")]
    JwksKidAlgMismatch,
    /// `jwksUri` could not be fetched (or gave no usable key) and no earlier key set is cached.
    #[error("Jwks remote fetch is failed")]
    JwksFetchFail,
}

impl JwtError {
    /// Envoy's `response_code_details` for the rejection:
    /// `jwt_authn_access_denied{<body text with spaces as underscores>}`.
    pub fn response_code_details(&self) -> &'static str {
        match self {
            JwtError::BadFormat => {
                "jwt_authn_access_denied{Jwt_is_not_in_the_form_of_Header.Payload.Signature_with_two_dots_and_3_sections}"
            }
            JwtError::HeaderBadBase64 => {
                "jwt_authn_access_denied{Jwt_header_is_an_invalid_Base64url_encoded}"
            }
            JwtError::HeaderBadJson => "jwt_authn_access_denied{Jwt_header_is_an_invalid_JSON}",
            JwtError::HeaderBadAlg => {
                "jwt_authn_access_denied{Jwt_header_[alg]_field_is_required_and_must_be_a_string}"
            }
            JwtError::HeaderUnsupportedAlg => {
                "jwt_authn_access_denied{Jwt_header_[alg]_is_not_supported}"
            }
            JwtError::HeaderBadKid => {
                "jwt_authn_access_denied{Jwt_header_[kid]_field_is_not_a_string}"
            }
            JwtError::PayloadBadBase64 => {
                "jwt_authn_access_denied{Jwt_payload_is_an_invalid_Base64url_encoded}"
            }
            JwtError::PayloadBadJson => "jwt_authn_access_denied{Jwt_payload_is_an_invalid_JSON}",
            JwtError::IssNotString => {
                "jwt_authn_access_denied{Jwt_payload_[iss]_field_is_not_a_string}"
            }
            JwtError::SubNotString => {
                "jwt_authn_access_denied{Jwt_payload_[sub]_field_is_not_a_string}"
            }
            JwtError::AudNotString => {
                "jwt_authn_access_denied{Jwt_payload_[aud]_field_is_not_a_string_or_string_list}"
            }
            JwtError::ExpNotInteger => {
                "jwt_authn_access_denied{Jwt_payload_[exp]_field_is_not_an_integer}"
            }
            JwtError::ExpOutOfRange => {
                "jwt_authn_access_denied{Jwt_payload_[exp]_field_is_not_a_positive_64_bit_integer}"
            }
            JwtError::NbfNotInteger => {
                "jwt_authn_access_denied{Jwt_payload_[nbf]_field_is_not_an_integer}"
            }
            JwtError::NbfOutOfRange => {
                "jwt_authn_access_denied{Jwt_payload_[nbf]_field_is_not_a_positive_64_bit_integer}"
            }
            JwtError::IatNotInteger => {
                "jwt_authn_access_denied{Jwt_payload_[iat]_field_is_not_an_integer}"
            }
            JwtError::IatOutOfRange => {
                "jwt_authn_access_denied{Jwt_payload_[iat]_field_is_not_a_positive_64_bit_integer}"
            }
            JwtError::SignatureBadBase64 => {
                "jwt_authn_access_denied{Jwt_signature_is_an_invalid_Base64url_encoded}"
            }
            JwtError::UnknownIssuer => "jwt_authn_access_denied{Jwt_issuer_is_not_configured}",
            JwtError::NotYetValid => "jwt_authn_access_denied{Jwt_not_yet_valid}",
            JwtError::Expired => "jwt_authn_access_denied{Jwt_is_expired}",
            JwtError::VerificationFail => "jwt_authn_access_denied{Jwt_verification_fails}",
            JwtError::JwksParse => "jwt_authn_access_denied{Jwks_is_an_invalid_JSON}",
            JwtError::JwksNoValidKeys => {
                "jwt_authn_access_denied{Jwks_doesn't_have_any_valid_public_key}"
            }
            JwtError::JwksKidAlgMismatch => {
                "jwt_authn_access_denied{Jwks_doesn't_have_key_to_match_kid_or_alg_from_Jwt}"
            }
            JwtError::JwksFetchFail => "jwt_authn_access_denied{Jwks_remote_fetch_is_failed}",
        }
    }

    /// Always 401 Unauthorized, as Envoy answers every JWT rejection.
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::UNAUTHORIZED
    }
}
