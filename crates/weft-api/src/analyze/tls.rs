//! Client TLS that contradicts the server: a DestinationRule's `tls.mode` against the
//! PeerAuthentication in force where the destination runs (WEFT0001). Istio has no analyzer for
//! this; the result is connection resets at run time.

use crate::diagnostic::Severity;
use crate::host::qualify;
use crate::model::{ClientTlsMode, MtlsMode, PeerAuthentication, TrafficPolicy};
use crate::resource::Resource;

use super::catalog::Catalog;
use super::{CLUSTER_DOMAIN, Finding, codes};

/// Istio's default root namespace: PeerAuthentications there without a selector are mesh-wide.
pub const ROOT_NAMESPACE: &str = "istio-system";

pub(crate) fn check<'a>(catalog: &Catalog<'a>, out: &mut Vec<Finding<'a>>) {
    for (r, dr) in catalog.destination_rules() {
        let host = qualify(&dr.host, r.namespace(), CLUSTER_DOMAIN);
        let namespace = catalog
            .service(&host)
            .map(|s| s.namespace.clone())
            .or_else(|| {
                host.split('.')
                    .nth(1)
                    .filter(|_| host.ends_with(".svc.cluster.local"))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| r.namespace().to_string());
        let Some((pa_res, server)) = server_mode(catalog, &namespace) else {
            continue;
        };
        let mut policies: Vec<(String, &TrafficPolicy)> = Vec::new();
        if let Some(tp) = &dr.traffic_policy {
            policies.push(("spec.trafficPolicy".to_string(), tp));
        }
        for (i, s) in dr.subsets.iter().enumerate() {
            if let Some(tp) = &s.traffic_policy {
                policies.push((format!("spec.subsets[{i}].trafficPolicy"), tp));
            }
        }
        for (path, tp) in policies {
            let mut modes: Vec<(String, ClientTlsMode)> = Vec::new();
            if let Some(mode) = tp.tls.as_ref().and_then(|t| t.mode) {
                modes.push((format!("{path}.tls.mode"), mode));
            }
            for (i, pl) in tp.port_level_settings.iter().enumerate() {
                if let Some(mode) = pl.tls.as_ref().and_then(|t| t.mode) {
                    modes.push((format!("{path}.portLevelSettings[{i}].tls.mode"), mode));
                }
            }
            for (field, mode) in modes {
                if let Some(reason) = conflict(mode, server) {
                    out.push(Finding {
                        resource: r,
                        field,
                        code: codes::DR_TLS_CONFLICTS_WITH_PEER_AUTHN,
                        severity: Severity::Error,
                        message: format!(
                            "tls mode {} for host {} conflicts with PeerAuthentication {} (mtls mode {}): {reason}",
                            mode_name(mode),
                            dr.host,
                            pa_res.qualified_name(),
                            server_name(server)
                        ),
                    });
                }
            }
        }
    }
}

fn conflict(client: ClientTlsMode, server: MtlsMode) -> Option<&'static str> {
    match (client, server) {
        (ClientTlsMode::Disable, MtlsMode::Strict) => Some(
            "clients send plaintext but the server requires mutual TLS, so every request will be rejected",
        ),
        (ClientTlsMode::Simple | ClientTlsMode::Mutual, MtlsMode::Strict) => {
            Some("the server requires mesh mutual TLS (ISTIO_MUTUAL), not user-supplied TLS")
        }
        (ClientTlsMode::IstioMutual, MtlsMode::Disable) => {
            Some("clients send mutual TLS but the server accepts only plaintext")
        }
        _ => None,
    }
}

/// The namespace-wide PeerAuthentication for `namespace`, else the mesh-wide one.
fn server_mode<'a>(catalog: &Catalog<'a>, namespace: &str) -> Option<(&'a Resource, MtlsMode)> {
    let wide = |ns: &str| {
        catalog
            .peer_authentications()
            .find(|(r, pa)| r.namespace() == ns && pa.selector.is_none())
            .and_then(|(r, pa): (&'a Resource, &PeerAuthentication)| {
                Some((r, pa.mtls.as_ref()?.mode?))
            })
            .filter(|(_, mode)| *mode != MtlsMode::Unset)
    };
    wide(namespace).or_else(|| wide(ROOT_NAMESPACE))
}

fn mode_name(m: ClientTlsMode) -> &'static str {
    match m {
        ClientTlsMode::Disable => "DISABLE",
        ClientTlsMode::Simple => "SIMPLE",
        ClientTlsMode::Mutual => "MUTUAL",
        ClientTlsMode::IstioMutual => "ISTIO_MUTUAL",
    }
}

fn server_name(m: MtlsMode) -> &'static str {
    match m {
        MtlsMode::Unset => "UNSET",
        MtlsMode::Disable => "DISABLE",
        MtlsMode::Permissive => "PERMISSIVE",
        MtlsMode::Strict => "STRICT",
    }
}
