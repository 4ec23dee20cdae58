//! Running another program under a deadline: the identity `command` source and the
//! resolver's calls to other credential helpers both need it. Stdout is read with a size
//! bound; stderr is whatever the caller set (usually inherited: the program's hints are for
//! the user).

use std::io::{self, Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A program that finished in time.
pub struct Finished {
    pub status: ExitStatus,
    /// At most `max_stdout + 1` bytes: more than `max_stdout` means it printed too much.
    pub stdout: Vec<u8>,
}

#[derive(Debug)]
pub enum RunError {
    /// It could not be started (not installed, not executable).
    Spawn(io::Error),
    /// It did not finish within the timeout and was killed, or something it started kept its
    /// stdout open past the deadline.
    TimedOut,
    /// Waiting for it or reading its stdout failed.
    Io(io::Error),
}

/// Run `cmd` with `stdin` fed to it (none: stdin is /dev/null), stdout captured up to
/// `max_stdout + 1` bytes, killed when `timeout` passes.
pub fn run_bounded(
    cmd: &mut Command,
    stdin: Option<&[u8]>,
    max_stdout: u64,
    timeout: Duration,
) -> Result<Finished, RunError> {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped());
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    let writer = child.stdin.take().zip(stdin.map(<[u8]>::to_vec)).map(|(mut pipe, input)| {
        // A program may exit without reading its input (a valid answer); a broken pipe is fine.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        })
    });
    let mut stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let result = (&mut stdout).take(max_stdout + 1).read_to_end(&mut out).map(|_| out);
        let _ = tx.send(result);
    });
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunError::TimedOut);
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(10));
            }
            Err(e) => return Err(RunError::Io(e)),
        }
    };
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    // Something the program started may hold its stdout open; do not wait past the deadline.
    let rest = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(200));
    match rx.recv_timeout(rest) {
        Ok(Ok(stdout)) => Ok(Finished { status, stdout }),
        Ok(Err(e)) => Err(RunError::Io(e)),
        Err(_) => Err(RunError::TimedOut),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn feeds_stdin_bounds_stdout_and_kills_on_timeout() {
        let done = run_bounded(Command::new("cat").stderr(Stdio::null()), Some(b"hello"), 16, Duration::from_secs(10))
            .unwrap();
        assert!(done.status.success());
        assert_eq!(done.stdout, b"hello");

        let big = run_bounded(Command::new("yes").stderr(Stdio::null()), None, 1000, Duration::from_secs(10));
        // `yes` never ends: either it is killed at the deadline or it fills the bound first and
        // is then killed; both are bounded outcomes.
        if let Ok(done) = big {
            assert_eq!(done.stdout.len(), 1001);
        }

        let slow = run_bounded(Command::new("sleep").arg("30"), None, 16, Duration::from_millis(200));
        assert!(matches!(slow, Err(RunError::TimedOut)));

        let missing = run_bounded(&mut Command::new("/nonexistent/program"), None, 16, Duration::from_secs(1));
        assert!(matches!(missing, Err(RunError::Spawn(_))));
    }
}
