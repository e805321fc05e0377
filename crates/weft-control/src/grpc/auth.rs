//! Who is calling: the SPIFFE ID of the client certificate on the TLS connection (verified
//! against the mesh root by the handshake), or a bootstrap token. Never the CSR.

use tonic::Status;
use weft_identity::SpiffeId;

use crate::state::ControlState;

/// The caller's certificate identity, attached to every request of a connection.
#[derive(Debug, Clone, Default)]
pub struct PeerIdentity(pub Option<SpiffeId>);

impl PeerIdentity {
    /// The identity of the connection's client certificate, if it presented one.
    pub fn of(conn: &rustls::ServerConnection) -> PeerIdentity {
        let id = conn
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|leaf| weft_identity::spiffe_id_of(leaf).ok());
        PeerIdentity(id)
    }

    pub fn from_request<T>(request: &tonic::Request<T>) -> PeerIdentity {
        request
            .extensions()
            .get::<PeerIdentity>()
            .cloned()
            .unwrap_or_default()
    }
}

/// Checks that the caller may act as `namespace`/`service_account`: its certificate's SPIFFE
/// ID when it has one, otherwise its bootstrap token.
pub fn authorize_workload(
    state: &ControlState,
    peer: &PeerIdentity,
    token: &str,
    namespace: &str,
    service_account: &str,
) -> Result<(), Status> {
    if let Some(id) = &peer.0 {
        if id.trust_domain() == state.settings.trust_domain
            && id.namespace() == namespace
            && id.service_account() == service_account
        {
            return Ok(());
        }
        return Err(Status::permission_denied(format!(
            "certificate identity {id} may not act as namespace {namespace:?}, service account {service_account:?}"
        )));
    }
    let grant = state.check_token(token).ok_or_else(|| {
        Status::unauthenticated("a valid bootstrap token or a client certificate is required")
    })?;
    if grant.namespace == namespace && grant.service_account == service_account {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "the bootstrap token is for namespace {:?}, service account {:?}",
            grant.namespace, grant.service_account
        )))
    }
}

/// The identity a certificate is signed for: the token's, else the connection certificate's.
pub fn signing_identity(
    state: &ControlState,
    peer: &PeerIdentity,
    token: &str,
) -> Result<SpiffeId, Status> {
    if !token.is_empty() {
        let grant = state
            .check_token(token)
            .ok_or_else(|| Status::unauthenticated("invalid bootstrap token"))?;
        return SpiffeId::new(
            &state.settings.trust_domain,
            &grant.namespace,
            &grant.service_account,
        )
        .map_err(|e| Status::invalid_argument(format!("token identity: {e}")));
    }
    match &peer.0 {
        Some(id) if id.trust_domain() == state.settings.trust_domain => Ok(id.clone()),
        Some(id) => Err(Status::permission_denied(format!(
            "{id} is outside the trust domain {}",
            state.settings.trust_domain
        ))),
        None => Err(Status::unauthenticated(
            "a bootstrap token or a client certificate is required",
        )),
    }
}
