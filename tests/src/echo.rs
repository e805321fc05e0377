//! `TestEcho`: a real `weft echo` backend on 127.0.0.1 with an ephemeral port.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::{bail, ensure};

use crate::{WeftProcess, or_fail};

/// Options for a `weft echo` process beyond its name.
#[derive(Debug, Clone)]
pub struct TestEchoBuilder {
    name: String,
    args: Vec<OsString>,
}

impl TestEchoBuilder {
    /// `--status CODE`: every response gets this status unless the request asks otherwise.
    pub fn status(self, code: u16) -> Self {
        self.arg("--status").arg(code.to_string())
    }

    /// `--text TEXT`: added to every JSON reply as `"text"`.
    pub fn text(self, text: &str) -> Self {
        self.arg("--text").arg(text)
    }

    /// Any other command-line argument, appended as given.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Starts the process and waits for its `listening on IP:PORT` line; fails the test if it
    /// does not come.
    #[track_caller]
    pub fn start(self) -> TestEcho {
        or_fail(self.try_start())
    }

    /// [`start`](Self::start), returning the problem instead of failing the test.
    pub fn try_start(self) -> anyhow::Result<TestEcho> {
        let mut args: Vec<OsString> = ["echo", "--listen", "127.0.0.1:0", "--name"]
            .into_iter()
            .map(OsString::from)
            .collect();
        args.push(self.name.clone().into());
        args.extend(self.args);
        let process = WeftProcess::start(&args, 1)?;
        let Some(listener) = process.listeners().first() else {
            bail!("weft echo announced no listener");
        };
        ensure!(
            listener.name.is_none(),
            "weft echo's first stdout line must be exactly `listening on IP:PORT`, got {:?}",
            process.stdout_lines().first()
        );
        let addr = listener.addr;
        ensure!(
            addr.ip().is_loopback() && addr.port() != 0,
            "weft echo announced {addr}, expected 127.0.0.1 with a real port"
        );
        Ok(TestEcho {
            name: self.name,
            addr,
            process,
        })
    }
}

/// A running `weft echo --listen 127.0.0.1:0 --name NAME`, killed when dropped.
#[derive(Debug)]
pub struct TestEcho {
    name: String,
    addr: SocketAddr,
    process: WeftProcess,
}

impl TestEcho {
    /// Starts an echo backend with default options; fails the test if it does not start.
    #[track_caller]
    pub fn start(name: &str) -> Self {
        Self::builder(name).start()
    }

    pub fn builder(name: &str) -> TestEchoBuilder {
        TestEchoBuilder {
            name: name.to_string(),
            args: Vec::new(),
        }
    }

    /// The address it listens on, as announced.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `http://IP:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn process(&self) -> &WeftProcess {
        &self.process
    }

    pub fn send_sigterm(&mut self) -> anyhow::Result<()> {
        self.process.send_sigterm()
    }

    pub fn wait_exit(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        self.process.wait_exit(within)
    }

    pub async fn wait_exit_async(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        self.process.wait_exit_async(within).await
    }
}

/// The number of requests an echo backend has served (its own `/__echo/` endpoints excluded).
pub async fn echo_count(echo: &TestEcho) -> anyhow::Result<u64> {
    let reply = crate::http::get(echo.addr(), http::Version::HTTP_11, "/__echo/stats").await?;
    reply.json()?["count"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no count in {}", reply.text()))
}
