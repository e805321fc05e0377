//! A running `weft` process: the addresses it listens on, its captured output, and its exit.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{START_DEADLINE, WaitTimeout, try_weft_bin, wait_until, wait_until_async};

/// One `listening [NAME ]on IP:PORT` line a server printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// `None` for single-listener servers that print `listening on IP:PORT`.
    pub name: Option<String>,
    pub addr: SocketAddr,
}

impl Listener {
    /// Parses `listening on IP:PORT` or `listening NAME on IP:PORT`.
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.strip_prefix("listening ")?;
        let (name, addr) = match rest.strip_prefix("on ") {
            Some(addr) => (None, addr),
            None => {
                let (name, addr) = rest.split_once(" on ")?;
                (Some(name.to_string()), addr)
            }
        };
        let addr = addr.parse().ok()?;
        Some(Self { name, addr })
    }
}

/// A `weft` child process, killed when dropped.
///
/// Its stdout and stderr are read by background threads so the child never blocks on a full
/// pipe; tests can inspect them (for access-log lines, or to explain a failure).
#[derive(Debug)]
pub struct WeftProcess {
    child: Child,
    command: String,
    listeners: Vec<Listener>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl WeftProcess {
    /// Runs `weft ARGS` and waits, up to [`START_DEADLINE`], for its first `listeners` stdout
    /// lines, each `listening [NAME ]on IP:PORT`.
    pub fn start<I, S>(args: I, listeners: usize) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let bin = try_weft_bin()?;
        let mut command = Command::new(&bin);
        command.args(args);
        let shown = format!("{command:?}");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {shown}"))?;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let lines = child
            .stdout
            .take()
            .map(|out| read_lines(out, stdout.clone()));
        let stderr_reader = child.stderr.take().map(|err| read_all(err, stderr.clone()));
        let mut process = Self {
            child,
            command: shown,
            listeners: Vec::new(),
            stdout,
            stderr,
            stderr_reader,
        };
        let deadline = Instant::now() + START_DEADLINE;
        let found = lines
            .context("stdout was not captured")
            .and_then(|lines| read_listeners(&lines, listeners, deadline));
        match found {
            Ok(found) => {
                process.listeners = found;
                Ok(process)
            }
            Err(err) => Err(process.fail_start(err)),
        }
    }

    /// The listeners announced at start, in the order they were printed.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every stdout line so far, the `listening` lines included.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Everything written to stderr so far (the logs).
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sends SIGTERM, as a supervisor would to stop the process.
    pub fn send_sigterm(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} already exited ({status}) before SIGTERM", self.command);
        }
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .context("cannot run kill")?;
        if !status.success() {
            bail!("kill -TERM {} failed: {status}", self.pid());
        }
        Ok(())
    }

    /// Waits up to `within` for the process to exit and returns how it exited. Blocks the
    /// thread: async tests use [`wait_exit_async`](Self::wait_exit_async).
    pub fn wait_exit(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        let mut exit = Ok(None);
        let waited = wait_until(within, || {
            exit = self.child.try_wait();
            !matches!(exit, Ok(None))
        });
        self.exit_or_timeout(exit, waited)
    }

    /// [`wait_exit`](Self::wait_exit) for async tests: polls without blocking the runtime, so
    /// the test's own client connections keep working (an HTTP/2 client must answer the
    /// server's GOAWAY ping for a graceful shutdown to finish early).
    pub async fn wait_exit_async(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        let mut exit = Ok(None);
        let waited = wait_until_async(within, || {
            exit = self.child.try_wait();
            std::future::ready(!matches!(exit, Ok(None)))
        })
        .await;
        self.exit_or_timeout(exit, waited)
    }

    fn exit_or_timeout(
        &self,
        exit: std::io::Result<Option<ExitStatus>>,
        waited: Result<(), WaitTimeout>,
    ) -> anyhow::Result<ExitStatus> {
        match (exit?, waited) {
            (Some(status), _) => Ok(status),
            (None, Err(timeout)) => bail!(
                "{} still running: {timeout}; stderr:\n{}",
                self.command,
                self.stderr()
            ),
            (None, Ok(())) => bail!("{} neither exited nor kept running", self.command),
        }
    }

    /// Kills the process after a failed start and explains the failure with its stderr.
    fn fail_start(mut self, err: anyhow::Error) -> anyhow::Error {
        let exited = self.child.try_wait().ok().flatten();
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The child is gone, so its stderr reaches EOF and the reader finishes promptly.
        if let Some(reader) = self.stderr_reader.take() {
            let _ = wait_until(Duration::from_secs(2), || reader.is_finished());
        }
        let exited = exited.map_or_else(|| "it was still running".to_string(), |s| s.to_string());
        let stderr = self.stderr();
        let stderr = if stderr.trim().is_empty() {
            "(stderr was empty)".to_string()
        } else {
            format!("its stderr:\n{stderr}")
        };
        anyhow::anyhow!(
            "starting {} failed ({exited}): {err:#}\n{stderr}",
            self.command
        )
    }
}

impl Drop for WeftProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Collects stdout lines into `sink` and forwards each one to the returned receiver.
fn read_lines(out: impl Read + Send + 'static, sink: Arc<Mutex<Vec<String>>>) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(out);
        let mut buf = Vec::new();
        while matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            buf.clear();
            sink.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line.clone());
            // The receiver goes away once the listening lines are read; later lines are kept
            // in `sink` only.
            let _ = tx.send(line);
        }
    });
    rx
}

/// Appends everything read from `err` to `sink` until EOF.
fn read_all(err: impl Read + Send + 'static, sink: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(err);
        let mut buf = Vec::new();
        while matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
            sink.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_str(&String::from_utf8_lossy(&buf));
            buf.clear();
        }
    })
}

fn read_listeners(
    lines: &Receiver<String>,
    count: usize,
    deadline: Instant,
) -> anyhow::Result<Vec<Listener>> {
    let mut listeners = Vec::with_capacity(count);
    while listeners.len() < count {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let line = match lines.recv_timeout(remaining) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                bail!("no `listening` line on stdout within {START_DEADLINE:?}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                bail!("stdout closed before the `listening` lines were printed")
            }
        };
        let listener = Listener::parse(&line).with_context(|| {
            format!(
                "stdout line {} should be `listening [NAME ]on IP:PORT`, got {line:?}",
                listeners.len() + 1
            )
        })?;
        listeners.push(listener);
    }
    Ok(listeners)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unnamed_and_named_listening_lines() {
        let unnamed = Listener::parse("listening on 127.0.0.1:8080").unwrap();
        assert_eq!(unnamed.name, None);
        assert_eq!(unnamed.addr, "127.0.0.1:8080".parse().unwrap());
        let named = Listener::parse("listening admin on [::1]:15000").unwrap();
        assert_eq!(named.name.as_deref(), Some("admin"));
        assert_eq!(named.addr, "[::1]:15000".parse().unwrap());
    }

    #[test]
    fn rejects_other_lines() {
        for line in [
            "",
            "listening",
            "listening on",
            "listening on localhost:80",
            "Listening on 127.0.0.1:1",
            "listening on 127.0.0.1:1 extra",
            "2024-01-01 INFO listening on 127.0.0.1:1",
        ] {
            assert_eq!(Listener::parse(line), None, "{line:?}");
        }
    }
}
