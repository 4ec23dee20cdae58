//! Durations as `status` and the device messages print them: `45s`, `2m05s`, `3h07m`.
//!
//! Not [`latchkey_jwt::human_duration`] (`2m 5s`, `3d 2h`): that one words the JWT crate's own
//! errors, this one the helper's; their outputs differ above a minute, and both are shown to
//! users as they are.

/// `s` seconds, rounded down to the two largest units (seconds, minutes, hours).
pub fn human_secs(s: i64) -> String {
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::human_secs;

    #[test]
    fn two_units_at_most() {
        assert_eq!(human_secs(0), "0s");
        assert_eq!(human_secs(119), "119s");
        assert_eq!(human_secs(125), "2m05s");
        assert_eq!(human_secs(7199), "119m59s");
        assert_eq!(human_secs(7200 + 7 * 60 + 59), "2h07m");
    }
}
