//! weft's workload identity: SPIFFE IDs, a certificate authority that issues short-lived
//! workload certificates, peer verification against a trust bundle, and rustls configs for
//! mutual TLS between proxies. aws-lc-rs is the only crypto provider.

pub mod ca;
pub mod spiffe;
pub mod tls;
pub mod verify;

pub use ca::{
    CaError, CertificateAuthority, IssuedCertificate, KeyAndCsr, SignedCertificate, new_key_and_csr,
};
pub use spiffe::{SpiffeId, SpiffeIdError, validate_trust_domain};
pub use tls::{
    TlsError, WorkloadIdentity, bootstrap_client_config, certs_from_pem, client_config,
    control_server_config, server_config,
};
pub use verify::{
    ExpectedIdentity, SpiffeClientVerifier, SpiffeServerVerifier, VerifyError, root_store,
    spiffe_id_of, verify_peer,
};
