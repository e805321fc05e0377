//! How each endpoint is dialed: plaintext, Istio mutual TLS, or TLS origination. Decided per
//! endpoint when a view is built, with Istio's rules:
//!
//! - A DestinationRule `tls` setting for the cluster wins: `DISABLE` is plaintext,
//!   `ISTIO_MUTUAL` mesh mTLS, `SIMPLE`/`MUTUAL` origination with the rule's files.
//! - Without one, auto mTLS: endpoints labelled `security.istio.io/tlsMode: istio` (they have a
//!   sidecar) get mesh mTLS, others plaintext. A proxy started without `--identity` has no
//!   certificate: auto mTLS then stays plaintext, while an explicit `ISTIO_MUTUAL` fails the
//!   connection (`UF`), never silently downgrading.
//!
//! The expected server identity for mesh mTLS: the rule's `subjectAltNames`, else the
//! endpoint's service account, else the ServiceEntry's `subjectAltNames`, else any identity in
//! the trust domain.
//!
//! TLS connections get their own HTTP client per endpoint ([`TlsClients`]), kept with the
//! cluster's compiled state, so connections are reused across requests and config versions
//! with the same endpoints.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use weft_api::mesh::{Cluster, Endpoint, TLS_MODE_LABEL, TlsFiles, UpstreamTls};
use weft_identity::SpiffeId;

use super::pool::{self, TlsHttpClient};
use crate::tls::origin::origin_target;
use crate::tls::{ALPN_H2, ALPN_HTTP11, ALPN_TCP, IdentityStore, TlsConnector, TlsTarget};

/// TLS clients kept per cluster before the cache starts afresh.
const MAX_CLIENTS: usize = 1024;

/// How one endpoint is dialed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TargetTls {
    Plain,
    /// Mesh mTLS; `explicit` when a DestinationRule asked for it (auto mTLS otherwise).
    Mesh {
        expected: Vec<SpiffeId>,
        sni: String,
        explicit: bool,
    },
    Origin {
        files: TlsFiles,
        mutual: bool,
    },
}

impl TargetTls {
    /// Whether requests go over mesh mTLS (HTTP/2 with the original protocol in a header).
    pub(super) fn is_mesh(&self) -> bool {
        matches!(self, TargetTls::Mesh { .. })
    }
}

/// The TLS decision for `endpoint` of `cluster`.
pub(super) fn target_tls(cluster: &Cluster, endpoint: &Endpoint) -> TargetTls {
    let sni = || {
        let key = &cluster.key;
        format!(
            "outbound_.{}_.{}_.{}",
            key.port.map(|p| p.to_string()).unwrap_or_default(),
            key.subset.as_deref().unwrap_or(""),
            key.host
        )
    };
    let expected = |overrides: &[String]| -> Vec<SpiffeId> {
        let named: Vec<&String> = if !overrides.is_empty() {
            overrides.iter().collect()
        } else if let Some(id) = &endpoint.identity {
            vec![id]
        } else {
            cluster.subject_alt_names.iter().collect()
        };
        named
            .into_iter()
            .filter_map(|s| match SpiffeId::parse(s) {
                Ok(id) => Some(id),
                Err(err) => {
                    tracing::warn!(cluster = %cluster.key, name = %s, %err, "subject alt name is not a SPIFFE ID; ignored");
                    None
                }
            })
            .collect()
    };
    match &cluster.tls {
        Some(UpstreamTls::Disable) => TargetTls::Plain,
        Some(UpstreamTls::IstioMutual {
            sni: explicit_sni,
            subject_alt_names,
        }) => TargetTls::Mesh {
            expected: expected(subject_alt_names),
            sni: explicit_sni.clone().unwrap_or_else(sni),
            explicit: true,
        },
        Some(UpstreamTls::Simple(files)) => TargetTls::Origin {
            files: files.clone(),
            mutual: false,
        },
        Some(UpstreamTls::Mutual(files)) => TargetTls::Origin {
            files: files.clone(),
            mutual: true,
        },
        None if endpoint
            .labels
            .get(TLS_MODE_LABEL)
            .is_some_and(|m| m == "istio") =>
        {
            TargetTls::Mesh {
                expected: expected(&[]),
                sni: sni(),
                explicit: false,
            }
        }
        None => TargetTls::Plain,
    }
}

/// Why a TLS client could not be made for an endpoint (the try fails with `UF`).
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("ISTIO_MUTUAL requires a workload identity (--identity)")]
    NoIdentity,
    #[error("TLS origination: {0}")]
    Origin(String),
}

