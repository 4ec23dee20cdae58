//! The one-line countdown shown on stderr while latchkey waits for a person in a browser:
//! during `login`, and during a `get` that renews an expired login session.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use crate::duration::human_secs;

/// A one-line countdown on stderr, only when stderr is a terminal.
pub struct Progress {
    tty: bool,
    label: String,
}

impl Progress {
    /// `label` says what is awaited ("waiting for the login to be approved"); without a
    /// terminal it is printed once, with one it heads a countdown.
    pub fn new(label: &str) -> Progress {
        let tty = std::io::stderr().is_terminal();
        if !tty {
            eprintln!("latchkey: {label}...");
        }
        Progress { tty, label: label.to_owned() }
    }

    /// Redraw the countdown line (cheap; called every ~100 ms).
    pub fn tick(&self, deadline: Instant) {
        if self.tty {
            let left = deadline.saturating_duration_since(Instant::now()).as_secs() as i64;
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2Klatchkey: {} ({} left, Ctrl-C to stop)", self.label, human_secs(left));
            let _ = err.flush();
        }
    }

    pub fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}
