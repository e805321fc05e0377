//! [`TestPlaneProxy`]: a real `weft proxy` in control-plane mode (`--control-plane`) on
//! 127.0.0.1 with port 0, in front of an application, with helpers to read its admin endpoints
//! and send requests through its outbound listener.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use http::Version;

use crate::http::{Client, Reply, get};
use crate::process::WeftProcess;
use crate::wait_until_async;

/// A running `weft proxy --control-plane ...`.
pub struct TestPlaneProxy {
    process: WeftProcess,
    outbound: SocketAddr,
    inbound: SocketAddr,
    admin: SocketAddr,
}

impl TestPlaneProxy {
    /// Starts a proxy registering `service` with its inbound listener in front of `app`, using
    /// the control plane at `control` (verified against `ca_bundle`) and bootstrap `token`;
    /// `extra` flags are appended. Returns once its three listening lines are printed (before
    /// it has reached the control plane).
    pub fn start(
        control: SocketAddr,
        ca_bundle: &Path,
        token: &str,
        service: &str,
        app: SocketAddr,
        extra: &[&str],
    ) -> anyhow::Result<TestPlaneProxy> {
        let mut args: Vec<String> = [
            "proxy",
            "--control-plane",
            &control.to_string(),
            "--ca-bundle",
            &ca_bundle.display().to_string(),
            "--token",
            token,
            "--service",
            service,
            "--inbound",
            "127.0.0.1:0",
            "--app",
            &app.to_string(),
            "--outbound",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let process = WeftProcess::start(&args, 3)?;
        let find = |name: &str| {
            process
                .listeners()
                .iter()
                .find(|l| l.name.as_deref() == Some(name))
                .map(|l| l.addr)
                .with_context(|| format!("no `listening {name}` line"))
        };
        Ok(TestPlaneProxy {
            outbound: find("outbound")?,
            inbound: find("inbound")?,
            admin: find("admin")?,
            process,
        })
    }

    pub fn outbound(&self) -> SocketAddr {
        self.outbound
    }

    pub fn inbound(&self) -> SocketAddr {
        self.inbound
    }

    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    pub fn process(&self) -> &WeftProcess {
        &self.process
    }

    /// `GET /config_dump` as JSON.
    pub async fn config_dump(&self) -> anyhow::Result<serde_json::Value> {
        get(self.admin, Version::HTTP_11, "/config_dump")
            .await?
            .json()
    }

    /// The status of `GET /ready`.
    pub async fn ready_status(&self) -> anyhow::Result<u16> {
        Ok(get(self.admin, Version::HTTP_11, "/ready")
            .await?
            .status
            .as_u16())
    }

    /// Waits until `/ready` answers 200.
    pub async fn wait_ready(&self, within: Duration) -> anyhow::Result<()> {
        wait_until_async(within, || async {
            matches!(self.ready_status().await, Ok(200))
        })
        .await
        .with_context(|| format!("not ready; stderr:\n{}", self.process.stderr()))
    }

    /// GET `path` for `host` through the outbound listener, on a fresh HTTP/1.1 connection.
    pub async fn get(&self, host: &str, path: &str) -> anyhow::Result<Reply> {
        let mut client = Client::connect(self.outbound, Version::HTTP_11).await?;
        let req = http::Request::get(path)
            .header(http::header::HOST, host)
            .body(http_body_util::Full::new(bytes::Bytes::new()))?;
        client.send(req).await
    }
}
