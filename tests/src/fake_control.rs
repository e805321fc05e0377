//! [`FakeControlPlane`]: an in-process stand-in for `weft control` that speaks the real
//! protocol (the generated `Discovery` and `Certificates` servers over TLS 1.3 + HTTP/2, with
//! the control plane's SPIFFE identity) but whose snapshots the test pushes by hand, and which
//! records every Hello, ACK, NACK and certificate it signs. It can be stopped (every
//! connection dropped, as if the process died) and started again on the same port, with the
//! same CA and state.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::Service;
use tonic::{Request, Response, Status, Streaming};
use weft_identity::{CertificateAuthority, SpiffeId, WorkloadIdentity};
use weft_proto::certificates_server::{Certificates, CertificatesServer};
use weft_proto::discovery_server::{Discovery, DiscoveryServer};
use weft_proto::proxy_message::Kind;
use weft_proto::{ProxyMessage, SignRequest, SignResponse, Snapshot, Workload};

use crate::wait_until_async;

/// How long the waiting helpers wait.
const DEADLINE: Duration = Duration::from_secs(20);

/// Something a proxy did, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum PlaneEvent {
    /// A certificate was signed: with a bootstrap token, or renewed over mTLS.
    Signed {
        id: String,
        renewal: bool,
    },
    /// A Subscribe stream opened with this workload.
    Hello(Box<Workload>),
    Ack(u64),
    Nack {
        version: u64,
        error: String,
    },
    /// A Subscribe stream closed.
    Gone(String),
}

/// The caller's certificate identity, attached to each request of a connection.
#[derive(Debug, Clone, Default)]
struct Peer(Option<SpiffeId>);

struct State {
    ca: CertificateAuthority,
    tokens: Vec<(String, SpiffeId)>,
    cert_ttl: Duration,
    /// The snapshot every stream is sent: `(version, resources_json)`.
    snapshot: watch::Sender<Option<(u64, String)>>,
    events: Mutex<Vec<PlaneEvent>>,
    /// When the last certificate signed expires.
    last_expiry: Mutex<Option<SystemTime>>,
}

impl State {
    fn record(&self, event: PlaneEvent) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
}

/// A fake control plane on 127.0.0.1.
pub struct FakeControlPlane {
    addr: SocketAddr,
    dir: PathBuf,
    state: Arc<State>,
    tls: Arc<rustls::ServerConfig>,
    server: Option<JoinHandle<()>>,
}

impl FakeControlPlane {
    /// A control plane with a new CA for `cluster.local`, issuing certificates valid for
    /// `cert_ttl`, accepting `tokens` (`token`, `namespace`, `service account`); not serving
    /// yet (see [`start`](Self::start)). Its port is reserved now and free until then.
    pub async fn new(cert_ttl: Duration, tokens: &[(&str, &str, &str)]) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "weft-fake-control-{}-{}",
            std::process::id(),
            crate::proxy::unique()
        ));
        let ca = CertificateAuthority::init(&dir.join("ca"), "cluster.local")?;
        std::fs::write(dir.join("root-cert.pem"), ca.cert_pem())?;
        let control_id = SpiffeId::new(
            "cluster.local",
            weft_proto::CONTROL_PLANE_NAMESPACE,
            weft_proto::CONTROL_PLANE_SERVICE_ACCOUNT,
        )?;
        let issued = ca.issue(&control_id, Duration::from_secs(3600))?;
        let identity = WorkloadIdentity::try_from(&issued)?;
        let tls = Arc::new(weft_identity::control_server_config(&identity)?);
        let tokens = tokens
            .iter()
            .map(|(token, ns, sa)| Ok((token.to_string(), SpiffeId::new("cluster.local", ns, sa)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let addr = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
        Ok(FakeControlPlane {
            addr,
            dir,
            state: Arc::new(State {
                ca,
                tokens,
                cert_ttl,
                snapshot: watch::Sender::new(None),
                events: Mutex::new(Vec::new()),
                last_expiry: Mutex::new(None),
            }),
            tls,
            server: None,
        })
    }

    /// Starts serving on its address (again, after [`stop`](Self::stop)).
    pub async fn start(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.server.is_none(), "the fake control plane is running");
        let listener = TcpListener::bind(self.addr)
            .await
            .with_context(|| format!("binding {}", self.addr))?;
        self.server = Some(tokio::spawn(serve(
            listener,
            TlsAcceptor::from(self.tls.clone()),
            self.state.clone(),
        )));
        Ok(())
    }

    /// Stops serving and drops every connection, as a killed process would.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    /// `HOST:PORT` for `--control-plane`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The root certificate file for `--ca-bundle`.
    pub fn ca_bundle(&self) -> PathBuf {
        self.dir.join("root-cert.pem")
    }

    /// Sends `resources_json` as snapshot `version` to every stream, now and on reconnect.
    pub fn push(&self, version: u64, resources_json: &str) {
        self.state
            .snapshot
            .send_replace(Some((version, resources_json.to_string())));
    }

    /// Everything recorded so far.
    pub fn events(&self) -> Vec<PlaneEvent> {
        self.state
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The workloads of every Hello so far.
    pub fn hellos(&self) -> Vec<Workload> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                PlaneEvent::Hello(w) => Some(*w),
                _ => None,
            })
            .collect()
    }

    /// The certificates signed so far: (SPIFFE ID, renewal).
    pub fn signed(&self) -> Vec<(String, bool)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                PlaneEvent::Signed { id, renewal } => Some((id, renewal)),
                _ => None,
            })
            .collect()
    }

    /// When the last certificate it signed expires.
    pub fn last_expiry(&self) -> Option<SystemTime> {
        *self
            .state
            .last_expiry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `event` has been recorded (at least `count` times in all).
    pub async fn wait_for(&self, event: &PlaneEvent, count: usize) -> anyhow::Result<()> {
        let seen = || self.events().iter().filter(|e| *e == event).count();
        wait_until_async(DEADLINE, || std::future::ready(seen() >= count))
            .await
            .with_context(|| {
                format!(
                    "waiting for {event:?} x{count}; events: {:#?}",
                    self.events()
                )
            })
    }

    /// Waits for the NACK of `version` and returns its error.
    pub async fn wait_for_nack(&self, version: u64) -> anyhow::Result<String> {
        let find = || {
            self.events().into_iter().find_map(|e| match e {
                PlaneEvent::Nack { version: v, error } if v == version => Some(error),
                _ => None,
            })
        };
        wait_until_async(DEADLINE, || std::future::ready(find().is_some()))
            .await
            .with_context(|| format!("waiting for the NACK of {version}: {:#?}", self.events()))?;
        find().context("the NACK vanished")
    }
}

