//! SPIFFE IDs of workloads: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
//!
//! Parsing follows the SPIFFE ID specification (lowercase trust domain of `a-z 0-9 . - _`,
//! path segments of `a-z A-Z 0-9 . - _` that are neither empty nor `.`/`..`, no query, no
//! fragment, no port, no user info) and additionally requires Istio's `ns/<ns>/sa/<sa>` path,
//! the only shape weft issues and authorizes.

use std::fmt;
use std::str::FromStr;

const SCHEME: &str = "spiffe://";
/// The SPIFFE spec limits a trust domain to 255 bytes and a whole ID to 2048 bytes.
const MAX_TRUST_DOMAIN_LEN: usize = 255;
const MAX_ID_LEN: usize = 2048;

/// Why a string is not a valid weft SPIFFE ID or trust domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpiffeIdError {
    #[error("SPIFFE ID must start with \"spiffe://\"")]
    MissingScheme,
    #[error("SPIFFE ID is longer than {MAX_ID_LEN} bytes")]
    TooLong,
    #[error("trust domain is empty")]
    EmptyTrustDomain,
    #[error("trust domain is longer than {MAX_TRUST_DOMAIN_LEN} bytes")]
    TrustDomainTooLong,
    #[error(
        "trust domain contains {0:?}; only lowercase letters, digits, '.', '-' and '_' are allowed"
    )]
    InvalidTrustDomainChar(char),
    #[error("SPIFFE ID must not contain a query or fragment")]
    QueryOrFragment,
    #[error("path segment {0:?} is empty, '.' or '..'")]
    InvalidSegment(String),
    #[error(
        "path segment {segment:?} contains {ch:?}; only letters, digits, '.', '-' and '_' are allowed"
    )]
    InvalidSegmentChar { segment: String, ch: char },
    #[error("path must be /ns/<namespace>/sa/<service-account>")]
    NotWorkloadPath,
}

/// A validated workload identity, `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    trust_domain: String,
    namespace: String,
    service_account: String,
}

