//! The certificate authority: a root key and certificate on disk that issues short-lived
//! workload certificates carrying exactly one SPIFFE URI SAN.
//!
//! On-disk layout (the issue's contract): the CA directory holds `root-cert.pem`,
//! `root-key.pem` (mode 0600) and `ca.json` (`{"trustDomain": "..."}`); an issued identity is
//! written as Istio names it: `cert-chain.pem`, `key.pem` (mode 0600) and `root-cert.pem`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;

use crate::spiffe::{SpiffeId, SpiffeIdError, validate_trust_domain};

/// File names in a CA directory.
pub const ROOT_CERT_FILE: &str = "root-cert.pem";
pub const ROOT_KEY_FILE: &str = "root-key.pem";
pub const CA_META_FILE: &str = "ca.json";
/// File names of an issued identity (Istio's).
pub const CERT_CHAIN_FILE: &str = "cert-chain.pem";
pub const KEY_FILE: &str = "key.pem";
pub const TRUST_BUNDLE_FILE: &str = "root-cert.pem";

/// How long a root made by [`CertificateAuthority::init`] is valid.
const ROOT_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Leaf certificates start this much in the past, to tolerate clock skew between machines.
const BACKDATE: Duration = Duration::from_secs(60);

/// Why a CA could not be created, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: a CA already exists there; refusing to overwrite it", .0.display())]
    AlreadyExists(PathBuf),
    #[error("{}: not a weft CA metadata file (expected {{\"trustDomain\": \"...\"}})", .0.display())]
    BadMetadata(PathBuf),
    #[error("invalid trust domain: {0}")]
    TrustDomain(#[from] SpiffeIdError),
    #[error("CA certificate is not a PEM X.509 certificate")]
    BadCertificate,
    #[error("CA certificate is not a CA (basicConstraints CA:true is required)")]
    NotACa,
    #[error("CA private key does not match the CA certificate")]
    KeyMismatch,
    #[error("CA certificate has expired")]
    CaExpired,
    #[error("{id} is outside the CA's trust domain {ca_trust_domain:?}")]
    TrustDomainMismatch { id: String, ca_trust_domain: String },
    #[error("validity must end after it starts")]
    EmptyValidity,
    #[error("the certificate would outlive the CA certificate (valid until {ca_not_after})")]
    OutlivesCa { ca_not_after: OffsetDateTime },
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("invalid certificate signing request: {0}")]
    InvalidCsr(String),
}

/// A certificate signed from a CSR: the caller already holds the key.
#[derive(Debug, Clone)]
pub struct SignedCertificate {
    pub cert_chain_pem: String,
    pub trust_bundle_pem: String,
    pub not_after: SystemTime,
}

/// A fresh P-256 key and a CSR for it (empty subject: the CA decides the identity).
#[derive(Clone)]
pub struct KeyAndCsr {
    pub key_pem: String,
    pub csr_pem: String,
}

impl std::fmt::Debug for KeyAndCsr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyAndCsr")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Makes a key pair locally and a CSR to send to the control plane's CA.
pub fn new_key_and_csr() -> Result<KeyAndCsr, CaError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    let csr = params.serialize_request(&key)?;
    Ok(KeyAndCsr {
        key_pem: key.serialize_pem(),
        csr_pem: csr.pem()?,
    })
}

/// A root CA: its certificate, its signing key and its trust domain.
pub struct CertificateAuthority {
    trust_domain: String,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key: KeyPair,
    not_after: OffsetDateTime,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("trust_domain", &self.trust_domain)
            .field("not_after", &self.not_after)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A workload certificate and its key, as PEM, with the trust bundle to verify peers against.
#[derive(Clone)]
pub struct IssuedCertificate {
    pub cert_chain_pem: String,
    pub key_pem: String,
    pub trust_bundle_pem: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl IssuedCertificate {
    /// Writes `cert-chain.pem`, `key.pem` (0600) and `root-cert.pem` into `out_dir`, creating
    /// it if needed, and returns the paths written.
    pub fn write_to(&self, out_dir: &Path) -> Result<Vec<PathBuf>, CaError> {
        create_dir(out_dir)?;
        let files = [
            (CERT_CHAIN_FILE, &self.cert_chain_pem, false),
            (KEY_FILE, &self.key_pem, true),
            (TRUST_BUNDLE_FILE, &self.trust_bundle_pem, false),
        ];
        let mut written = Vec::new();
        for (name, contents, secret) in files {
            let path = out_dir.join(name);
            write_file(&path, contents, secret)?;
            written.push(path);
        }
        Ok(written)
    }
}

impl CertificateAuthority {
    /// Creates a self-signed ECDSA P-256 root valid for 10 years and saves it in `dir`.
    pub fn init(dir: &Path, trust_domain: &str) -> Result<Self, CaError> {
        validate_trust_domain(trust_domain)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "weft");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("weft root CA {trust_domain}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - BACKDATE;
        params.not_after = now + ROOT_VALIDITY;
        let cert = params.self_signed(&key)?;
        let ca = Self::from_parts(cert.pem(), key, trust_domain)?;
        ca.save(dir)?;
        Ok(ca)
    }

