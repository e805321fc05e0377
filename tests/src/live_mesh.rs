//! A live mesh for tests: [`LiveControl`], a real `weft control` that can be SIGKILLed and
//! started again on the same ports and data directory, with `weft run` workloads against it,
//! and [`Traffic`], steady requests through a sidecar's outbound listener, each one recorded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, StatusCode, Version};
use http_body_util::Full;

use crate::http::Client;
use crate::{CliOutput, GroupProcess, WeftProcess, weft_bin};

/// A `weft control` on 127.0.0.1 (ports chosen at first start, kept on restart) with its
/// directories in a temporary directory.
pub struct LiveControl {
    process: Option<WeftProcess>,
    dir: PathBuf,
    grpc: SocketAddr,
    admin: SocketAddr,
}

impl LiveControl {
    /// Starts a control plane on ephemeral ports watching an empty config directory.
    pub fn start() -> anyhow::Result<LiveControl> {
        let dir = std::env::temp_dir().join(format!(
            "weft-live-control-{}-{}",
            std::process::id(),
            crate::proxy::unique()
        ));
        let config = dir.join("config");
        std::fs::create_dir_all(&config)
            .with_context(|| format!("creating {}", config.display()))?;
        let process = spawn(&dir, "127.0.0.1:0", "127.0.0.1:0")?;
        let grpc = listener(&process, "grpc")?;
        let admin = listener(&process, "admin")?;
        Ok(LiveControl {
            process: Some(process),
            dir,
            grpc,
            admin,
        })
    }

