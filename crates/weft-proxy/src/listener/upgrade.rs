//! HTTP/1.1 protocol upgrades (`Connection: upgrade` + `Upgrade: websocket`, ...): the two
//! headers are kept on the way up (they are hop-by-hop otherwise), and when the upstream
//! answers `101 Switching Protocols` both connections are taken over from HTTP and their bytes
//! copied both ways until either side closes.
//!
//! Between weft proxies an upgrade cannot ride the shared HTTP/2 connection: it gets its own
//! mTLS connection negotiated as `http/1.1` (see `upstream::security`).

use http::header::{CONNECTION, HeaderValue, UPGRADE};
use http::{HeaderMap, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::body::ProxyBody;

/// The `Upgrade` header of a request asking for a protocol upgrade, if it is one.
pub(crate) fn requested(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(UPGRADE).cloned()).flatten()
}

/// Puts the upgrade headers back after hop-by-hop headers were stripped.
pub(crate) fn restore(headers: &mut HeaderMap, upgrade: &HeaderValue) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, upgrade.clone());
}

/// When `response` is a `101`, keeps its upgrade headers and splices the downstream
/// connection (`downstream`) with the upstream one once hyper hands both over.
pub(crate) fn splice(
    downstream: OnUpgrade,
    response: &mut Response<ProxyBody>,
    upgrade: &HeaderValue,
) {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return;
    }
    let upstream = hyper::upgrade::on(&mut *response);
    let protocol = response
        .headers()
        .get(UPGRADE)
        .cloned()
        .unwrap_or_else(|| upgrade.clone());
    restore(response.headers_mut(), &protocol);
    tokio::spawn(async move {
        let (down, up) = match tokio::try_join!(downstream, upstream) {
            Ok(pair) => pair,
            Err(err) => {
                tracing::debug!(%err, "protocol upgrade failed");
                return;
            }
        };
        let mut down = TokioIo::new(down);
        let mut up = TokioIo::new(up);
        if let Err(err) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
            tracing::debug!(%err, "upgraded connection ended with an error");
        }
    });
}
