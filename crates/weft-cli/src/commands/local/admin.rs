//! The control plane's admin API as `weft up` and `weft demo` use it: apply and delete
//! resources, create bootstrap tokens, and wait until every proxy has ACKed the config.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;

use super::http::{Reply, request};

/// How long one admin request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the proxies' sync state is polled.
const POLL: Duration = Duration::from_millis(100);

/// A client of `weft control`'s admin listener.
#[derive(Debug, Clone)]
pub struct Admin {
    addr: SocketAddr,
    /// `Bearer <admin.token>`.
    authorization: String,
}

/// One row of `GET /api/proxies`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyRow {
    pub name: String,
    pub service: String,
    pub version: String,
    /// `SYNCED`, `STALE` or `NACK: <reason>`.
    pub status: String,
    #[serde(default)]
    pub acked_version: Option<u64>,
}

impl ProxyRow {
    pub fn synced(&self) -> bool {
        self.status.eq_ignore_ascii_case("SYNCED")
    }
}

/// The ACKed config version of each proxy, by name: taken before a change so that
/// [`Admin::wait_synced`] can tell when the change has reached every proxy.
pub type Versions = BTreeMap<String, u64>;

impl Admin {
    /// A client for the admin listener at `addr`, with the token `weft control` wrote to
    /// `DATA_DIR/admin.token`.
    pub fn new(addr: SocketAddr, token: &str) -> Self {
        Self {
            addr,
            authorization: format!("Bearer {}", token.trim()),
        }
    }

    /// Reads the token from `data_dir/admin.token`.
    pub fn from_data_dir(addr: SocketAddr, data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join("admin.token");
        let token = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the admin token {}", path.display()))?;
        Ok(Self::new(addr, &token))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> anyhow::Result<Reply> {
        let headers = [
            ("authorization", self.authorization.as_str()),
            ("content-type", content_type),
        ];
        request(self.addr, method, path, &headers, body, REQUEST_TIMEOUT)
            .await
            .with_context(|| format!("admin API {path}"))
    }

    /// Applies multi-document YAML, all or nothing; `name` names it in error messages.
    pub async fn apply(&self, name: &str, yaml: &str) -> anyhow::Result<()> {
        let path = format!("/api/apply?file={}", encode(name));
        let body = Bytes::from(yaml.to_string());
        let reply = self
            .call(Method::POST, &path, "application/yaml", body)
            .await?;
        if reply.status != StatusCode::OK {
            bail!(
                "applying {name} failed ({}): {}",
                reply.status,
                error_text(&reply)
            );
        }
        Ok(())
    }

    /// Applies a file.
    pub async fn apply_file(&self, path: &Path) -> anyhow::Result<()> {
        let yaml =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        self.apply(&path.display().to_string(), &yaml).await
    }

    /// Deletes one applied resource; `false` when there was none.
    pub async fn delete(&self, kind: &str, namespace: &str, name: &str) -> anyhow::Result<bool> {
        let path = format!(
            "/api/resources/{}/{}/{}",
            encode(kind),
            encode(namespace),
            encode(name)
        );
        let reply = self
            .call(Method::DELETE, &path, "text/plain", Bytes::new())
            .await?;
        match reply.status {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            status => bail!(
                "deleting {kind} {namespace}/{name} failed ({status}): {}",
                error_text(&reply)
            ),
        }
    }

    /// A bootstrap token for proxies of `namespace`/`service_account`.
    pub async fn create_token(
        &self,
        namespace: &str,
        service_account: &str,
    ) -> anyhow::Result<String> {
        let body = serde_json::json!({"namespace": namespace, "serviceAccount": service_account});
        let reply = self
            .call(
                Method::POST,
                "/api/tokens",
                "application/json",
                Bytes::from(body.to_string()),
            )
            .await?;
        if reply.status != StatusCode::OK {
            bail!(
                "creating a token for {namespace}/{service_account} failed ({}): {}",
                reply.status,
                error_text(&reply)
            );
        }
        reply.json()?["token"]
            .as_str()
            .map(str::to_string)
            .context("the token answer has no \"token\"")
    }

    /// Every connected proxy.
    pub async fn proxies(&self) -> anyhow::Result<Vec<ProxyRow>> {
        let reply = self
            .call(Method::GET, "/api/proxies", "text/plain", Bytes::new())
            .await?;
        if reply.status != StatusCode::OK {
            bail!(
                "listing proxies failed ({}): {}",
                reply.status,
                error_text(&reply)
            );
        }
        #[derive(Deserialize)]
        struct Proxies {
            proxies: Vec<ProxyRow>,
        }
        let proxies: Proxies = serde_json::from_slice(&reply.body)
            .with_context(|| format!("unexpected /api/proxies answer: {}", reply.text()))?;
        Ok(proxies.proxies)
    }

    /// The ACKed version of every proxy now.
    pub async fn versions(&self) -> anyhow::Result<Versions> {
        Ok(self
            .proxies()
            .await?
            .into_iter()
            .map(|p| (p.name, p.acked_version.unwrap_or(0)))
            .collect())
    }

    /// Waits up to `within` until a proxy of every `(service, version)` in `expected` is
    /// connected, every proxy is SYNCED and, for each proxy in `before`, has ACKed a newer
    /// version than then (a change applied since has reached it). A proxy whose config the
    /// change did not touch gets no new version, so after `settle` SYNCED is enough.
    pub async fn wait_synced(
        &self,
        expected: &[(&str, &str)],
        before: Option<&Versions>,
        within: Duration,
    ) -> anyhow::Result<Vec<ProxyRow>> {
        let started = Instant::now();
        let settle = Duration::from_secs(3);
        let mut last = Vec::new();
        loop {
            match self.proxies().await {
                Ok(proxies) => {
                    let fresh = |p: &ProxyRow| {
                        before
                            .and_then(|b| b.get(&p.name))
                            .is_none_or(|v| p.acked_version.unwrap_or(0) > *v)
                    };
                    let present = expected.iter().all(|(service, version)| {
                        proxies
                            .iter()
                            .any(|p| p.service == *service && p.version == *version)
                    });
                    let synced = proxies.iter().all(ProxyRow::synced);
                    let settled = started.elapsed() >= settle || proxies.iter().all(fresh);
                    if present && synced && settled {
                        return Ok(proxies);
                    }
                    last = proxies;
                }
                Err(err) => tracing::debug!(error = %err, "polling proxies"),
            }
            if started.elapsed() >= within {
                let state: Vec<String> = last
                    .iter()
                    .map(|p| format!("{} {}", p.name, p.status))
                    .collect();
                bail!(
                    "proxies not in sync within {within:?}: expected {expected:?}, have [{}]",
                    state.join(", ")
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// The `error` of a JSON error answer (with its messages), else the body.
fn error_text(reply: &Reply) -> String {
    let Ok(json) = reply.json() else {
        return reply.text();
    };
    let error = json["error"].as_str().unwrap_or_default().to_string();
    let messages: Vec<&str> = json["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    if messages.is_empty() {
        error
    } else {
        format!("{error}\n  {}", messages.join("\n  "))
    }
}

/// Percent-encodes a path segment or query value.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_reserved_characters() {
        assert_eq!(encode("a b&c=d"), "a%20b%26c%3Dd");
        assert_eq!(encode("istio/vs.yaml"), "istio/vs.yaml");
    }
}
