//! The workload certificate from the control plane's CA. The key pair is made here and never
//! leaves the process; the CA signs a CSR. The first certificate is asked for with the
//! bootstrap token over TLS that verifies the control plane only; renewals go over mTLS with
//! the current certificate (falling back to the token when it has expired or the control plane
//! refuses it). A certificate is checked before it is installed: its chain must verify against
//! the trust bundle now, in the mesh's trust domain. It is renewed at half the lifetime it had
//! left when it arrived; a failed renewal is retried with backoff while the current certificate
//! keeps serving.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::time::Instant;
use weft_identity::{KeyAndCsr, SpiffeId, WorkloadIdentity, certs_from_pem, verify_peer};
use weft_proto::certificates_client::CertificatesClient;
use weft_proto::{SignRequest, SignResponse};

use super::{Backoff, Failures, Inner, PlaneError, describe};
use crate::tls::IdentityStore;
use crate::tls::identity::Identity;

/// How long a Sign call may take.
const SIGN_TIMEOUT: Duration = Duration::from_secs(10);
/// Renewals are never scheduled sooner than this after a certificate arrives.
const MIN_RENEW_DELAY: Duration = Duration::from_secs(1);

/// Keeps a valid certificate installed, forever.
pub(super) async fn maintain(inner: Arc<Inner>) {
    let mut backoff = Backoff::default();
    let mut failures = Failures::default();
    let mut next: Option<Instant> = None;
    loop {
        if let Some(at) = next {
            tokio::time::sleep_until(at).await;
        }
        match obtain(&inner).await {
            Ok(renew_in) => {
                backoff.reset();
                failures.succeeded();
                next = Some(Instant::now() + renew_in);
            }
            Err(err) => {
                let retry_in = backoff.next_delay();
                failures.failed(&inner.status, "certificate", &err, retry_in);
                next = Some(Instant::now() + retry_in);
            }
        }
    }
}

/// When to renew a certificate that arrived at `now`: half its remaining lifetime later.
pub(super) fn renew_delay(now: SystemTime, not_after: SystemTime) -> Duration {
    let remaining = not_after.duration_since(now).unwrap_or_default();
    (remaining / 2).max(MIN_RENEW_DELAY)
}

/// Gets a certificate signed and installs it; returns when to renew it.
async fn obtain(inner: &Inner) -> Result<Duration, PlaneError> {
    let key = weft_identity::new_key_and_csr()?;
    let store = inner.identity.borrow().clone();
    let valid = store
        .as_ref()
        .map(|store| store.current())
        .filter(|identity| !identity.expired_at(SystemTime::now()));
    let signed = match valid {
        Some(identity) => match sign(inner, &key, Some(&identity)).await {
            Err(err) if err.is_refusal() => {
                tracing::warn!(error = %describe(&err), "certificate renewal refused; asking with the bootstrap token");
                sign(inner, &key, None).await?
            }
            other => other?,
        },
        None => sign(inner, &key, None).await?,
    };
    install(inner, store, &signed, &key.key_pem)
}

/// The TLS configuration for the control plane: presents `identity` when given, and verifies
/// the server against the `--ca-bundle` roots and the workload trust bundle.
pub(super) fn control_tls(
    inner: &Inner,
    identity: Option<&Identity>,
) -> Result<ClientConfig, PlaneError> {
    let Some(identity) = identity else {
        return Ok(weft_identity::bootstrap_client_config(
            &inner.roots,
            inner.expected.clone(),
        )?);
    };
    let workload = identity.workload();
    let mut roots: Vec<CertificateDer<'static>> = inner.roots.clone();
    for root in &workload.roots {
        if !roots.contains(root) {
            roots.push(root.clone());
        }
    }
    let presented = WorkloadIdentity {
        cert_chain: workload.cert_chain.clone(),
        key: workload.key.clone_key(),
        roots,
    };
    Ok(weft_identity::client_config(
        &presented,
        inner.expected.clone(),
    )?)
}

/// One Sign call: a renewal over mTLS with `current`, or a bootstrap with the token.
async fn sign(
    inner: &Inner,
    key: &KeyAndCsr,
    current: Option<&Identity>,
) -> Result<SignResponse, PlaneError> {
    let tls = control_tls(inner, current)?;
    let token = match current {
        Some(_) => String::new(),
        None => inner.token.expose().to_string(),
    };
    let connected = inner.dialer.connect(tls).await?;
    let mut client = CertificatesClient::new(connected.channel);
    let request = SignRequest {
        csr_pem: key.csr_pem.clone(),
        token,
        ttl_seconds: 0,
    };
    let response = tokio::time::timeout(SIGN_TIMEOUT, client.sign(request))
        .await
        .map_err(|_| PlaneError::Timeout(SIGN_TIMEOUT))??;
    Ok(response.into_inner())
}

