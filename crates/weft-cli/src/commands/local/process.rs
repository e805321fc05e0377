//! Child processes of `weft run`, `weft up` and `weft demo`: started with their output
//! prefixed by a label (`[reviews-v1] ...`), their `listening NAME on ADDR` lines collected,
//! their exit observed, and stopped with SIGTERM, then SIGKILL after a grace period.
//!
//! Children stay in the supervisor's process group, so a terminal's Ctrl-C reaches all of them
//! at once and a test harness can stop a whole tree by signalling the group.

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

/// How long a child may take to exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// One `listening [NAME ]on IP:PORT` line a child printed first on stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Empty for single-listener servers (`listening on IP:PORT`).
    pub name: String,
    pub addr: SocketAddr,
}

impl Listener {
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.strip_prefix("listening ")?;
        let (name, addr) = match rest.strip_prefix("on ") {
            Some(addr) => ("", addr),
            None => rest.split_once(" on ")?,
        };
        Some(Self {
            name: name.to_string(),
            addr: addr.parse().ok()?,
        })
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            write!(f, "listening on {}", self.addr)
        } else {
            write!(f, "listening {} on {}", self.name, self.addr)
        }
    }
}

/// Where children's output lines go: this process's stdout and stderr, or one log file.
#[derive(Debug, Clone)]
pub enum Output {
    Terminal,
    File(Arc<Mutex<std::fs::File>>),
}

