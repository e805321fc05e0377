//! [`TestProxy`]: a real `weft proxy` on 127.0.0.1 with port 0, configured from YAML the test
//! writes, with helpers to send requests through it, edit its config and read its access log.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, Version};
use http_body_util::Full;

use crate::http::{Client, Reply, get};
use crate::process::WeftProcess;
use crate::{or_fail, wait_until_async};

/// A running `weft proxy`.
pub struct TestProxy {
    process: WeftProcess,
    outbound: SocketAddr,
    admin: SocketAddr,
    inbound: Option<SocketAddr>,
    dir: PathBuf,
}

impl TestProxy {
    /// Starts a proxy on `config` (multi-document YAML) with extra flags; fails the test if it
    /// does not start.
    pub fn start(config: &str, extra: &[&str]) -> TestProxy {
        or_fail(Self::try_start(config, extra))
    }

    pub fn try_start(config: &str, extra: &[&str]) -> anyhow::Result<TestProxy> {
        let dir = std::env::temp_dir().join(format!(
            "weft-proxy-test-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("mesh.yaml"), config)?;
        let mut args: Vec<String> = vec![
            "proxy".into(),
            "--config".into(),
            dir.display().to_string(),
            "--outbound".into(),
            "127.0.0.1:0".into(),
            "--admin".into(),
            "127.0.0.1:0".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let listeners = if extra.contains(&"--inbound") { 3 } else { 2 };
        let process = WeftProcess::start(&args, listeners)?;
        let find = |name: &str| {
            process
                .listeners()
                .iter()
                .find(|l| l.name.as_deref() == Some(name))
                .map(|l| l.addr)
                .with_context(|| format!("no `listening {name}` line"))
        };
        let outbound = find("outbound")?;
        let admin = find("admin")?;
        let inbound = find("inbound").ok();
        Ok(TestProxy {
            process,
            outbound,
            admin,
            inbound,
            dir,
        })
    }

    pub fn outbound(&self) -> SocketAddr {
        self.outbound
    }

    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// The inbound listener (started with `--inbound`).
    pub fn inbound(&self) -> SocketAddr {
        or_fail(self.inbound.context("the proxy has no inbound listener"))
    }

    pub fn process(&self) -> &WeftProcess {
        &self.process
    }

    /// Replaces the config file atomically (write then rename), as an editor or `git pull` does.
    pub fn write_config(&self, config: &str) -> anyhow::Result<()> {
        let tmp = self.dir.join(".mesh.yaml.tmp");
        std::fs::write(&tmp, config)?;
        std::fs::rename(&tmp, self.dir.join("mesh.yaml"))?;
        Ok(())
    }

    /// A client connection to the outbound listener.
    pub async fn client(&self, version: Version) -> anyhow::Result<ProxyClient> {
        Ok(ProxyClient {
            inner: Client::connect(self.outbound, version).await?,
            version,
        })
    }

    /// GET `path` for `host` on a fresh HTTP/1.1 connection.
    pub async fn get(&self, host: &str, path: &str) -> anyhow::Result<Reply> {
        self.client(Version::HTTP_11)
            .await?
            .get(host, path, &[])
            .await
    }

    /// `GET /config_dump` as JSON.
    pub async fn config_dump(&self) -> anyhow::Result<serde_json::Value> {
        get(self.admin, Version::HTTP_11, "/config_dump")
            .await?
            .json()
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(get(self.admin, Version::HTTP_11, "/metrics").await?.text())
    }

    /// Every JSON access-log line printed so far.
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        self.process
            .stdout_lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.is_object())
            .collect()
    }

    /// Waits until the access log has at least `n` lines (lines are written when a response
    /// body ends, which can be just after the client has read it).
    pub async fn wait_for_log_lines(&self, n: usize) -> anyhow::Result<Vec<serde_json::Value>> {
        wait_until_async(Duration::from_secs(10), || async {
            self.access_log().len() >= n
        })
        .await?;
        Ok(self.access_log())
    }

    /// Waits until `/config_dump` reports `version`.
    pub async fn wait_for_version(&self, version: u64) -> anyhow::Result<()> {
        wait_until_async(Duration::from_secs(10), || async {
            self.config_dump()
                .await
                .ok()
                .and_then(|d| d["version"].as_u64())
                == Some(version)
        })
        .await?;
        Ok(())
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A connection to the proxy's outbound listener that addresses requests to mesh hosts.
pub struct ProxyClient {
    inner: Client,
    version: Version,
}

impl ProxyClient {
    /// GET `path` for `host` (sent as `Host`, or `:authority` over HTTP/2) with extra headers.
    pub async fn get(
        &mut self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        self.send(Method::GET, host, path, headers, Bytes::new())
            .await
    }

    pub async fn send(
        &mut self,
        method: Method,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> anyhow::Result<Reply> {
        let mut builder = Request::builder().method(method);
        builder = if self.version == Version::HTTP_2 {
            builder
                .uri(format!("http://{host}{path}"))
                .version(Version::HTTP_2)
        } else {
            builder.uri(path).header(http::header::HOST, host)
        };
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        self.inner.send(builder.body(Full::new(body))?).await
    }
}