/// The trust bundle that came with a certificate, or `--ca-bundle` when none did.
fn bundle_of<'a>(inner: &'a Inner, signed: &'a SignResponse) -> &'a str {
    if signed.root_cert_pem.trim().is_empty() {
        &inner.bundle_pem
    } else {
        &signed.root_cert_pem
    }
}

/// Checks an issued chain: it verifies against `bundle_pem` now and names a workload of
/// `trust_domain`. Returns its SPIFFE ID.
pub(super) fn check_issued(
    chain_pem: &str,
    bundle_pem: &str,
    trust_domain: &str,
) -> Result<SpiffeId, PlaneError> {
    let chain = certs_from_pem(chain_pem)?;
    let roots = certs_from_pem(bundle_pem)?;
    let id = verify_peer(&chain, &roots, UnixTime::now())?;
    if id.trust_domain() != trust_domain {
        return Err(PlaneError::ForeignTrustDomain {
            id: id.to_string(),
            trust_domain: trust_domain.to_string(),
        });
    }
    Ok(id)
}

/// Installs a signed certificate: the first one creates the identity store (and lets the
/// subscription start), later ones replace it. Returns when to renew.
fn install(
    inner: &Inner,
    store: Option<Arc<IdentityStore>>,
    signed: &SignResponse,
    key_pem: &str,
) -> Result<Duration, PlaneError> {
    let bundle = bundle_of(inner, signed);
    let id = check_issued(&signed.cert_chain_pem, bundle, &inner.trust_domain)?;
    let first = store.is_none();
    let store = match store {
        Some(store) => {
            store.replace_pem(&signed.cert_chain_pem, key_pem, bundle)?;
            store
        }
        None => IdentityStore::from_pem(&signed.cert_chain_pem, key_pem, bundle)?,
    };
    let identity = store.current();
    let now = SystemTime::now();
    let renew_in = renew_delay(now, identity.not_after);
    inner.status.certificate(&identity, now + renew_in);
    tracing::info!(
        id = %identity.id,
        generation = identity.generation,
        ?renew_in,
        "workload certificate installed"
    );
    if first {
        let registered = &inner.registration;
        if id.namespace() != registered.namespace
            || id.service_account() != registered.service_account
        {
            tracing::warn!(
                %id,
                namespace = %registered.namespace,
                service_account = %registered.service_account,
                "the certificate names another namespace or service account than this proxy registers with"
            );
        }
        inner.identity.send_replace(Some(store));
    }
    Ok(renew_in)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_identity::CertificateAuthority;

    fn ca(trust_domain: &str) -> CertificateAuthority {
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::init(&dir.path().join("ca"), trust_domain).unwrap()
    }

    #[test]
    fn renews_at_half_the_remaining_lifetime() {
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        assert_eq!(renew_delay(now, now + hour), hour / 2);
        assert_eq!(
            renew_delay(now, now + Duration::from_secs(4)),
            Duration::from_secs(2)
        );
        // Never a tight loop, even for a certificate about to expire (or expired).
        assert_eq!(
            renew_delay(now, now + Duration::from_millis(10)),
            MIN_RENEW_DELAY
        );
        assert_eq!(renew_delay(now, now - hour), MIN_RENEW_DELAY);
    }

    #[test]
    fn issued_certificates_must_chain_to_the_bundle_in_the_trust_domain() {
        let mesh = ca("cluster.local");
        let id = SpiffeId::new("cluster.local", "default", "reviews").unwrap();
        let issued = mesh.issue(&id, Duration::from_secs(60)).unwrap();
        let checked =
            check_issued(&issued.cert_chain_pem, mesh.cert_pem(), "cluster.local").unwrap();
        assert_eq!(checked, id);

        let other = ca("cluster.local");
        let err =
            check_issued(&issued.cert_chain_pem, other.cert_pem(), "cluster.local").unwrap_err();
        assert!(matches!(err, PlaneError::Untrusted(_)), "{err}");

        let foreign = ca("other.local");
        let foreign_id = SpiffeId::new("other.local", "default", "reviews").unwrap();
        let issued = foreign.issue(&foreign_id, Duration::from_secs(60)).unwrap();
        let err =
            check_issued(&issued.cert_chain_pem, foreign.cert_pem(), "cluster.local").unwrap_err();
        assert!(
            matches!(err, PlaneError::ForeignTrustDomain { .. }),
            "{err}"
        );

        let err = check_issued("", mesh.cert_pem(), "cluster.local").unwrap_err();
        assert!(matches!(err, PlaneError::Tls(_)), "{err}");
    }
}
