//! [`GroupProcess`]: a `weft` command that starts processes of its own (`weft run`, `weft up`,
//! `weft demo`), run in a new process group so that the whole tree can be checked for
//! leftovers and is killed when the handle drops, whatever happened to the test.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{Listener, START_DEADLINE, try_weft_bin, wait_until};

/// A `weft` process leading its own process group.
#[derive(Debug)]
pub struct GroupProcess {
    child: Child,
    command: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// How long the output readers may take to reach the end once the process exited (longer
/// only if something it started still holds its stdout or stderr).
const DRAIN: Duration = Duration::from_secs(2);

impl GroupProcess {
    /// Runs `weft ARGS` with extra environment variables, in a new process group.
    pub fn start<I, S>(args: I, env: &[(&str, &str)]) -> anyhow::Result<GroupProcess>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let bin = try_weft_bin()?;
        let mut command = Command::new(&bin);
        command.args(args).process_group(0);
        for (k, v) in env {
            command.env(k, v);
        }
        let shown = format!("{command:?}");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {shown}"))?;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(collect_lines(out, stdout.clone()));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(collect_text(err, stderr.clone()));
        }
        Ok(GroupProcess {
            child,
            command: shown,
            stdout,
            stderr,
            readers,
        })
    }

    /// Waits for the first `count` stdout lines, which must all be `listening [NAME ]on ...`.
    pub fn listeners(&self, count: usize) -> anyhow::Result<Vec<Listener>> {
        let waited = wait_until(START_DEADLINE, || self.stdout_lines().len() >= count);
        let lines = self.stdout_lines();
        if waited.is_err() {
            bail!(
                "{} printed {} of {count} listening lines within {START_DEADLINE:?}: {lines:?}\nstderr:\n{}",
                self.command,
                lines.len(),
                self.stderr()
            );
        }
        lines[..count]
            .iter()
            .map(|line| {
                Listener::parse(line)
                    .with_context(|| format!("expected a listening line, got {line:?}"))
            })
            .collect()
    }

    /// The address of `listening NAME on ...` among the first `count` lines.
    pub fn listener(&self, count: usize, name: &str) -> anyhow::Result<std::net::SocketAddr> {
        self.listeners(count)?
            .into_iter()
            .find(|l| l.name.as_deref() == Some(name))
            .map(|l| l.addr)
            .with_context(|| format!("no `listening {name}` line"))
    }

    /// Waits up to `within` for a stdout line that `wanted` accepts, and returns it.
    pub fn wait_for_line(
        &self,
        within: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let mut found = None;
        let waited = wait_until(within, || {
            found = self.stdout_lines().into_iter().find(|l| wanted(l));
            found.is_some()
        });
        match (found, waited) {
            (Some(line), _) => Ok(line),
            _ => bail!(
                "{}: no such stdout line within {within:?}; stdout:\n{}\nstderr:\n{}",
                self.command,
                self.stdout_lines().join("\n"),
                self.stderr()
            ),
        }
    }

    /// Waits up to `within` until stderr contains `text`.
    pub fn wait_for_stderr(&self, within: Duration, text: &str) -> anyhow::Result<()> {
        if wait_until(within, || self.stderr().contains(text)).is_err() {
            bail!(
                "{}: {text:?} not on stderr within {within:?}; stderr:\n{}",
                self.command,
                self.stderr()
            );
        }
        Ok(())
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// SIGTERM to the leader only: it must stop the processes it started.
    pub fn send_sigterm(&mut self) -> anyhow::Result<()> {
        signal("-TERM", &self.child.id().to_string())
    }

    /// Whether everything the leader printed has been read.
    fn drained(&self) -> bool {
        self.readers.iter().all(JoinHandle::is_finished)
    }

    /// Waits up to `within` for the leader to exit, then (briefly) for its output to be read
    /// to the end; blocks the thread.
    pub fn wait_exit(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        let mut status = None;
        let waited = wait_until(within, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        match (status, waited) {
            (Some(status), _) => {
                let _ = wait_until(DRAIN, || self.drained());
                Ok(status)
            }
            _ => bail!(
                "{} still running after {within:?}; stderr:\n{}",
                self.command,
                self.stderr()
            ),
        }
    }

    /// [`wait_exit`](Self::wait_exit) on a blocking thread, for async tests.
    pub async fn wait_exit_async(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                let drain = Instant::now();
                while !self.drained() && drain.elapsed() < DRAIN {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                return Ok(status);
            }
            if started.elapsed() >= within {
                bail!(
                    "{} still running after {within:?}; stderr:\n{}",
                    self.command,
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether any process of the group is still alive (after the leader was reaped, only
    /// what it left behind).
    pub fn group_alive(&self) -> bool {
        signal("-0", &format!("-{}", self.child.id())).is_ok()
    }

    /// Waits up to `within` until no process of the group is left.
    pub fn wait_group_gone(&self, within: Duration) -> anyhow::Result<()> {
        if wait_until(within, || !self.group_alive()).is_err() {
            let ps = Command::new("ps")
                .args(["-o", "pid,args", "-g", &self.child.id().to_string()])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            bail!("{} left processes behind:\n{ps}", self.command);
        }
        Ok(())
    }
}

impl Drop for GroupProcess {
    fn drop(&mut self) {
        let _ = signal("-KILL", &format!("-{}", self.child.id()));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kill SIGNAL -- TARGET` (a negative target is a process group).
fn signal(signal: &str, target: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args([signal, "--", target])
        .stderr(Stdio::null())
        .status()
        .context("cannot run kill")?;
    if !status.success() {
        bail!("kill {signal} {target} failed: {status}");
    }
    Ok(())
}

fn collect_lines(out: impl Read + Send + 'static, sink: Arc<Mutex<Vec<String>>>) -> JoinHandle<()> {
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
                .push(line);
        }
    })
}

fn collect_text(err: impl Read + Send + 'static, sink: Arc<Mutex<String>>) -> JoinHandle<()> {
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