    /// Plugs in an existing CA (`--from-cert/--from-key`): checks the certificate is a CA and
    /// the key belongs to it. Call [`save`](Self::save) to write it into a CA directory.
    pub fn from_pem(cert_pem: &str, key_pem: &str, trust_domain: &str) -> Result<Self, CaError> {
        validate_trust_domain(trust_domain)?;
        let key = KeyPair::from_pem(key_pem)?;
        Self::from_parts(cert_pem.to_owned(), key, trust_domain)
    }

    /// Loads a CA directory written by [`init`](Self::init) or [`save`](Self::save).
    pub fn load(dir: &Path) -> Result<Self, CaError> {
        let meta_path = dir.join(CA_META_FILE);
        let meta = read_file(&meta_path)?;
        let trust_domain = parse_meta(&meta).ok_or(CaError::BadMetadata(meta_path))?;
        let cert_pem = read_file(&dir.join(ROOT_CERT_FILE))?;
        let key_pem = read_file(&dir.join(ROOT_KEY_FILE))?;
        Self::from_pem(&cert_pem, &key_pem, &trust_domain)
    }

    /// Writes `root-cert.pem`, `root-key.pem` (0600) and `ca.json` into `dir`; refuses to
    /// overwrite an existing CA key.
    pub fn save(&self, dir: &Path) -> Result<Vec<PathBuf>, CaError> {
        create_dir(dir)?;
        let key_path = dir.join(ROOT_KEY_FILE);
        if key_path.exists() {
            return Err(CaError::AlreadyExists(dir.to_path_buf()));
        }
        let meta = format!("{{\"trustDomain\": \"{}\"}}\n", self.trust_domain);
        let files = [
            (dir.join(ROOT_CERT_FILE), self.cert_pem.clone(), false),
            (key_path, self.key.serialize_pem(), true),
            (dir.join(CA_META_FILE), meta, false),
        ];
        let mut written = Vec::new();
        for (path, contents, secret) in files {
            write_file(&path, &contents, secret)?;
            written.push(path);
        }
        Ok(written)
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The root certificate, which is also the trust bundle peers verify against.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Issues a certificate for `id` valid from now (backdated a minute for clock skew) for `ttl`.
    pub fn issue(&self, id: &SpiffeId, ttl: Duration) -> Result<IssuedCertificate, CaError> {
        let now = SystemTime::now();
        self.issue_with_validity(id, now - BACKDATE, now + ttl)
    }

    /// Issues a certificate with an explicit validity window (tests use it for expired and
    /// not-yet-valid certificates).
    pub(crate) fn issue_with_validity(
        &self,
        id: &SpiffeId,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<IssuedCertificate, CaError> {
        let params = self.leaf_params(id, not_before, not_after)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let issuer = Issuer::from_ca_cert_der(&self.cert_der, &self.key)?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(IssuedCertificate {
            cert_chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            trust_bundle_pem: self.cert_pem.clone(),
            not_before: params.not_before.into(),
            not_after: params.not_after.into(),
        })
    }

    /// Signs a PKCS#10 CSR (PEM) as a workload certificate for `id`, valid from now (backdated
    /// a minute) for `ttl`. The CSR's signature must verify (proof the caller holds the key);
    /// its subject, SANs and extensions are ignored: the certificate names `id` only.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        id: &SpiffeId,
        ttl: Duration,
    ) -> Result<SignedCertificate, CaError> {
        let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| CaError::InvalidCsr(e.to_string()))?;
        let now = SystemTime::now();
        let params = self.leaf_params(id, now - BACKDATE, now + ttl)?;
        let csr = rcgen::CertificateSigningRequestParams {
            params,
            public_key: csr.public_key,
        };
        let issuer = Issuer::from_ca_cert_der(&self.cert_der, &self.key)?;
        let cert = csr.signed_by(&issuer)?;
        Ok(SignedCertificate {
            cert_chain_pem: cert.pem(),
            trust_bundle_pem: self.cert_pem.clone(),
            not_after: csr.params.not_after.into(),
        })
    }