impl Drop for FakeControlPlane {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Accepts connections until aborted; aborting drops every connection.
async fn serve(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    let discovery = DiscoveryServer::new(FakeDiscovery {
        state: state.clone(),
    });
    let certificates = CertificatesServer::new(FakeCertificates { state });
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                connections.spawn(serve_connection(
                    stream,
                    acceptor.clone(),
                    discovery.clone(),
                    certificates.clone(),
                ));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    discovery: DiscoveryServer<FakeDiscovery>,
    certificates: CertificatesServer<FakeCertificates>,
) {
    let Ok(tls) = acceptor.accept(stream).await else {
        return;
    };
    let peer = Peer(
        tls.get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|leaf| weft_identity::spiffe_id_of(leaf).ok()),
    );
    let service = service_fn(move |mut req: http::Request<Incoming>| {
        req.extensions_mut().insert(peer.clone());
        let mut discovery = discovery.clone();
        let mut certificates = certificates.clone();
        async move {
            let response = if req.uri().path().starts_with("/weft.mesh.v1.Certificates/") {
                certificates.call(req).await
            } else {
                discovery.call(req).await
            };
            Ok::<_, Infallible>(match response {
                Ok(r) => r,
                Err(never) => match never {},
            })
        }
    });
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

struct FakeCertificates {
    state: Arc<State>,
}

#[tonic::async_trait]
impl Certificates for FakeCertificates {
    async fn sign(&self, request: Request<SignRequest>) -> Result<Response<SignResponse>, Status> {
        let peer = request
            .extensions()
            .get::<Peer>()
            .cloned()
            .unwrap_or_default();
        let request = request.into_inner();
        let id = if request.token.is_empty() {
            peer.0
                .ok_or_else(|| Status::unauthenticated("a token or a certificate is required"))?
        } else {
            self.state
                .tokens
                .iter()
                .find(|(token, _)| *token == request.token)
                .map(|(_, id)| id.clone())
                .ok_or_else(|| Status::unauthenticated("invalid bootstrap token"))?
        };
        let signed = self
            .state
            .ca
            .sign_csr(&request.csr_pem, &id, self.state.cert_ttl)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        self.state.record(PlaneEvent::Signed {
            id: id.to_string(),
            renewal: request.token.is_empty(),
        });
        *self
            .state
            .last_expiry
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(signed.not_after);
        Ok(Response::new(SignResponse {
            cert_chain_pem: signed.cert_chain_pem,
            root_cert_pem: signed.trust_bundle_pem,
        }))
    }
}

struct FakeDiscovery {
    state: Arc<State>,
}

#[tonic::async_trait]
impl Discovery for FakeDiscovery {
    type SubscribeStream = ReceiverStream<Result<Snapshot, Status>>;

    async fn subscribe(
        &self,
        request: Request<Streaming<ProxyMessage>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let peer = request
            .extensions()
            .get::<Peer>()
            .cloned()
            .unwrap_or_default();
        let Some(id) = peer.0 else {
            return Err(Status::unauthenticated(
                "Subscribe needs a client certificate",
            ));
        };
        let mut inbound = request.into_inner();
        let hello = match inbound.message().await?.and_then(|m| m.kind) {
            Some(Kind::Hello(hello)) => hello,
            _ => return Err(Status::invalid_argument("the first message must be Hello")),
        };
        let workload = hello.workload.unwrap_or_default();
        if workload.namespace != id.namespace() || workload.service_account != id.service_account()
        {
            return Err(Status::permission_denied(format!(
                "{id} may not act as {workload:?}"
            )));
        }
        let name = workload.name.clone();
        self.state.record(PlaneEvent::Hello(Box::new(workload)));
        let (tx, rx) = mpsc::channel(4);
        let state = self.state.clone();
        tokio::spawn(async move {
            let mut snapshots = state.snapshot.subscribe();
            snapshots.mark_changed();
            loop {
                tokio::select! {
                    changed = snapshots.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let current = snapshots.borrow_and_update().clone();
                        if let Some((version, resources_json)) = current {
                            let snapshot = Snapshot { version, resources_json };
                            if tx.send(Ok(snapshot)).await.is_err() {
                                break;
                            }
                        }
                    }
                    message = inbound.message() => match message {
                        Ok(Some(ProxyMessage { kind: Some(Kind::Ack(ack)) })) => {
                            state.record(PlaneEvent::Ack(ack.version));
                        }
                        Ok(Some(ProxyMessage { kind: Some(Kind::Nack(nack)) })) => {
                            state.record(PlaneEvent::Nack { version: nack.version, error: nack.error });
                        }
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break,
                    },
                }
            }
            state.record(PlaneEvent::Gone(name));
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