/// The TLS clients of one compiled cluster, one per endpoint authority.
#[derive(Default)]
pub(super) struct TlsClients {
    clients: Mutex<HashMap<String, Arc<TlsHttpClient>>>,
    /// TLS targets for raw TCP connections (tunnels), per endpoint authority.
    tcp: Mutex<HashMap<String, Arc<TlsTarget>>>,
}

/// What a try uses to send.
pub(super) enum Sender {
    Plain,
    Tls(Arc<TlsHttpClient>),
}

impl TlsClients {
    /// The sender for a target: plain, or its TLS client (made on first use).
    pub(super) fn sender(
        &self,
        cluster: &Cluster,
        authority: &str,
        tls: &TargetTls,
        identity: Option<&Arc<IdentityStore>>,
        upgrade: bool,
    ) -> Result<Sender, TlsSetupError> {
        let target = match (tls, identity) {
            (TargetTls::Plain, _)
            | (
                TargetTls::Mesh {
                    explicit: false, ..
                },
                None,
            ) => {
                return Ok(Sender::Plain);
            }
            (TargetTls::Mesh { .. }, None) => return Err(TlsSetupError::NoIdentity),
            (TargetTls::Mesh { expected, sni, .. }, Some(identity)) => {
                TargetSpec::Mesh(identity, expected, sni)
            }
            (TargetTls::Origin { files, mutual }, _) => TargetSpec::Origin(files, *mutual),
        };
        // Upgrades need an HTTP/1.1 connection of their own; a client is reused only while
        // its endpoint is verified the same way (expected identities, SNI, files).
        let key = format!("{authority}|{upgrade}|{tls:?}");
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(&key) {
            return Ok(Sender::Tls(client.clone()));
        }
        let alpn = if upgrade { ALPN_HTTP11 } else { ALPN_H2 };
        let target = match target {
            TargetSpec::Mesh(identity, expected, sni) => {
                TlsTarget::mesh(identity.clone(), expected.clone(), sni, alpn)
            }
            TargetSpec::Origin(files, mutual) => {
                origin_target(files, mutual, &cluster.key.host, cluster.pool.http2)
                    .map_err(|e| TlsSetupError::Origin(e.to_string()))?
            }
        };
        let connector = TlsConnector::new(pool::connector(&cluster.pool), Arc::new(target));
        let client = Arc::new(pool::tls_client(&cluster.pool, connector));
        // Keys of configurations no longer in use pile up across reloads: start afresh now and
        // then (connections in use keep their client).
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(Sender::Tls(client))
    }
}

impl TlsClients {
    /// The TLS target for a raw TCP connection to a target: `None` for plaintext. Mesh mTLS
    /// offers ALPN `weft-tcp` so the server side relays bytes instead of parsing HTTP.
    pub(super) fn tcp_target(
        &self,
        cluster: &Cluster,
        authority: &str,
        tls: &TargetTls,
        identity: Option<&Arc<IdentityStore>>,
    ) -> Result<Option<Arc<TlsTarget>>, TlsSetupError> {
        let spec = match (tls, identity) {
            (TargetTls::Plain, _)
            | (
                TargetTls::Mesh {
                    explicit: false, ..
                },
                None,
            ) => {
                return Ok(None);
            }
            (TargetTls::Mesh { .. }, None) => return Err(TlsSetupError::NoIdentity),
            (TargetTls::Mesh { expected, sni, .. }, Some(identity)) => {
                TargetSpec::Mesh(identity, expected, sni)
            }
            (TargetTls::Origin { files, mutual }, _) => TargetSpec::Origin(files, *mutual),
        };
        let key = format!("{authority}|{tls:?}");
        let mut targets = self.tcp.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(target) = targets.get(&key) {
            return Ok(Some(target.clone()));
        }
        let target = Arc::new(match spec {
            TargetSpec::Mesh(identity, expected, sni) => {
                TlsTarget::mesh(identity.clone(), expected.clone(), sni, ALPN_TCP)
            }
            TargetSpec::Origin(files, mutual) => {
                origin_target(files, mutual, &cluster.key.host, false)
                    .map_err(|e| TlsSetupError::Origin(e.to_string()))?
            }
        });
        if targets.len() >= MAX_CLIENTS {
            targets.clear();
        }
        targets.insert(key, target.clone());
        Ok(Some(target))
    }
}

enum TargetSpec<'a> {
    Mesh(&'a Arc<IdentityStore>, &'a Vec<SpiffeId>, &'a str),
    Origin(&'a TlsFiles, bool),
}
