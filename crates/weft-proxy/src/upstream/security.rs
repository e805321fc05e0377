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

/// The TLS clients of one compiled cluster, one per endpoint authority, each with the
/// [`TargetTls`] it was made for: a client is reused only while its endpoint is verified the
/// same way (expected identities, SNI, files), and replaced when a reload changes that.
#[derive(Default)]
pub(super) struct TlsClients {
    /// HTTP clients (ALPN `h2` to sidecars).
    clients: Mutex<Cache<Arc<TlsHttpClient>>>,
    /// HTTP/1.1 clients for protocol upgrades, which need a connection of their own.
    upgrades: Mutex<Cache<Arc<TlsHttpClient>>>,
    /// TLS targets for raw TCP connections (tunnels).
    tcp: Mutex<Cache<Arc<TlsTarget>>>,
}

/// Authority → (how it is verified, what was built for it).
type Cache<T> = HashMap<String, (TargetTls, T)>;

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
        let Some(spec) = TargetSpec::of(tls, identity)? else {
            return Ok(Sender::Plain);
        };
        let cache = if upgrade {
            &self.upgrades
        } else {
            &self.clients
        };
        let alpn = if upgrade { ALPN_HTTP11 } else { ALPN_H2 };
        let client = cached(cache, authority, tls, || {
            let target = spec.build(cluster, alpn, cluster.pool.http2)?;
            let connector = TlsConnector::new(pool::connector(&cluster.pool), Arc::new(target));
            Ok(Arc::new(pool::tls_client(&cluster.pool, connector)))
        })?;
        Ok(Sender::Tls(client))
    }

    /// The TLS target for a raw TCP connection to a target: `None` for plaintext. Mesh mTLS
    /// offers ALPN `weft-tcp` so the server side relays bytes instead of parsing HTTP.
    pub(super) fn tcp_target(
        &self,
        cluster: &Cluster,
        authority: &str,
        tls: &TargetTls,
        identity: Option<&Arc<IdentityStore>>,
    ) -> Result<Option<Arc<TlsTarget>>, TlsSetupError> {
        let Some(spec) = TargetSpec::of(tls, identity)? else {
            return Ok(None);
        };
        cached(&self.tcp, authority, tls, || {
            Ok(Arc::new(spec.build(cluster, ALPN_TCP, false)?))
        })
        .map(Some)
    }
}

/// The entry for `authority` when it was made for `tls`, else a new one from `make`.
fn cached<T: Clone>(
    cache: &Mutex<Cache<T>>,
    authority: &str,
    tls: &TargetTls,
    make: impl FnOnce() -> Result<T, TlsSetupError>,
) -> Result<T, TlsSetupError> {
    let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((made_for, value)) = cache.get(authority)
        && made_for == tls
    {
        return Ok(value.clone());
    }
    let value = make()?;
    // Authorities of endpoints no longer in use pile up across reloads: start afresh now and
    // then (connections in use keep their client).
    if cache.len() >= MAX_CLIENTS {
        cache.clear();
    }
    cache.insert(authority.to_string(), (tls.clone(), value.clone()));
    Ok(value)
}

enum TargetSpec<'a> {
    Mesh(&'a Arc<IdentityStore>, &'a Vec<SpiffeId>, &'a str),
    Origin(&'a TlsFiles, bool),
}

impl<'a> TargetSpec<'a> {
    /// How `tls` is set up with `identity`: `None` for plaintext (auto mTLS without an
    /// identity stays plaintext; an explicit `ISTIO_MUTUAL` without one is an error).
    fn of(
        tls: &'a TargetTls,
        identity: Option<&'a Arc<IdentityStore>>,
    ) -> Result<Option<TargetSpec<'a>>, TlsSetupError> {
        match (tls, identity) {
            (TargetTls::Plain, _)
            | (
                TargetTls::Mesh {
                    explicit: false, ..
                },
                None,
            ) => Ok(None),
            (TargetTls::Mesh { .. }, None) => Err(TlsSetupError::NoIdentity),
            (TargetTls::Mesh { expected, sni, .. }, Some(identity)) => {
                Ok(Some(TargetSpec::Mesh(identity, expected, sni)))
            }
            (TargetTls::Origin { files, mutual }, _) => {
                Ok(Some(TargetSpec::Origin(files, *mutual)))
            }
        }
    }

    /// The TLS target, offering `alpn` for mesh mTLS (origination offers `h2` when `http2`).
    fn build(
        self,
        cluster: &Cluster,
        alpn: &'static [u8],
        http2: bool,
    ) -> Result<TlsTarget, TlsSetupError> {
        match self {
            TargetSpec::Mesh(identity, expected, sni) => Ok(TlsTarget::mesh(
                identity.clone(),
                expected.clone(),
                sni,
                alpn,
            )),
            TargetSpec::Origin(files, mutual) => {
                origin_target(files, mutual, &cluster.key.host, http2)
                    .map_err(|e| TlsSetupError::Origin(e.to_string()))
            }
        }
    }
}