    /// SIGKILLs the control plane and waits until it is gone.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        let mut process = self.process.take().context("not running")?;
        let status = Command::new("kill")
            .args(["-KILL", &process.pid().to_string()])
            .status()
            .context("cannot run kill")?;
        if !status.success() {
            bail!("kill -KILL {} failed: {status}", process.pid());
        }
        process.wait_exit(Duration::from_secs(10))?;
        Ok(())
    }

    /// Starts the control plane again on the same ports and directories.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.process.is_some() {
            bail!("still running");
        }
        let process = spawn(&self.dir, &self.grpc.to_string(), &self.admin.to_string())?;
        if listener(&process, "grpc")? != self.grpc || listener(&process, "admin")? != self.admin {
            bail!("restarted on other ports: {:?}", process.listeners());
        }
        self.process = Some(process);
        Ok(())
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The running process's stderr (empty while it is down).
    pub fn stderr(&self) -> String {
        self.process
            .as_ref()
            .map_or_else(String::new, WeftProcess::stderr)
    }

    pub fn admin_token(&self) -> anyhow::Result<String> {
        let path = self.data_dir().join("admin.token");
        Ok(std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .trim()
            .to_string())
    }

    /// `weft apply -f FILE` with `yaml` written to a scratch file (runs on a blocking thread).
    pub async fn apply(&self, name: &str, yaml: &str) -> anyhow::Result<CliOutput> {
        let file = self.dir.join(name);
        std::fs::write(&file, yaml).with_context(|| format!("writing {}", file.display()))?;
        let server = format!("http://{}", self.admin);
        let token = self.admin_token()?;
        let out = tokio::task::spawn_blocking(move || {
            Command::new(weft_bin())
                .arg("apply")
                .arg("-f")
                .arg(&file)
                .env("WEFT_SERVER", server)
                .env("WEFT_ADMIN_TOKEN", token)
                .output()
        })
        .await?
        .context("running weft apply")?;
        Ok(CliOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// An admin API call with the admin token.
    async fn admin_call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let mut client = Client::connect(self.admin, Version::HTTP_11).await?;
        let mut req = client
            .request(method, path)
            .header("authorization", format!("Bearer {}", self.admin_token()?));
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let reply = client.send(req.body(Full::new(body))?).await?;
        if reply.status != StatusCode::OK {
            bail!("{path}: {} {}", reply.status, reply.text());
        }
        reply.json()
    }

    /// A bootstrap token for the `default` namespace and service account `sa`.
    pub async fn token(&self, sa: &str) -> anyhow::Result<String> {
        let reply = self
            .admin_call(
                Method::POST,
                "/api/tokens",
                Some(serde_json::json!({"namespace": "default", "serviceAccount": sa})),
            )
            .await?;
        reply["token"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no token in {reply}"))
    }

    /// `GET /api/proxies`: the registered proxies.
    pub async fn proxies(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let reply = self.admin_call(Method::GET, "/api/proxies", None).await?;
        reply["proxies"]
            .as_array()
            .cloned()
            .with_context(|| format!("no proxies in {reply}"))
    }

    /// Whether exactly the proxies `names` are registered, each SYNCED.
    pub async fn all_synced(&self, names: &[&str]) -> bool {
        let Ok(proxies) = self.proxies().await else {
            return false;
        };
        let mut synced: Vec<&str> = proxies
            .iter()
            .filter(|p| p["status"] == "SYNCED")
            .filter_map(|p| p["name"].as_str())
            .collect();
        synced.sort_unstable();
        let mut wanted = names.to_vec();
        wanted.sort_unstable();
        proxies.len() == names.len() && synced == wanted
    }

    /// `weft run --service SERVICE --version VERSION --name NAME -- weft echo --name NAME`,
    /// with a fresh bootstrap token; returns once its sidecar printed its three listeners.
    pub async fn run_echo(
        &self,
        service: &str,
        version: &str,
        name: &str,
    ) -> anyhow::Result<Workload> {
        let token = self.token(service).await?;
        let ca = self.data_dir().join("root-cert.pem");
        let grpc = self.grpc.to_string();
        let ca = ca.to_str().context("non-UTF-8 temporary directory")?;
        let process = GroupProcess::start(
            [
                "run",
                "--service",
                service,
                "--version",
                version,
                "--name",
                name,
                "--control-plane",
                &grpc,
                "--ca-bundle",
                ca,
                "--",
                "weft",
                "echo",
                "--name",
                name,
            ],
            &[("WEFT_TOKEN", &token)],
        )?;
        let outbound = process.listener(3, "outbound")?;
        let admin = process.listener(3, "admin")?;
        Ok(Workload {
            process,
            outbound,
            admin,
        })
    }
}

fn spawn(dir: &Path, grpc: &str, admin: &str) -> anyhow::Result<WeftProcess> {
    let config = dir.join("config");
    let data = dir.join("data");
    WeftProcess::start(
        [
            "control".as_ref(),
            "--config-dir".as_ref(),
            config.as_os_str(),
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--listen".as_ref(),
            grpc.as_ref(),
            "--admin".as_ref(),
            admin.as_ref(),
        ],
        2,
    )
}

impl Drop for LiveControl {
    fn drop(&mut self) {
        drop(self.process.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn listener(process: &WeftProcess, name: &str) -> anyhow::Result<SocketAddr> {
    process
        .listeners()
        .iter()
        .find(|l| l.name.as_deref() == Some(name))
        .map(|l| l.addr)
        .with_context(|| format!("no `listening {name}` line"))
}

/// A `weft run` workload (the whole process group is SIGKILLed when dropped).
pub struct Workload {
    pub process: GroupProcess,
    pub outbound: SocketAddr,
    pub admin: SocketAddr,
}

/// One request of [`Traffic`]: when it was sent and how it was answered (the `x-echo-name` of a
/// 200, or what went wrong).
#[derive(Debug, Clone)]
pub struct Sent {
    pub at: Instant,
    pub answer: Result<String, String>,
}

/// Requests sent one after another (each on a fresh connection, 5 s timeout) through an
/// outbound listener to `host` until stopped.
pub struct Traffic {
    sent: Arc<Mutex<Vec<Sent>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    pub fn start(outbound: SocketAddr, host: &str) -> Traffic {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let host = host.to_string();
        let task = tokio::spawn({
            let sent = sent.clone();
            let stop = stop.clone();
            async move {
                while !stop.load(Ordering::SeqCst) {
                    let at = Instant::now();
                    let answer = one_request(outbound, &host).await;
                    sent.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(Sent { at, answer });
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
        Traffic { sent, stop, task }
    }

    /// The requests answered so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops after the request in flight and returns every request.
    pub async fn stop(self) -> Vec<Sent> {
        let Traffic { sent, stop, task } = self;
        stop.store(true, Ordering::SeqCst);
        let _ = task.await;
        let sent = sent.lock().unwrap_or_else(PoisonError::into_inner);
        sent.clone()
    }
}

async fn one_request(outbound: SocketAddr, host: &str) -> Result<String, String> {
    let call = async {
        let mut client = Client::connect(outbound, Version::HTTP_11).await?;
        let req = http::Request::get("/")
            .header(http::header::HOST, host)
            .body(Full::new(Bytes::new()))?;
        client.send(req).await
    };
    match tokio::time::timeout(Duration::from_secs(5), call).await {
        Err(_) => Err("timed out after 5s".to_string()),
        Ok(Err(err)) => Err(format!("{err:#}")),
        Ok(Ok(reply)) if reply.status != StatusCode::OK => {
            Err(format!("{}: {}", reply.status, reply.text()))
        }
        Ok(Ok(reply)) => reply
            .header("x-echo-name")
            .map(str::to_string)
            .ok_or_else(|| "200 without x-echo-name".to_string()),
    }
}
