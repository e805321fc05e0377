use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, SanType};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::ca::{CertificateAuthority, IssuedCertificate};
use crate::tls::{WorkloadIdentity, certs_from_pem, client_config, server_config};

const HOUR: Duration = Duration::from_secs(3600);

fn ca(dir: &tempfile::TempDir) -> CertificateAuthority {
    CertificateAuthority::init(dir.path(), "cluster.local").unwrap()
}

fn id(sa: &str) -> SpiffeId {
    SpiffeId::parse(&format!("spiffe://cluster.local/ns/default/sa/{sa}")).unwrap()
}

fn check(
    issued: &IssuedCertificate,
    roots_of: &CertificateAuthority,
) -> Result<SpiffeId, VerifyError> {
    let chain = certs_from_pem(&issued.cert_chain_pem).unwrap();
    let roots = certs_from_pem(roots_of.cert_pem()).unwrap();
    verify_peer(&chain, &roots, UnixTime::now())
}

fn leaf_params(sans: Vec<SanType>) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_before = time::OffsetDateTime::now_utc() - HOUR;
    params.not_after = time::OffsetDateTime::now_utc() + HOUR;
    params
}

fn uri(s: &str) -> SanType {
    SanType::URI(s.try_into().unwrap())
}

#[test]
fn issue_then_verify_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(&dir);
    let issued = ca.issue(&id("sleep"), HOUR).unwrap();
    assert_eq!(check(&issued, &ca).unwrap(), id("sleep"));
}

#[test]
fn refuses_expired_and_not_yet_valid() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(&dir);
    let now = SystemTime::now();
    let expired = ca
        .issue_with_validity(&id("a"), now - 2 * HOUR, now - HOUR)
        .unwrap();
    assert!(matches!(check(&expired, &ca), Err(VerifyError::Expired)));
    let future = ca
        .issue_with_validity(&id("a"), now + HOUR, now + 2 * HOUR)
        .unwrap();
    assert!(matches!(check(&future, &ca), Err(VerifyError::NotYetValid)));
}

#[test]
fn refuses_certificate_from_another_ca() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ca_a, ca_b) = (ca(&a), ca(&b));
    let issued = ca_b.issue(&id("sleep"), HOUR).unwrap();
    assert!(matches!(
        check(&issued, &ca_a),
        Err(VerifyError::UntrustedIssuer)
    ));
}

#[test]
fn refuses_missing_or_ambiguous_spiffe_san() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(&dir);
    let dns_only = ca.sign_for_tests(&leaf_params(vec![SanType::DnsName(
        "sleep.default".try_into().unwrap(),
    )]));
    assert!(matches!(
        check(&dns_only, &ca),
        Err(VerifyError::NoSpiffeId)
    ));
    let https = ca.sign_for_tests(&leaf_params(vec![uri("https://example.com/x")]));
    assert!(matches!(check(&https, &ca), Err(VerifyError::NoSpiffeId)));
    let two = ca.sign_for_tests(&leaf_params(vec![
        uri("spiffe://cluster.local/ns/a/sa/b"),
        uri("spiffe://cluster.local/ns/a/sa/c"),
    ]));
    assert!(matches!(
        check(&two, &ca),
        Err(VerifyError::MultipleUriSans(2))
    ));
    let bad = ca.sign_for_tests(&leaf_params(vec![uri("spiffe://cluster.local/ns/a")]));
    assert!(matches!(
        check(&bad, &ca),
        Err(VerifyError::InvalidSpiffeId(_))
    ));
}

#[test]
fn refuses_empty_chain_and_roots() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(&dir);
    let roots = certs_from_pem(ca.cert_pem()).unwrap();
    assert!(matches!(
        verify_peer(&[], &roots, UnixTime::now()),
        Err(VerifyError::NoCertificate)
    ));
    let issued = ca.issue(&id("a"), HOUR).unwrap();
    let chain = certs_from_pem(&issued.cert_chain_pem).unwrap();
    let none: [CertificateDer<'_>; 0] = [];
    assert!(matches!(
        verify_peer(&chain, &none, UnixTime::now()),
        Err(VerifyError::NoTrustAnchors)
    ));
}

#[test]
fn expected_identity_matching() {
    assert!(ExpectedIdentity::Any.check(&id("a")).is_ok());
    assert!(
        ExpectedIdentity::TrustDomain("cluster.local".into())
            .check(&id("a"))
            .is_ok()
    );
    assert!(
        ExpectedIdentity::TrustDomain("other".into())
            .check(&id("a"))
            .is_err()
    );
    assert!(ExpectedIdentity::from(id("a")).check(&id("a")).is_ok());
    assert!(matches!(
        ExpectedIdentity::from(id("a")).check(&id("b")),
        Err(VerifyError::UnexpectedIdentity { .. })
    ));
}

