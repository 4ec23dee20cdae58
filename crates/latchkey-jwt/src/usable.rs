//! Whether inspected [`Claims`] are usable now: audience, expiry with a margin, not-before with
//! Distribution's leeway.

use std::time::{Duration, SystemTime};

use crate::time::unix_secs;
use crate::{Claims, JwtError};

/// How far in the future `nbf` may be and still count as valid now: the same leeway Distribution
/// applies (it accepts a token from `nbf - 60 s` to `exp + 60 s`).
pub const NOT_BEFORE_LEEWAY: Duration = Duration::from_secs(60);

/// What [`check_usable_with`] requires of a token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usability<'a> {
    /// Refuse a token that expires within this much time from now.
    pub margin: Duration,
    /// The registry's service name, if known: `aud` must contain it.
    pub expected_audience: Option<&'a str>,
    /// Accept a token without `exp` (its lifetime is then unknown to latchkey).
    pub allow_missing_expiry: bool,
}

/// Whether a token is usable at `now` for at least `margin`: `aud` contains `expected_audience`
/// (if given), `exp` is present and more than `margin` ahead, and `nbf` is at most
/// [`NOT_BEFORE_LEEWAY`] ahead. Checks run in that order; the first failure is returned.
pub fn check_usable(
    claims: &Claims,
    now: SystemTime,
    margin: Duration,
    expected_audience: Option<&str>,
) -> Result<(), JwtError> {
    check_usable_with(claims, now, &Usability { margin, expected_audience, allow_missing_expiry: false })
}

