//! The control plane's admin API as the CLI commands use it: where it is (`--server`,
//! `WEFT_SERVER`), the admin token (`WEFT_ADMIN_TOKEN`, else `--token-file`), one plaintext
//! HTTP/1.1 request per call, and how answers map to exit codes (0 ok, 1 rejected, 2 the
//! server is unreachable or the request is unusable). Also the plain tables the commands print.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::EXIT_USAGE;

/// Exit code for a request the control plane refused (invalid, conflict, not found).
pub const EXIT_REJECTED: u8 = 1;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the control plane's admin API is and how to authenticate to it.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The control plane's admin API.
    #[arg(long, env = "WEFT_SERVER", default_value = "http://127.0.0.1:15014")]
    pub server: String,
    /// File holding the admin token (the WEFT_ADMIN_TOKEN variable takes precedence).
    #[arg(long, default_value = "./weft-data/admin.token")]
    pub token_file: PathBuf,
}

/// A decoded answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub json: serde_json::Value,
}

impl Reply {
    /// The server's error message.
    pub fn error(&self) -> String {
        self.json.get("error").and_then(|e| e.as_str()).map_or_else(
            || format!("the control plane answered {}", self.status),
            str::to_string,
        )
    }

    /// Prints the error and returns the exit code for a non-success answer.
    pub fn fail(&self) -> ExitCode {
        eprintln!("error: {}", self.error());
        if self.status == StatusCode::UNAUTHORIZED {
            eprintln!(
                "hint: set WEFT_ADMIN_TOKEN or --token-file to the control plane's <data-dir>/admin.token"
            );
            return ExitCode::from(EXIT_USAGE);
        }
        ExitCode::from(EXIT_REJECTED)
    }
}

/// A client of one control plane.
pub struct AdminClient {
    base: String,
    token: Option<String>,
    client: Client<HttpConnector, Full<Bytes>>,
    runtime: tokio::runtime::Runtime,
}

impl AdminClient {
    pub fn new(args: &ServerArgs) -> anyhow::Result<AdminClient> {
        let base = args.server.trim_end_matches('/').to_string();
        let uri: Uri = base
            .parse()
            .with_context(|| format!("--server {:?} is not a URL", args.server))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            anyhow::bail!(
                "--server {:?}: expected http://HOST:PORT (the admin API is plaintext)",
                args.server
            );
        }
        let token = std::env::var("WEFT_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .or_else(|| std::fs::read_to_string(&args.token_file).ok())
            .map(|t| t.trim().to_string());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let client = Client::builder(TokioExecutor::new()).build_http();
        Ok(AdminClient {
            base,
            token,
            client,
            runtime,
        })
    }

    /// Sends one request; `Err` when the server cannot be reached or answers garbage.
    pub fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> anyhow::Result<Reply> {
        let url = format!("{}{path_and_query}", self.base);
        let mut builder = Request::builder().method(method).uri(&url);
        if let Some(token) = &self.token {
            builder = builder.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some((content_type, bytes)) => {
                builder = builder.header(http::header::CONTENT_TYPE, content_type);
                Full::new(Bytes::from(bytes))
            }
            None => Full::default(),
        };
        let request = builder.body(body)?;
        self.runtime.block_on(async {
            let response = tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(request))
                .await
                .with_context(|| format!("{url}: no answer within {REQUEST_TIMEOUT:?}"))?
                .with_context(|| format!("cannot reach the control plane at {}", self.base))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .with_context(|| format!("{url}: reading the answer"))?
                .to_bytes();
            let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                serde_json::json!({"error": String::from_utf8_lossy(&bytes).trim().to_string()})
            });
            Ok(Reply { status, json })
        })
    }

    /// [`call`](Self::call), printing the problem when the server is unreachable.
    pub fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Reply, ExitCode> {
        self.call(method, path_and_query, body).map_err(|err| {
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_USAGE)
        })
    }
}

/// Percent-encodes a query value or path segment.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Prints rows under a header, columns padded to their widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let text: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c.to_string()
                } else {
                    format!("{c:<width$}", width = widths[i])
                }
            })
            .collect();
        println!("{}", text.join("   "));
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