impl SpiffeId {
    /// Builds an ID from its parts, validating each of them.
    pub fn new(
        trust_domain: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<Self, SpiffeIdError> {
        validate_trust_domain(trust_domain)?;
        validate_segment(namespace)?;
        validate_segment(service_account)?;
        let id = Self {
            trust_domain: trust_domain.to_owned(),
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
        };
        if id.to_string().len() > MAX_ID_LEN {
            return Err(SpiffeIdError::TooLong);
        }
        Ok(id)
    }

    /// Parses `spiffe://td/ns/<ns>/sa/<sa>`.
    pub fn parse(input: &str) -> Result<Self, SpiffeIdError> {
        if input.len() > MAX_ID_LEN {
            return Err(SpiffeIdError::TooLong);
        }
        let rest = input
            .strip_prefix(SCHEME)
            .ok_or(SpiffeIdError::MissingScheme)?;
        if rest.contains(['?', '#']) {
            return Err(SpiffeIdError::QueryOrFragment);
        }
        let (trust_domain, path) = match rest.split_once('/') {
            Some(parts) => parts,
            None => {
                validate_trust_domain(rest)?;
                return Err(SpiffeIdError::NotWorkloadPath);
            }
        };
        validate_trust_domain(trust_domain)?;
        let segments: Vec<&str> = path.split('/').collect();
        for segment in &segments {
            validate_segment(segment)?;
        }
        match segments.as_slice() {
            ["ns", namespace, "sa", service_account] => {
                Self::new(trust_domain, namespace, service_account)
            }
            _ => Err(SpiffeIdError::NotWorkloadPath),
        }
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn service_account(&self) -> &str {
        &self.service_account
    }

    /// The form Istio's AuthorizationPolicy `principals` use: `td/ns/<ns>/sa/<sa>`.
    pub fn principal(&self) -> String {
        format!(
            "{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}", self.principal())
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for SpiffeId {
    type Error = SpiffeIdError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

/// Checks a trust domain name against the SPIFFE spec (`a-z 0-9 . - _`, 1..=255 bytes).
pub fn validate_trust_domain(trust_domain: &str) -> Result<(), SpiffeIdError> {
    if trust_domain.is_empty() {
        return Err(SpiffeIdError::EmptyTrustDomain);
    }
    if trust_domain.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(SpiffeIdError::TrustDomainTooLong);
    }
    match trust_domain
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '-' | '_'))
    {
        Some(ch) => Err(SpiffeIdError::InvalidTrustDomainChar(ch)),
        None => Ok(()),
    }
}

fn validate_segment(segment: &str) -> Result<(), SpiffeIdError> {
    if segment.is_empty() || segment == "." || segment == ".." {
        return Err(SpiffeIdError::InvalidSegment(segment.to_owned()));
    }
    match segment
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        Some(ch) => Err(SpiffeIdError::InvalidSegmentChar {
            segment: segment.to_owned(),
            ch,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_workload_id() {
        let id = SpiffeId::parse("spiffe://cluster.local/ns/default/sa/sleep").unwrap();
        assert_eq!(id.trust_domain(), "cluster.local");
        assert_eq!(id.namespace(), "default");
        assert_eq!(id.service_account(), "sleep");
        assert_eq!(id.principal(), "cluster.local/ns/default/sa/sleep");
        assert_eq!(id.to_string(), "spiffe://cluster.local/ns/default/sa/sleep");
        assert_eq!(
            "spiffe://td_1-x/ns/Foo.bar/sa/A_b-c"
                .parse::<SpiffeId>()
                .unwrap()
                .namespace(),
            "Foo.bar"
        );
    }

    #[test]
    fn rejects_malformed_ids() {
        use SpiffeIdError::*;
        let cases: &[(&str, SpiffeIdError)] = &[
            ("cluster.local/ns/a/sa/b", MissingScheme),
            ("SPIFFE://cluster.local/ns/a/sa/b", MissingScheme),
            ("spiffe:///ns/a/sa/b", EmptyTrustDomain),
            (
                "spiffe://Cluster.local/ns/a/sa/b",
                InvalidTrustDomainChar('C'),
            ),
            (
                "spiffe://cluster.local:8080/ns/a/sa/b",
                InvalidTrustDomainChar(':'),
            ),
            ("spiffe://user@td/ns/a/sa/b", InvalidTrustDomainChar('@')),
            ("spiffe://td/ns/a/sa/b?x=1", QueryOrFragment),
            ("spiffe://td/ns/a/sa/b#frag", QueryOrFragment),
            ("spiffe://td/ns//sa/b", InvalidSegment(String::new())),
            ("spiffe://td/ns/a/sa/b/", InvalidSegment(String::new())),
            ("spiffe://td/ns/../sa/b", InvalidSegment("..".into())),
            ("spiffe://td/ns/./sa/b", InvalidSegment(".".into())),
            (
                "spiffe://td/ns/a%20b/sa/b",
                InvalidSegmentChar {
                    segment: "a%20b".into(),
                    ch: '%',
                },
            ),
            ("spiffe://td", NotWorkloadPath),
            ("spiffe://td/ns/a", NotWorkloadPath),
            ("spiffe://td/ns/a/sa/b/extra", NotWorkloadPath),
            ("spiffe://td/sa/b/ns/a", NotWorkloadPath),
        ];
        for (input, want) in cases {
            assert_eq!(SpiffeId::parse(input).as_ref(), Err(want), "{input}");
        }
        let long_td = format!("spiffe://{}/ns/a/sa/b", "a".repeat(256));
        assert_eq!(SpiffeId::parse(&long_td), Err(TrustDomainTooLong));
        let long_id = format!("spiffe://td/ns/{}/sa/b", "a".repeat(2048));
        assert_eq!(SpiffeId::parse(&long_id), Err(TooLong));
    }

    #[test]
    fn new_validates_parts() {
        assert!(SpiffeId::new("cluster.local", "default", "sleep").is_ok());
        assert!(SpiffeId::new("cluster.local", "", "sleep").is_err());
        assert!(SpiffeId::new("Cluster", "a", "b").is_err());
        assert!(SpiffeId::new("td", "a/b", "c").is_err());
    }
}