/// [`check_usable`] with every requirement spelled out.
pub fn check_usable_with(claims: &Claims, now: SystemTime, req: &Usability<'_>) -> Result<(), JwtError> {
    let now = unix_secs(now).unwrap_or(0);
    if let Some(expected) = req.expected_audience
        && !claims.audience.iter().any(|a| a == expected)
    {
        return Err(JwtError::WrongAudience { expected: expected.to_owned(), found: claims.audience.clone() });
    }
    match claims.expires_at {
        None if req.allow_missing_expiry => {}
        None => return Err(JwtError::MissingExpiry),
        Some(exp) if exp <= now => return Err(JwtError::Expired { exp, ago: Duration::from_secs(now - exp) }),
        Some(exp) => {
            let left = Duration::from_secs(exp - now);
            if left <= req.margin {
                return Err(JwtError::ExpiresSoon { exp, left, margin: req.margin });
            }
        }
    }
    if let Some(nbf) = claims.not_before
        && nbf > now.saturating_add(NOT_BEFORE_LEEWAY.as_secs())
    {
        return Err(JwtError::NotYetValid { nbf, wait: Duration::from_secs(nbf - now) });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use std::time::UNIX_EPOCH;

    // --- check_usable -------------------------------------------------------------------------

    fn claims(exp: Option<u64>, nbf: Option<u64>, aud: &[&str]) -> Claims {
        Claims {
            algorithm: "ES256".into(),
            audience: aud.iter().map(|s| s.to_string()).collect(),
            expires_at: exp,
            not_before: nbf,
            ..Claims::default()
        }
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn usable_tokens_pass() {
        let c = claims(Some(T0 + 600), Some(T0 - 10), &["reg"]);
        check_usable(&c, at(T0), MIN, Some("reg")).unwrap();
        check_usable(&c, at(T0), MIN, None).unwrap();
        // nbf slightly ahead (clock skew) is fine.
        let c = claims(Some(T0 + 600), Some(T0 + 60), &["reg"]);
        check_usable(&c, at(T0), MIN, Some("reg")).unwrap();
        // A list holding the audience passes here; the flag tells callers it is a list.
        let c = claims(Some(T0 + 600), None, &["other", "reg"]);
        check_usable(&c, at(T0), MIN, Some("reg")).unwrap();
    }

    #[test]
    fn expired_token_message() {
        let c = claims(Some(T0), None, &["reg"]);
        let err = check_usable(&c, at(T0 + 150), MIN, Some("reg")).unwrap_err();
        assert_eq!(err, JwtError::Expired { exp: T0, ago: Duration::from_secs(150) });
        assert_eq!(err.to_string(), "token expired 2m 30s ago (exp 2026-11-22T22:00:00Z)");
        // exp == now is expired.
        let err = check_usable(&c, at(T0), Duration::ZERO, None).unwrap_err();
        assert_eq!(err.to_string(), "token expired 0s ago (exp 2026-11-22T22:00:00Z)");
    }

    #[test]
    fn expiring_within_margin_is_refused() {
        let c = claims(Some(T0 + 45), None, &[]);
        let err = check_usable(&c, at(T0), MIN, None).unwrap_err();
        assert_eq!(err, JwtError::ExpiresSoon { exp: T0 + 45, left: Duration::from_secs(45), margin: MIN });
        assert_eq!(
            err.to_string(),
            "token expires in 45s (exp 2026-11-22T22:00:45Z), within the required margin of 1m; \
             it would likely die in use"
        );
        let c = claims(Some(T0 + 60), None, &[]);
        assert!(check_usable(&c, at(T0), MIN, None).is_err(), "exactly the margin left is refused");
        let c = claims(Some(T0 + 61), None, &[]);
        check_usable(&c, at(T0), MIN, None).unwrap();
    }

    #[test]
    fn not_yet_valid_token_message() {
        let c = claims(Some(T0 + 9000), Some(T0 + 7200), &[]);
        let err = check_usable(&c, at(T0), MIN, None).unwrap_err();
        assert_eq!(err, JwtError::NotYetValid { nbf: T0 + 7200, wait: Duration::from_secs(7200) });
        assert_eq!(
            err.to_string(),
            "token is not valid yet: nbf 2026-11-23T00:00:00Z is 2h from now (allowed clock skew 1m); \
             check this machine's clock and the issuer's"
        );
        let c = claims(Some(T0 + 9000), Some(T0 + 61), &[]);
        assert!(matches!(check_usable(&c, at(T0), MIN, None), Err(JwtError::NotYetValid { .. })));
    }

    #[test]
    fn missing_expiry_is_an_error_unless_allowed() {
        let c = claims(None, None, &["reg"]);
        let err = check_usable(&c, at(T0), MIN, Some("reg")).unwrap_err();
        assert_eq!(err, JwtError::MissingExpiry);
        assert!(err.to_string().contains("no exp claim"));
        let lenient = Usability { margin: MIN, expected_audience: Some("reg"), allow_missing_expiry: true };
        check_usable_with(&c, at(T0), &lenient).unwrap();
        // The other checks still apply.
        let c = claims(None, Some(T0 + 7200), &["reg"]);
        assert!(matches!(check_usable_with(&c, at(T0), &lenient), Err(JwtError::NotYetValid { .. })));
        let c = claims(None, None, &["x"]);
        assert!(matches!(check_usable_with(&c, at(T0), &lenient), Err(JwtError::WrongAudience { .. })));
    }

    #[test]
    fn wrong_audience_messages() {
        let fresh = Some(T0 + 600);
        let err = check_usable(&claims(fresh, None, &["other"]), at(T0), MIN, Some("reg")).unwrap_err();
        assert_eq!(err.to_string(), "token audience is \"other\", but the registry expects \"reg\"");
        let err = check_usable(&claims(fresh, None, &["a", "b"]), at(T0), MIN, Some("reg")).unwrap_err();
        assert_eq!(err.to_string(), "token audience is [\"a\", \"b\"], which does not include \"reg\"");
        let err = check_usable(&claims(fresh, None, &[]), at(T0), MIN, Some("reg")).unwrap_err();
        assert_eq!(err.to_string(), "token has no aud claim; the registry expects aud \"reg\"");
        // Audience is reported before expiry: fetching a new token will not fix it.
        let err = check_usable(&claims(Some(T0 - 5), None, &["other"]), at(T0), MIN, Some("reg")).unwrap_err();
        assert!(matches!(err, JwtError::WrongAudience { .. }));
    }

    #[test]
    fn clock_before_epoch_does_not_panic() {
        let c = claims(Some(10), Some(5), &[]);
        check_usable(&c, UNIX_EPOCH - Duration::from_secs(5), Duration::ZERO, None).unwrap();
        assert_eq!(c.time_left(UNIX_EPOCH - Duration::from_secs(5)), Some(Duration::from_secs(10)));
    }
}
