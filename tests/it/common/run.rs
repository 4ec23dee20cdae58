//! Running a program.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;

/// What a finished child did.
pub struct Output {
    /// The command line, for failure messages.
    pub command: String,
    /// Exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Exit 0, or a failure showing everything.
    pub fn assert_success(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected success:\n{self}");
        self
    }

    /// A controlled exit: not a Rust panic (101, "panicked"), not an abort (134) or any
    /// other signal.
    pub fn assert_no_panic(&self) -> &Self {
        assert!(self.signal.is_none(), "killed by signal {:?}:\n{self}", self.signal);
        assert!(
            !matches!(self.code, Some(101 | 134)),
            "exit code {:?} looks like a panic or abort:\n{self}",
            self.code
        );
        assert!(!self.stderr_str().contains("panicked"), "stderr shows a panic:\n{self}");
        self
    }

    /// The protocol's error shape: exit 1 with a one-line message on stdout, no panic.
    /// Returns the message without its newline.
    pub fn assert_protocol_error(&self) -> String {
        self.assert_no_panic();
        assert_eq!(self.code, Some(1), "expected exit 1:\n{self}");
        let out = self.stdout_str();
        assert!(out.ends_with('\n') && out.trim_end().lines().count() == 1, "expected one line on stdout:\n{self}");
        out.trim_end().to_owned()
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  command: {}", self.command)?;
        writeln!(f, "  exit: code {:?}, signal {:?}", self.code, self.signal)?;
        writeln!(f, "  stdout: {:?}", String::from_utf8_lossy(&self.stdout))?;
        write!(f, "  stderr: {:?}", String::from_utf8_lossy(&self.stderr))
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&format!("{:?}", a.to_string_lossy()));
    }
    s
}

fn read_all_in_thread(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Run `cmd` with `stdin` fed to it, stdout and stderr captured, and a deadline: a child
/// still running after `timeout` is killed and the test fails with what it printed.
pub fn run_command(mut cmd: Command, stdin: &[u8], timeout: Duration) -> Output {
    let command = describe(&cmd);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let mut child_stdin = child.stdin.take().expect("piped");
    let input = stdin.to_vec();
    // The child may exit without reading everything (that is a valid answer to a huge
    // input); a broken pipe here is not the test's concern.
    std::thread::spawn(move || {
        let _ = child_stdin.write_all(&input);
    });
    wait_child(child, &command, timeout)
}

/// Wait for a child spawned with piped stdout and stderr (its stdin already dealt with),
/// capturing both, with a deadline: past `timeout` it is killed and the test fails.
pub fn wait_child(mut child: Child, command: &str, timeout: Duration) -> Output {
    let command = command.to_owned();
    let out_rx = read_all_in_thread(child.stdout.take().expect("piped"));
    let err_rx = read_all_in_thread(child.stderr.take().expect("piped"));
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let grace = Duration::from_secs(2);
                let stdout = out_rx.recv_timeout(grace).unwrap_or_default();
                let stderr = err_rx.recv_timeout(grace).unwrap_or_default();
                let out = Output { command, code: None, signal: Some(9), stdout, stderr };
                panic!("timed out after {timeout:?} and was killed:\n{out}");
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => panic!("waiting for {command}: {e}"),
        }
    };
    // A grandchild that kept our pipes open would block these forever.
    let rest = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(5));
    let stdout = out_rx
        .recv_timeout(rest)
        .unwrap_or_else(|_| panic!("{command} exited but something it started keeps its stdout open"));
    let stderr = err_rx
        .recv_timeout(rest)
        .unwrap_or_else(|_| panic!("{command} exited but something it started keeps its stderr open"));
    #[cfg(unix)]
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    #[cfg(not(unix))]
    let signal = None;
    Output { command, code: status.code(), signal, stdout, stderr }
}

/// Run `program args` in `env` (and nothing else of the test's environment) with `stdin`.
pub fn run(program: impl AsRef<Path>, args: &[&str], stdin: &[u8], env: &TestEnv) -> Output {
    let mut cmd = env.command(program);
    cmd.args(args);
    run_command(cmd, stdin, DEFAULT_TIMEOUT)
}

/// Poll `ready` until it returns `Some`, failing the test with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
