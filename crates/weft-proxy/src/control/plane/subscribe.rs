//! The config stream: `Subscribe` over mTLS with the current certificate, Hello first, then one
//! ACK or NACK per snapshot. A snapshot that does not validate is NACKed with the messages and
//! the last good config keeps serving. When the stream breaks (or the control plane closes it)
//! the proxy keeps serving and resubscribes with backoff.

use std::sync::Arc;

use tokio::sync::mpsc;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use weft_proto::discovery_client::DiscoveryClient;
use weft_proto::proxy_message::Kind;
use weft_proto::{Ack, Hello, Nack, ProxyMessage, Snapshot};

use super::snapshot::compile_snapshot;
use super::{Backoff, Failures, Inner, PlaneError, certs, hello};
use crate::control::ConfigError;
use crate::tls::IdentityStore;

/// The largest snapshot accepted (tonic's default is 4 MiB).
const MAX_SNAPSHOT_BYTES: usize = 64 * 1024 * 1024;
/// NACK messages are cut to this many bytes.
const MAX_NACK_BYTES: usize = 16 * 1024;

/// Keeps the config stream open once a certificate is installed, forever.
pub(super) async fn maintain(inner: Arc<Inner>) {
    let mut identity = inner.identity.subscribe();
    let store = match identity.wait_for(Option::is_some).await {
        Ok(store) => store.clone(),
        Err(_) => return,
    };
    let Some(store) = store else {
        return;
    };
    let mut backoff = Backoff::default();
    let mut failures = Failures::default();
    loop {
        let result = subscribe_once(&inner, &store, &mut backoff, &mut failures).await;
        inner.status.set_connected(false);
        let retry_in = backoff.next_delay();
        match result {
            Ok(()) => {
                tracing::info!(
                    ?retry_in,
                    "the control plane closed the config stream; resubscribing"
                );
            }
            Err(err) => failures.failed(&inner.status, "config stream", &err, retry_in),
        }
        tokio::time::sleep(retry_in).await;
    }
}

fn message(kind: Kind) -> ProxyMessage {
    ProxyMessage { kind: Some(kind) }
}

/// One subscription, until the stream ends (`Ok`) or fails.
async fn subscribe_once(
    inner: &Inner,
    store: &IdentityStore,
    backoff: &mut Backoff,
    failures: &mut Failures,
) -> Result<(), PlaneError> {
    let tls = certs::control_tls(inner, Some(&store.current()))?;
    let connected = inner.dialer.connect(tls).await?;
    let hello = Hello {
        workload: Some(hello::with_address(&inner.registration, connected.local)),
        token: String::new(),
        proxy_version: env!("CARGO_PKG_VERSION").to_string(),
        resuming: inner.active.load().version > 0,
    };
    let (replies, outgoing) = mpsc::channel(4);
    // The receiver is alive and the channel empty: this cannot fail.
    let _ = replies.try_send(message(Kind::Hello(hello)));
    let mut client =
        DiscoveryClient::new(connected.channel).max_decoding_message_size(MAX_SNAPSHOT_BYTES);
    let mut snapshots = client
        .subscribe(ReceiverStream::new(outgoing))
        .await?
        .into_inner();
    inner.status.set_connected(true);
    failures.succeeded();
    tracing::info!(address = %inner.dialer.address(), "subscribed to the control plane");
    while let Some(snapshot) = snapshots.message().await? {
        backoff.reset();
        let reply = apply(inner, snapshot).await;
        if replies.send(reply).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Validates, compiles and applies one snapshot; the answer to send back.
async fn apply(inner: &Inner, snapshot: Snapshot) -> ProxyMessage {
    let version = snapshot.version;
    inner.status.received(version);
    let options = inner.compile.clone();
    // The proxy numbers its own config versions: the control plane's restart from 1 must never
    // make two different configs share a local version (caches are keyed by it).
    let local = inner.active.load().version + 1;
    let compiled = tokio::task::spawn_blocking(move || {
        compile_snapshot(&snapshot.resources_json, local, &options)
    })
    .await
    .unwrap_or_else(|join| {
        Err(ConfigError {
            message: format!("compiling the snapshot failed: {join}"),
            file: None,
            line: None,
        })
    });
    match compiled {
        Ok(mesh) => {
            inner.active.swap(mesh);
            inner.status.acked(version);
            inner.applied.send_replace(true);
            tracing::info!(version, "snapshot applied");
            message(Kind::Ack(Ack { version }))
        }
        Err(err) => {
            tracing::warn!(version, error = %err.message, "snapshot rejected; keeping the last good config");
            inner.status.nacked(version, &err.message);
            let error = truncate(&err.message, MAX_NACK_BYTES);
            inner.active.record_error(err);
            message(Kind::Nack(Nack { version, error }))
        }
    }
}

/// `text` cut to at most `max` bytes on a character boundary, marked when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (truncated)", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_nack_messages_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate("ééééé", 3);
        assert_eq!(cut, "é… (truncated)");
    }
}
