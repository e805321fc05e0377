//! `Discovery.Subscribe`: one stream per proxy. Hello first (authenticated), then a snapshot at
//! once and another whenever what this proxy needs changes (debounced, coalesced), each with the
//! global version of the change; ACK/NACK are recorded for `proxy-status`. The proxy is an
//! endpoint of its service while its stream is open.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use weft_proto::discovery_server::Discovery;
use weft_proto::proxy_message::Kind as MessageKind;
use weft_proto::{Hello, ProxyMessage, Snapshot};

use super::auth::{PeerIdentity, authorize_workload};
use crate::registry::health::run_checks;
use crate::registry::{ProxyId, WorkloadInfo};
use crate::snapshot::{ProxyScope, snapshot_json};
use crate::state::ControlState;

/// Changes closer together than this are pushed as one snapshot.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// How long a new stream may take to send its Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

pub struct DiscoveryService {
    state: Arc<ControlState>,
}

impl DiscoveryService {
    pub fn new(state: Arc<ControlState>) -> DiscoveryService {
        DiscoveryService { state }
    }
}

#[tonic::async_trait]
impl Discovery for DiscoveryService {
    type SubscribeStream = ReceiverStream<Result<Snapshot, Status>>;

    async fn subscribe(
        &self,
        request: Request<Streaming<ProxyMessage>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let peer = PeerIdentity::from_request(&request);
        let mut inbound = request.into_inner();
        let hello = read_hello(&mut inbound).await?;
        let workload = hello
            .workload
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("Hello.workload is required"))?;
        if workload.namespace.is_empty() || workload.service_account.is_empty() {
            return Err(Status::invalid_argument(
                "Hello.workload needs a namespace and a service account",
            ));
        }
        authorize_workload(
            &self.state,
            &peer,
            &hello.token,
            &workload.namespace,
            &workload.service_account,
        )?;
        let workload = WorkloadInfo::from(workload);
        let (tx, rx) = mpsc::channel(4);
        let state = self.state.clone();
        // A proxy that already serves a config, connecting right after this control plane
        // started, waits out the grace period: its peers are still reconnecting, and a
        // snapshot without their endpoints would replace a config that has them.
        let hold_until = hello
            .resuming
            .then(|| state.settings.started + state.settings.resume_grace)
            .filter(|until| *until > std::time::Instant::now());
        tokio::spawn(async move {
            let session = Session::start(state, workload);
            if let Some(until) = hold_until {
                tokio::select! {
                    () = tokio::time::sleep_until(until.into()) => {}
                    () = tx.closed() => return,
                }
            }
            session.run(inbound, tx).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

async fn read_hello(inbound: &mut Streaming<ProxyMessage>) -> Result<Hello, Status> {
    let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
        .await
        .map_err(|_| Status::deadline_exceeded("no Hello received"))??;
    match first.and_then(|m| m.kind) {
        Some(MessageKind::Hello(hello)) => Ok(hello),
        _ => Err(Status::invalid_argument("the first message must be Hello")),
    }
}

/// One registered proxy: deregistered (and its health checks stopped) when dropped.
struct Session {
    state: Arc<ControlState>,
    id: ProxyId,
    workload: WorkloadInfo,
    labels: std::collections::BTreeMap<String, String>,
    health: Option<JoinHandle<()>>,
    last_sent: Option<String>,
}

impl Session {
    fn start(state: Arc<ControlState>, workload: WorkloadInfo) -> Session {
        let id = state.register(workload.clone());
        tracing::info!(
            id,
            name = %workload.name,
            namespace = %workload.namespace,
            service = %workload.service,
            "proxy connected"
        );
        let health = workload.health.clone().map(|spec| {
            let st = state.clone();
            let address = workload.address.clone();
            tokio::spawn(run_checks(address, spec, move |healthy| {
                st.set_health(id, healthy);
            }))
        });
        Session {
            labels: workload.endpoint_labels(),
            state,
            id,
            workload,
            health,
            last_sent: None,
        }
    }

    async fn run(
        mut self,
        mut inbound: Streaming<ProxyMessage>,
        tx: mpsc::Sender<Result<Snapshot, Status>>,
    ) {
        let mut versions = self.state.subscribe();
        versions.borrow_and_update();
        if !self.push(&tx).await {
            return;
        }
        loop {
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(message)) => self.record(message),
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!(id = self.id, %status, "proxy stream error");
                        break;
                    }
                },
                changed = versions.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    tokio::time::sleep(DEBOUNCE).await;
                    versions.borrow_and_update();
                    if !self.push(&tx).await {
                        break;
                    }
                }
                () = tx.closed() => break,
            }
        }
    }

    /// Sends the current snapshot if this proxy's resources changed; false when the stream
    /// is gone.
    async fn push(&mut self, tx: &mpsc::Sender<Result<Snapshot, Status>>) -> bool {
        let view = self.state.view();
        let scope = ProxyScope {
            namespace: &self.workload.namespace,
            labels: &self.labels,
            root_namespace: &self.state.settings.root_namespace,
        };
        let json = snapshot_json(&view.resources, &scope);
        if self.last_sent.as_ref() == Some(&json) {
            return true;
        }
        let snapshot = Snapshot {
            version: view.version,
            resources_json: json.clone(),
        };
        if tx.send(Ok(snapshot)).await.is_err() {
            return false;
        }
        tracing::debug!(id = self.id, version = view.version, "snapshot sent");
        self.last_sent = Some(json);
        self.state
            .update_status(self.id, |s| s.sent = Some(view.version));
        true
    }

    fn record(&self, message: ProxyMessage) {
        match message.kind {
            Some(MessageKind::Ack(ack)) => {
                tracing::debug!(id = self.id, version = ack.version, "ack");
                self.state.update_status(self.id, |s| {
                    s.acked = Some(s.acked.map_or(ack.version, |a| a.max(ack.version)));
                    if s.nack.as_ref().is_some_and(|(v, _)| *v <= ack.version) {
                        s.nack = None;
                    }
                });
            }
            Some(MessageKind::Nack(nack)) => {
                tracing::warn!(
                    id = self.id,
                    name = %self.workload.name,
                    version = nack.version,
                    error = %nack.error,
                    "proxy refused a snapshot"
                );
                self.state
                    .update_status(self.id, |s| s.nack = Some((nack.version, nack.error)));
            }
            Some(MessageKind::Hello(_)) | None => {
                tracing::debug!(id = self.id, "ignoring an unexpected message");
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(health) = self.health.take() {
            health.abort();
        }
        self.state.deregister(self.id);
        tracing::info!(id = self.id, name = %self.workload.name, "proxy disconnected");
    }
}