    /// The parameters of a leaf for `id`: one SPIFFE URI SAN, server and client auth.
    fn leaf_params(
        &self,
        id: &SpiffeId,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<CertificateParams, CaError> {
        if id.trust_domain() != self.trust_domain {
            return Err(CaError::TrustDomainMismatch {
                id: id.to_string(),
                ca_trust_domain: self.trust_domain.clone(),
            });
        }
        let (nb, na) = (
            OffsetDateTime::from(not_before),
            OffsetDateTime::from(not_after),
        );
        if na <= nb {
            return Err(CaError::EmptyValidity);
        }
        if na > self.not_after {
            return Err(CaError::OutlivesCa {
                ca_not_after: self.not_after,
            });
        }
        let uri = rcgen::string::Ia5String::try_from(id.to_string())?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = nb;
        params.not_after = na;
        Ok(params)
    }

    /// Signs arbitrary leaf parameters with this CA (tests build malformed certificates).
    #[cfg(test)]
    pub(crate) fn sign_for_tests(&self, params: &CertificateParams) -> IssuedCertificate {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let issuer = Issuer::from_ca_cert_der(&self.cert_der, &self.key).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        IssuedCertificate {
            cert_chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            trust_bundle_pem: self.cert_pem.clone(),
            not_before: params.not_before.into(),
            not_after: params.not_after.into(),
        }
    }

    fn from_parts(cert_pem: String, key: KeyPair, trust_domain: &str) -> Result<Self, CaError> {
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|_| CaError::BadCertificate)?;
        let (_, x509) =
            x509_parser::parse_x509_certificate(&cert_der).map_err(|_| CaError::BadCertificate)?;
        if !x509.is_ca() {
            return Err(CaError::NotACa);
        }
        if x509.tbs_certificate.subject_pki.raw
            != rcgen::PublicKeyData::subject_public_key_info(&key)
        {
            return Err(CaError::KeyMismatch);
        }
        let not_after = x509.validity().not_after.to_datetime();
        if not_after <= OffsetDateTime::now_utc() {
            return Err(CaError::CaExpired);
        }
        Ok(Self {
            trust_domain: trust_domain.to_owned(),
            cert_pem,
            cert_der: cert_der.into_owned(),
            key,
            not_after,
        })
    }
}

/// Reads `{"trustDomain": "..."}` without a JSON dependency: the value is a validated trust
/// domain, so it never needs escaping.
fn parse_meta(meta: &str) -> Option<String> {
    let rest = meta.split_once("\"trustDomain\"")?.1.trim_start();
    let rest = rest.strip_prefix(':')?.trim_start().strip_prefix('"')?;
    let (value, _) = rest.split_once('"')?;
    validate_trust_domain(value).ok()?;
    Some(value.to_owned())
}

fn create_dir(dir: &Path) -> Result<(), CaError> {
    fs::create_dir_all(dir).map_err(|source| CaError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn read_file(path: &Path) -> Result<String, CaError> {
    fs::read_to_string(path).map_err(|source| CaError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a file; secrets are created with mode 0600 (and an existing file is narrowed to it).
fn write_file(path: &Path, contents: &str, secret: bool) -> Result<(), CaError> {
    let io_err = |source| CaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        if path.exists() {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err)?;
        }
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(io_err)?;
    file.write_all(contents.as_bytes()).map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_a_csr_with_the_id_it_is_told_not_the_one_asked_for() {
        let ca =
            CertificateAuthority::from_pem(&ROOT_FOR_TESTS.0, &ROOT_FOR_TESTS.1, "cluster.local")
                .unwrap();
        // A CSR asking for another identity: the SAN is ignored.
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![SanType::URI(
            rcgen::string::Ia5String::try_from("spiffe://cluster.local/ns/kube-system/sa/admin")
                .unwrap(),
        )];
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        let id = SpiffeId::parse("spiffe://cluster.local/ns/default/sa/reviews").unwrap();
        let signed = ca.sign_csr(&csr, &id, Duration::from_secs(3600)).unwrap();
        let chain = crate::certs_from_pem(&signed.cert_chain_pem).unwrap();
        let roots = crate::certs_from_pem(&signed.trust_bundle_pem).unwrap();
        let got = crate::verify_peer(&chain, &roots, rustls_pki_types::UnixTime::now()).unwrap();
        assert_eq!(got, id);
        // The certificate is for the CSR's key.
        let identity = crate::WorkloadIdentity::from_pem(
            &signed.cert_chain_pem,
            &key.serialize_pem(),
            &signed.trust_bundle_pem,
        )
        .unwrap();
        crate::server_config(&identity, crate::verify::ExpectedIdentity::Any).unwrap();

        // A fresh key and CSR from the helper sign too; garbage and tampered CSRs do not.
        let fresh = new_key_and_csr().unwrap();
        ca.sign_csr(&fresh.csr_pem, &id, Duration::from_secs(60))
            .unwrap();
        assert!(matches!(
            ca.sign_csr("not a csr", &id, Duration::from_secs(60)),
            Err(CaError::InvalidCsr(_))
        ));
        let der =
            rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(csr.as_bytes()).unwrap();
        let mut bytes = der.as_ref().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let tampered = rustls_pki_types::CertificateSigningRequestDer::from(bytes);
        let pem = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            base64_for_tests(tampered.as_ref())
        );
        assert!(ca.sign_csr(&pem, &id, Duration::from_secs(60)).is_err());
        // Outside the trust domain: refused.
        let other = SpiffeId::parse("spiffe://example.org/ns/default/sa/reviews").unwrap();
        assert!(matches!(
            ca.sign_csr(&fresh.csr_pem, &other, Duration::from_secs(60)),
            Err(CaError::TrustDomainMismatch { .. })
        ));
    }

    static ROOT_FOR_TESTS: std::sync::LazyLock<(String, String)> = std::sync::LazyLock::new(|| {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::init(dir.path(), "cluster.local").unwrap();
        let key = std::fs::read_to_string(dir.path().join(ROOT_KEY_FILE)).unwrap();
        (ca.cert_pem().to_string(), key)
    });

    fn base64_for_tests(bytes: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn init_load_and_issue() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::init(dir.path(), "cluster.local").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(ROOT_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = CertificateAuthority::load(dir.path()).unwrap();
        assert_eq!(loaded.trust_domain(), "cluster.local");
        assert_eq!(loaded.cert_pem(), ca.cert_pem());
        assert!(matches!(
            CertificateAuthority::init(dir.path(), "cluster.local"),
            Err(CaError::AlreadyExists(_))
        ));

        let (_, root) = x509_parser::parse_x509_certificate(ca.cert_der()).unwrap();
        assert!(root.is_ca());
        let years = (root.validity().not_after.to_datetime() - OffsetDateTime::now_utc())
            .whole_days()
            / 365;
        assert_eq!(years, 9, "root valid for ~10 years");

        let id = SpiffeId::parse("spiffe://cluster.local/ns/default/sa/sleep").unwrap();
        let issued = loaded.issue(&id, Duration::from_secs(3600)).unwrap();
        let out = dir.path().join("out");
        let written = issued.write_to(&out).unwrap();
        assert_eq!(written.len(), 3);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(out.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let der = CertificateDer::from_pem_slice(issued.cert_chain_pem.as_bytes()).unwrap();
        let (_, leaf) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(!leaf.is_ca());
        let san = leaf.subject_alternative_name().unwrap().unwrap();
        assert_eq!(san.value.general_names.len(), 1);
        assert!(matches!(
            san.value.general_names[0],
            x509_parser::extensions::GeneralName::URI("spiffe://cluster.local/ns/default/sa/sleep")
        ));
        let ku = leaf.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && ku.key_encipherment() && !ku.key_cert_sign());
        let eku = leaf.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
    }

    #[test]
    fn refuses_other_trust_domain_and_long_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::init(dir.path(), "cluster.local").unwrap();
        let other = SpiffeId::parse("spiffe://other.domain/ns/default/sa/sleep").unwrap();
        assert!(matches!(
            ca.issue(&other, Duration::from_secs(60)),
            Err(CaError::TrustDomainMismatch { .. })
        ));
        let id = SpiffeId::parse("spiffe://cluster.local/ns/default/sa/sleep").unwrap();
        assert!(matches!(
            ca.issue(&id, Duration::from_secs(20 * 365 * 24 * 3600)),
            Err(CaError::OutlivesCa { .. })
        ));
    }

    #[test]
    fn from_pem_checks_ca_and_key() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ca_a = CertificateAuthority::init(a.path(), "cluster.local").unwrap();
        let ca_b = CertificateAuthority::init(b.path(), "cluster.local").unwrap();
        let key_a = read_file(&a.path().join(ROOT_KEY_FILE)).unwrap();
        let key_b = read_file(&b.path().join(ROOT_KEY_FILE)).unwrap();
        assert!(CertificateAuthority::from_pem(ca_a.cert_pem(), &key_a, "cluster.local").is_ok());
        assert!(matches!(
            CertificateAuthority::from_pem(ca_b.cert_pem(), &key_a, "cluster.local"),
            Err(CaError::KeyMismatch)
        ));
        let id = SpiffeId::parse("spiffe://cluster.local/ns/a/sa/b").unwrap();
        let leaf = ca_b.issue(&id, Duration::from_secs(60)).unwrap();
        assert!(matches!(
            CertificateAuthority::from_pem(&leaf.cert_chain_pem, &leaf.key_pem, "cluster.local"),
            Err(CaError::NotACa)
        ));
        let _ = key_b;
    }

    #[test]
    fn parses_metadata() {
        assert_eq!(
            parse_meta("{\"trustDomain\": \"td.x\"}\n").as_deref(),
            Some("td.x")
        );
        assert_eq!(parse_meta("{\"trustDomain\":\"BAD\"}"), None);
        assert_eq!(parse_meta("{}"), None);
    }
}
