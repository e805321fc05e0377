//! `Certificates.Sign`: signs a CSR for the caller's identity (from its bootstrap token or its
//! current certificate) with the mesh CA, and records the expiry for `proxy-status`.

use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};
use weft_identity::CaError;
use weft_proto::certificates_server::Certificates;
use weft_proto::{SignRequest, SignResponse};

use super::auth::{PeerIdentity, signing_identity};
use crate::state::ControlState;

pub struct CertificatesService {
    state: Arc<ControlState>,
}

impl CertificatesService {
    pub fn new(state: Arc<ControlState>) -> CertificatesService {
        CertificatesService { state }
    }
}

#[tonic::async_trait]
impl Certificates for CertificatesService {
    async fn sign(&self, request: Request<SignRequest>) -> Result<Response<SignResponse>, Status> {
        let peer = PeerIdentity::from_request(&request);
        let req = request.into_inner();
        let id = signing_identity(&self.state, &peer, &req.token)?;
        let ttl = match req.ttl_seconds {
            0 => self.state.settings.cert_ttl,
            s => Duration::from_secs(s),
        };
        let signed = self
            .state
            .ca
            .sign_csr(&req.csr_pem, &id, ttl)
            .map_err(|err| match err {
                CaError::InvalidCsr(_) | CaError::OutlivesCa { .. } | CaError::EmptyValidity => {
                    Status::invalid_argument(err.to_string())
                }
                other => {
                    tracing::error!(error = %other, "signing failed");
                    Status::internal("signing failed")
                }
            })?;
        self.state.record_certificate(&id, signed.not_after);
        tracing::info!(%id, ttl_s = ttl.as_secs(), "certificate signed");
        Ok(Response::new(SignResponse {
            cert_chain_pem: signed.cert_chain_pem,
            root_cert_pem: signed.trust_bundle_pem,
        }))
    }
}