/// Runs a TLS handshake over an in-memory pipe; returns the client's SPIFFE ID as the server
/// saw it, or which side failed.
async fn handshake(
    server: &WorkloadIdentity,
    client: &WorkloadIdentity,
    expected_client: ExpectedIdentity,
    expected_server: ExpectedIdentity,
) -> Result<SpiffeId, String> {
    let acceptor =
        tokio_rustls::TlsAcceptor::from(Arc::new(server_config(server, expected_client).unwrap()));
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(client_config(client, expected_server).unwrap()));
    let (c, s) = tokio::io::duplex(64 * 1024);
    let name = ServerName::try_from("weft.mesh").unwrap();
    let server_side = async move {
        let mut tls = acceptor
            .accept(s)
            .await
            .map_err(|e| format!("server: {e}"))?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf)
            .await
            .map_err(|e| format!("server read: {e}"))?;
        tls.write_all(b"pong")
            .await
            .map_err(|e| format!("server write: {e}"))?;
        tls.flush()
            .await
            .map_err(|e| format!("server flush: {e}"))?;
        let (_, conn) = tls.get_ref();
        assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
        let leaf = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or("no client cert")?;
        spiffe_id_of(leaf).map_err(|e| e.to_string())
    };
    let client_side = async move {
        let mut tls = connector
            .connect(name, c)
            .await
            .map_err(|e| format!("client: {e}"))?;
        assert_eq!(
            tls.get_ref().1.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        tls.write_all(b"ping")
            .await
            .map_err(|e| format!("client write: {e}"))?;
        tls.flush()
            .await
            .map_err(|e| format!("client flush: {e}"))?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf)
            .await
            .map_err(|e| format!("client read: {e}"))?;
        Ok::<_, String>(())
    };
    let (server_result, client_result) = tokio::join!(server_side, client_side);
    client_result?;
    server_result
}

fn identity(ca: &CertificateAuthority, sa: &str) -> WorkloadIdentity {
    WorkloadIdentity::try_from(&ca.issue(&id(sa), HOUR).unwrap()).unwrap()
}

#[tokio::test]
async fn mtls_handshake_exposes_client_identity() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(&dir);
    let (server, client) = (identity(&ca, "httpbin"), identity(&ca, "sleep"));
    let seen = handshake(
        &server,
        &client,
        ExpectedIdentity::Any,
        id("httpbin").into(),
    )
    .await;
    assert_eq!(seen.unwrap(), id("sleep"));
    let in_domain = ExpectedIdentity::TrustDomain("cluster.local".into());
    assert_eq!(
        handshake(&server, &client, in_domain.clone(), in_domain)
            .await
            .unwrap(),
        id("sleep")
    );
}

#[tokio::test]
async fn mtls_refuses_wrong_identity_and_wrong_ca() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ca_a, ca_b) = (ca(&a), ca(&b));
    let server = identity(&ca_a, "httpbin");
    let client = identity(&ca_a, "sleep");

    // The client expects another server identity.
    let err = handshake(&server, &client, ExpectedIdentity::Any, id("other").into())
        .await
        .unwrap_err();
    assert!(err.starts_with("client:"), "{err}");
    // The server only admits another client identity.
    let err = handshake(&server, &client, id("other").into(), ExpectedIdentity::Any)
        .await
        .unwrap_err();
    assert!(
        err.contains("server") || err.contains("client read"),
        "{err}"
    );
    // A client whose certificate comes from another CA (but trusts the server's CA).
    let mut stranger = identity(&ca_b, "sleep");
    stranger.roots = certs_from_pem(ca_a.cert_pem()).unwrap();
    let err = handshake(
        &server,
        &stranger,
        ExpectedIdentity::Any,
        ExpectedIdentity::Any,
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("server") || err.contains("client read"),
        "{err}"
    );
    // A server whose certificate comes from another CA.
    let mut rogue = identity(&ca_b, "httpbin");
    rogue.roots = certs_from_pem(ca_a.cert_pem()).unwrap();
    let err = handshake(
        &rogue,
        &client,
        ExpectedIdentity::Any,
        ExpectedIdentity::Any,
    )
    .await
    .unwrap_err();
    assert!(err.starts_with("client:"), "{err}");
}
