//! [`TestControl`]: a real `weft control` on 127.0.0.1 with ephemeral ports, its config and
//! data directories in a temporary directory (removed on drop), the CLI pointed at it, and a
//! gRPC channel to it over TLS verified against its root, like a proxy's.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Command;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, bail};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint, Uri};
use weft_identity::{ExpectedIdentity, SpiffeId, WorkloadIdentity};

use crate::{WeftProcess, or_fail, weft_bin};

/// A running control plane.
pub struct TestControl {
    process: WeftProcess,
    dir: PathBuf,
    grpc: SocketAddr,
    admin: SocketAddr,
}

/// What a CLI command printed and how it exited.
#[derive(Debug, Clone)]
pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl TestControl {
    /// A control plane watching an empty config directory.
    pub fn start() -> TestControl {
        or_fail(Self::try_start(&[]))
    }

    /// A control plane whose config directory holds `files` (name, content).
    pub fn try_start(files: &[(&str, &str)]) -> anyhow::Result<TestControl> {
        let dir = std::env::temp_dir().join(format!(
            "weft-control-test-{}-{}",
            std::process::id(),
            crate::proxy::unique()
        ));
        let config = dir.join("config");
        std::fs::create_dir_all(&config)
            .with_context(|| format!("creating {}", config.display()))?;
        for (name, content) in files {
            std::fs::write(config.join(name), content)?;
        }
        Self::start_in(dir)
    }

    fn start_in(dir: PathBuf) -> anyhow::Result<TestControl> {
        let config = dir.join("config");
        let data = dir.join("data");
        let process = WeftProcess::start(
            [
                "control".as_ref(),
                "--config-dir".as_ref(),
                config.as_os_str(),
                "--data-dir".as_ref(),
                data.as_os_str(),
                "--listen".as_ref(),
                "127.0.0.1:0".as_ref(),
                "--admin".as_ref(),
                "127.0.0.1:0".as_ref(),
            ],
            2,
        )?;
        let find = |name: &str| {
            process
                .listeners()
                .iter()
                .find(|l| l.name.as_deref() == Some(name))
                .map(|l| l.addr)
                .with_context(|| format!("no `listening {name}` line"))
        };
        let grpc = find("grpc")?;
        let admin = find("admin")?;
        Ok(TestControl {
            process,
            dir,
            grpc,
            admin,
        })
    }

    /// Stops the process with SIGTERM (it must exit 0) and starts it again on the same
    /// directories (new ports).
    pub fn restart(mut self) -> anyhow::Result<TestControl> {
        self.process.send_sigterm()?;
        let status = self.process.wait_exit(Duration::from_secs(10))?;
        if !status.success() {
            bail!("weft control exited with {status} on SIGTERM");
        }
        let dir = std::mem::take(&mut self.dir);
        drop(self);
        Self::start_in(dir)
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    pub fn process(&self) -> &WeftProcess {
        &self.process
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.join("config")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A scratch directory for the test's own files.
    pub fn scratch(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.join(name);
        or_fail(std::fs::write(&path, content).with_context(|| format!("writing {name}")));
        path
    }

    /// The admin token the control plane wrote.
    pub fn admin_token(&self) -> String {
        or_fail(read(&self.data_dir().join("admin.token")))
            .trim()
            .to_string()
    }

    /// The mesh root certificate (PEM).
    pub fn root_cert_pem(&self) -> String {
        or_fail(read(&self.data_dir().join("root-cert.pem")))
    }

    /// Runs `weft ARGS` against this control plane (`WEFT_SERVER`, `WEFT_ADMIN_TOKEN` set).
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        or_fail(self.try_cli(args))
    }

    pub fn try_cli(&self, args: &[&str]) -> anyhow::Result<CliOutput> {
        let out = Command::new(weft_bin())
            .args(args)
            .env("WEFT_SERVER", format!("http://{}", self.admin))
            .env("WEFT_ADMIN_TOKEN", self.admin_token())
            .current_dir(&self.dir)
            .output()
            .with_context(|| format!("running weft {args:?}"))?;
        Ok(CliOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// [`cli`](Self::cli) from async tests (runs on a blocking thread).
    pub async fn cli_async(&self, args: &[&str]) -> CliOutput {
        let server = format!("http://{}", self.admin);
        let token = self.admin_token();
        let dir = self.dir.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(weft_bin())
                .args(&args)
                .env("WEFT_SERVER", server)
                .env("WEFT_ADMIN_TOKEN", token)
                .current_dir(dir)
                .output()
        })
        .await;
        let out = or_fail(
            out.map_err(anyhow::Error::from)
                .and_then(|r| r.context("running weft")),
        );
        CliOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The control plane's server identity, as proxies pin it.
    pub fn server_identity() -> ExpectedIdentity {
        ExpectedIdentity::OneOf(
            SpiffeId::new(
                "cluster.local",
                weft_proto::CONTROL_PLANE_NAMESPACE,
                weft_proto::CONTROL_PLANE_SERVICE_ACCOUNT,
            )
            .into_iter()
            .collect(),
        )
    }

    /// A gRPC channel without a client certificate (bootstrap).
    pub async fn grpc_channel(&self) -> anyhow::Result<Channel> {
        let roots = weft_identity::certs_from_pem(&self.root_cert_pem())?;
        let config = weft_identity::bootstrap_client_config(&roots, Self::server_identity())?;
        self.channel_with(config).await
    }

    /// A gRPC channel presenting `identity` (mTLS, as a proxy with a certificate).
    pub async fn grpc_channel_as(&self, identity: &WorkloadIdentity) -> anyhow::Result<Channel> {
        let config = weft_identity::client_config(identity, Self::server_identity())?;
        self.channel_with(config).await
    }

    async fn channel_with(&self, config: rustls::ClientConfig) -> anyhow::Result<Channel> {
        let connector = TlsConnector {
            addr: self.grpc,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        };
        Ok(Endpoint::from_shared(format!("http://{}", self.grpc))?
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector(connector)
            .await?)
    }
}

impl Drop for TestControl {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Connects tonic to the control plane over TLS (tonic's own TLS is not built in weft).
#[derive(Clone)]
struct TlsConnector {
    addr: SocketAddr,
    tls: tokio_rustls::TlsConnector,
}

type Connected = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;

impl tonic::codegen::Service<Uri> for TlsConnector {
    type Response = Connected;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Connected, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let tcp = TcpStream::connect(this.addr).await?;
            let name =
                ServerName::try_from("weft-control.istio-system").map_err(std::io::Error::other)?;
            let tls = this.tls.connect(name, tcp).await?;
            Ok(TokioIo::new(tls))
        })
    }
}