/// Which of a child's streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Output {
    /// Writes one line, whole (lines of concurrent children never interleave). Write errors
    /// (a closed pipe) are ignored: output is best effort, supervision is not.
    pub fn line(&self, stream: Stream, prefix: &str, line: &str) {
        match self {
            Output::Terminal if stream == Stream::Stdout => {
                let _ = writeln!(std::io::stdout().lock(), "{prefix}{line}");
            }
            Output::Terminal => {
                let _ = writeln!(std::io::stderr().lock(), "{prefix}{line}");
            }
            Output::File(file) => {
                let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = writeln!(file, "{prefix}{line}");
            }
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// Shown as `[label] ` before every output line, and in logs.
    pub label: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    /// Variables of this process the child does not inherit.
    pub env_remove: Vec<OsString>,
    /// Let the child read this process's stdin (else it reads nothing).
    pub inherit_stdin: bool,
}

impl ChildSpec {
    pub fn new(label: impl Into<String>, program: impl Into<PathBuf>) -> Self {
        Self {
            label: label.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            inherit_stdin: false,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// Its status could not be read.
    Unknown,
}

impl Exit {
    fn from_status(status: std::io::Result<ExitStatus>) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match status {
            Ok(s) => match (s.code(), s.signal()) {
                (Some(code), _) => Exit::Code(code),
                (None, Some(signal)) => Exit::Signal(signal),
                (None, None) => Exit::Unknown,
            },
            Err(_) => Exit::Unknown,
        }
    }

    /// The exit code a shell would report: the code, or 128 + the signal.
    pub fn code(self) -> u8 {
        let code = match self {
            Exit::Code(code) => code,
            Exit::Signal(signal) => 128 + signal,
            Exit::Unknown => 1,
        };
        u8::try_from(code & 0xff).unwrap_or(1)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit code {code}"),
            Exit::Signal(signal) => write!(f, "signal {signal}"),
            Exit::Unknown => f.write_str("unknown status"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Signal {
    Term,
    Kill,
}

/// A running child. Dropping the handle asks it to stop (SIGTERM, then SIGKILL after
/// [`STOP_GRACE`]) for as long as the runtime runs, and a child still running when the runtime
/// goes away gets SIGTERM; callers stop children explicitly.
#[derive(Debug)]
pub struct Child {
    label: String,
    signals: mpsc::UnboundedSender<Signal>,
    exit: watch::Receiver<Option<Exit>>,
    listeners: mpsc::UnboundedReceiver<Listener>,
}

/// Starts `spec`: stdout and stderr lines go to `output` prefixed with `[label] `, except the
/// `listening ...` lines printed first on stdout, which [`Child::listeners`] returns.
pub fn spawn(spec: ChildSpec, output: &Output) -> anyhow::Result<Child> {
    let mut command = tokio::process::Command::new(&spec.program);
    for key in &spec.env_remove {
        command.env_remove(key);
    }
    command
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(if spec.inherit_stdin {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().with_context(|| {
        format!(
            "cannot start {} ({})",
            spec.label,
            spec.program.to_string_lossy()
        )
    })?;
    debug!(label = %spec.label, pid = ?child.id(), program = %spec.program.display(), "started");
    let prefix = format!("[{}] ", spec.label);
    let (listener_tx, listeners) = mpsc::unbounded_channel();
    if let Some(stdout) = child.stdout.take() {
        let pump = pump(stdout, output.clone(), Stream::Stdout, prefix.clone());
        tokio::spawn(pump.announcing(listener_tx));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(pump(stderr, output.clone(), Stream::Stderr, prefix).run());
    }
    let (signals, signal_rx) = mpsc::unbounded_channel();
    let (exit_tx, exit) = watch::channel(None);
    tokio::spawn(own(child, spec.label.clone(), signal_rx, exit_tx));
    Ok(Child {
        label: spec.label,
        signals,
        exit,
        listeners,
    })
}

impl Child {
    /// Waits up to `within` until the child has printed a `listening NAME on ...` line for
    /// every name in `names`, and returns every listening line it printed by then. Fails when
    /// the child exits or prints something else first.
    pub async fn listeners(
        &mut self,
        names: &[&str],
        within: Duration,
    ) -> anyhow::Result<Vec<Listener>> {
        let mut seen: Vec<Listener> = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        while !names.iter().all(|n| seen.iter().any(|l| l.name == *n)) {
            match tokio::time::timeout_at(deadline, self.listeners.recv()).await {
                Ok(Some(listener)) => seen.push(listener),
                Ok(None) => {
                    let exit = self.try_exit();
                    anyhow::bail!(
                        "{} did not announce its listeners {names:?} (got {seen:?}){}",
                        self.label,
                        exit.map_or(String::new(), |e| format!("; it ended with {e}"))
                    );
                }
                Err(_) => anyhow::bail!(
                    "{} did not announce its listeners {names:?} within {within:?} (got {seen:?})",
                    self.label
                ),
            }
        }
        while let Ok(listener) = self.listeners.try_recv() {
            seen.push(listener);
        }
        Ok(seen)
    }

    /// A receiver that turns `Some` when the child ends.
    pub fn exit_watch(&self) -> watch::Receiver<Option<Exit>> {
        self.exit.clone()
    }

    /// How it ended, if it has.
    pub fn try_exit(&self) -> Option<Exit> {
        *self.exit.borrow()
    }

    /// Waits until it ends.
    pub async fn wait(&mut self) -> Exit {
        match self.exit.wait_for(Option::is_some).await {
            Ok(exit) => exit.unwrap_or(Exit::Unknown),
            Err(_) => Exit::Unknown,
        }
    }

    /// Sends SIGTERM (unless it already ended).
    pub fn terminate(&self) {
        if self.try_exit().is_none() {
            let _ = self.signals.send(Signal::Term);
        }
    }

    /// SIGTERM, then SIGKILL if it is still running after `grace`.
    pub async fn stop(&mut self, grace: Duration) -> Exit {
        self.terminate();
        self.wait_or_kill(grace).await
    }

    /// Waits up to `grace` for it to end, then kills it.
    async fn wait_or_kill(&mut self, grace: Duration) -> Exit {
        if let Ok(exit) = tokio::time::timeout(grace, self.wait()).await {
            return exit;
        }
        warn!(label = %self.label, ?grace, "still running after SIGTERM; killing it");
        let _ = self.signals.send(Signal::Kill);
        self.wait().await
    }
}

/// Remembers the children started through it, so that a supervisor interrupted while
/// starting (the handles dropped, each child told to stop) can wait for them to be gone.
#[derive(Debug, Clone, Default)]
pub struct Tracker(Arc<Mutex<Vec<watch::Receiver<Option<Exit>>>>>);

impl Tracker {
    pub fn track(&self, child: &Child) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(child.exit_watch());
    }

    /// Waits up to `within` until every tracked child has ended.
    pub async fn wait_all(&self, within: Duration) {
        let exits: Vec<_> = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let all = async {
            for mut exit in exits {
                let _ = exit.wait_for(Option::is_some).await;
            }
        };
        let _ = tokio::time::timeout(within, all).await;
    }
}

/// Stops several children at once: SIGTERM to all, then SIGKILL to those still running after
/// `grace`.
pub async fn stop_all(children: &mut [&mut Child], grace: Duration) {
    for child in children.iter() {
        child.terminate();
    }
    let deadline = tokio::time::Instant::now() + grace;
    for child in children.iter_mut() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        child.wait_or_kill(left).await;
    }
}

/// A child that gets SIGTERM if it is dropped unreaped: when the supervisor goes away
/// abruptly (its runtime torn down), a `weft run` child still stops its own children, which a
/// SIGKILL would orphan.
struct TermOnDrop(tokio::process::Child);

impl Drop for TermOnDrop {
    fn drop(&mut self) {
        deliver(&mut self.0, Signal::Term);
    }
}

/// Owns the process: reaps it and delivers signals (never to a reaped pid). When the handle
/// is dropped, stops it.
async fn own(
    child: tokio::process::Child,
    label: String,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    exit: watch::Sender<Option<Exit>>,
) {
    let mut child = TermOnDrop(child);
    let child = &mut child.0;
    let mut abandoned = false;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            signal = signals.recv(), if !abandoned => match signal {
                Some(signal) => deliver(child, signal),
                None => {
                    abandoned = true;
                    deliver(child, Signal::Term);
                    let killed = tokio::time::timeout(STOP_GRACE, child.wait()).await;
                    match killed {
                        Ok(status) => break status,
                        Err(_) => deliver(child, Signal::Kill),
                    }
                }
            },
        }
    };
    let exit_status = Exit::from_status(status);
    debug!(%label, exit = %exit_status, "ended");
    let _ = exit.send(Some(exit_status));
}

fn deliver(child: &mut tokio::process::Child, signal: Signal) {
    match signal {
        Signal::Term => {
            let pid = child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .and_then(rustix::process::Pid::from_raw);
            if let Some(pid) = pid
                && let Err(err) = rustix::process::kill_process(pid, rustix::process::Signal::TERM)
            {
                debug!(error = %err, "SIGTERM failed");
            }
        }
        Signal::Kill => {
            if let Err(err) = child.start_kill() {
                debug!(error = %err, "SIGKILL failed");
            }
        }
    }
}

/// Copies a child's output stream line by line to an [`Output`].
struct Pump<R> {
    reader: R,
    output: Output,
    stream: Stream,
    prefix: String,
}

fn pump<R: AsyncRead + Unpin>(
    reader: R,
    output: Output,
    stream: Stream,
    prefix: String,
) -> Pump<R> {
    Pump {
        reader,
        output,
        stream,
        prefix,
    }
}

impl<R: AsyncRead + Unpin> Pump<R> {
    async fn run(self) {
        self.copy(None).await;
    }

    /// Sends the leading `listening ...` lines to `listeners` instead of the output.
    async fn announcing(self, listeners: mpsc::UnboundedSender<Listener>) {
        self.copy(Some(listeners)).await;
    }

    async fn copy(self, mut announcing: Option<mpsc::UnboundedSender<Listener>>) {
        let mut reader = BufReader::new(self.reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&buf);
            let line = text.trim_end_matches(['\r', '\n']);
            if let Some(tx) = &announcing {
                if let Some(listener) = Listener::parse(line) {
                    let _ = tx.send(listener);
                    continue;
                }
                announcing = None;
            }
            self.output.line(self.stream, &self.prefix, line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listening_lines() {
        let named = Listener::parse("listening outbound on 127.0.0.1:15001").unwrap();
        assert_eq!(named.name, "outbound");
        assert_eq!(named.addr.port(), 15001);
        assert_eq!(named.to_string(), "listening outbound on 127.0.0.1:15001");
        let unnamed = Listener::parse("listening on [::1]:80").unwrap();
        assert_eq!(unnamed.name, "");
        assert_eq!(unnamed.to_string(), "listening on [::1]:80");
        let upstream = Listener::parse("listening upstream/ratings on 127.0.0.1:9081").unwrap();
        assert_eq!(upstream.name, "upstream/ratings");
        for line in [
            "",
            "listening",
            "listening on x",
            "INFO listening on 1.2.3.4:5",
        ] {
            assert_eq!(Listener::parse(line), None, "{line:?}");
        }
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(Exit::Code(3).code(), 3);
        assert_eq!(Exit::Signal(15).code(), 143);
        assert_eq!(Exit::Unknown.code(), 1);
    }

    fn sh(label: &str, script: &str) -> ChildSpec {
        ChildSpec::new(label, "/bin/sh").arg("-c").arg(script)
    }

    #[tokio::test]
    async fn collects_listeners_then_prefixes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        let file = std::fs::File::create(&log).unwrap();
        let output = Output::File(Arc::new(Mutex::new(file)));
        let script = "echo 'listening admin on 127.0.0.1:1'; echo 'listening grpc on 127.0.0.1:2'; \
                      echo hello; echo oops >&2; echo 'listening late on 127.0.0.1:3'";
        let mut child = spawn(sh("kid", script), &output).unwrap();
        let listeners = child
            .listeners(&["grpc", "admin"], Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(listeners.len(), 2);
        assert_eq!(child.wait().await, Exit::Code(0));
        // The pumps finish at EOF, just after the exit.
        let mut text = String::new();
        for _ in 0..200 {
            text = std::fs::read_to_string(&log).unwrap();
            if text.lines().count() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(text.contains("[kid] hello\n"), "{text}");
        assert!(text.contains("[kid] oops\n"), "{text}");
        assert!(
            text.contains("[kid] listening late on 127.0.0.1:3\n"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn missing_listeners_are_an_error_naming_the_exit() {
        let mut child = spawn(sh("quiet", "exit 3"), &Output::Terminal).unwrap();
        let err = child
            .listeners(&["admin"], Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("quiet"), "{err}");
        assert_eq!(child.wait().await, Exit::Code(3));
    }

    #[tokio::test]
    async fn stop_sends_sigterm_then_kills() {
        let mut polite = spawn(sh("polite", "sleep 30"), &Output::Terminal).unwrap();
        assert_eq!(polite.stop(Duration::from_secs(5)).await, Exit::Signal(15));
        let stubborn = "trap '' TERM; echo 'listening on 127.0.0.1:1'; while :; do sleep 1; done";
        let mut stubborn = spawn(sh("stubborn", stubborn), &Output::Terminal).unwrap();
        stubborn
            .listeners(&[""], Duration::from_secs(10))
            .await
            .unwrap();
        let exit = stubborn.stop(Duration::from_millis(300)).await;
        assert_eq!(exit, Exit::Signal(9));
    }
}
