//! Who may create a session: the per-client rate limit and the optional Turnstile challenge.
//!
//! Every session can end in paid model calls, so an anonymous creation is the one request that
//! spends money on the caller's behalf. The edge counts creations per client address with the
//! Workers rate-limiting binding (a fixed window of 10 or 60 s per Cloudflare location), and may
//! also require a Turnstile token checked with the siteverify API. The edge does the I/O; the
//! decisions (which key a client is counted under, how long it must wait, what a siteverify
//! answer means) are made here.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv6Addr};

/// The rate-limit key of a client address (`CF-Connecting-IP`). An IPv6 client is counted by its
/// /64, which one subscriber usually owns whole; anything unparsable shares one bucket, so
/// garbage cannot buy a fresh budget per request.
pub fn client_key(address: Option<&str>) -> String {
    match address.map(str::trim).map(str::parse::<IpAddr>) {
        Some(Ok(IpAddr::V4(v4))) => v4.to_string(),
        Some(Ok(IpAddr::V6(v6))) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
        _ => "unknown".to_string(),
    }
}

/// `Retry-After` seconds for a refused creation: until the current window ends, at least 1.
/// The binding's windows are aligned on multiples of the period since the epoch.
pub fn retry_after_secs(now_ms: u64, period_secs: u64) -> u64 {
    let period = period_secs.max(1);
    let into = (now_ms / 1000) % period;
    (period - into).max(1)
}

/// The JSON body the edge posts to siteverify.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct SiteverifyRequest<'a> {
    pub secret: &'a str,
    pub response: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remoteip: Option<&'a str>,
}

#[derive(Deserialize, Debug)]
struct SiteverifyAnswer {
    success: bool,
    #[serde(rename = "error-codes", default)]
    error_codes: Vec<String>,
}

/// What a challenge check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// The token is missing, invalid, expired or already used (403).
    Refused(String),
    /// siteverify could not be asked or answered nonsense: fail closed, but as retryable (503).
    Unavailable,
}

/// The longest token accepted (Turnstile documents 2048 characters).
pub const MAX_TOKEN_CHARS: usize = 2048;

/// A token worth sending to siteverify, or the refusal.
pub fn check_token(token: Option<&str>) -> Result<&str, Verdict> {
    match token.map(str::trim) {
        None | Some("") => Err(Verdict::Refused("a Turnstile token is required".into())),
        Some(t) if t.len() > MAX_TOKEN_CHARS => {
            Err(Verdict::Refused("the Turnstile token is too long".into()))
        }
        Some(t) => Ok(t),
    }
}

/// Reads siteverify's answer: `status` is its HTTP status (`None`: it could not be reached).
pub fn verdict(status: Option<u16>, body: &[u8]) -> Verdict {
    if status != Some(200) {
        return Verdict::Unavailable;
    }
    match serde_json::from_slice::<SiteverifyAnswer>(body) {
        Ok(a) if a.success => Verdict::Passed,
        Ok(a) if a.error_codes.iter().any(|c| c == "internal-error") => Verdict::Unavailable,
        Ok(a) => Verdict::Refused(format!(
            "the Turnstile challenge failed ({})",
            if a.error_codes.is_empty() {
                "no reason given".to_string()
            } else {
                a.error_codes.join(", ")
            }
        )),
        Err(_) => Verdict::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn clients_are_counted_by_address_and_ipv6_by_slash_64() {
        assert_eq!(client_key(Some("203.0.113.7")), "203.0.113.7");
        assert_eq!(client_key(Some(" 203.0.113.7 ")), "203.0.113.7");
        assert_eq!(
            client_key(Some("2001:db8:1:2:aaaa::1")),
            client_key(Some("2001:db8:1:2:ffff:1:2:3"))
        );
        assert_eq!(client_key(Some("2001:db8:1:2::1")), "2001:db8:1:2::/64");
        assert_ne!(
            client_key(Some("2001:db8:1:2::1")),
            client_key(Some("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(Some("::ffff:198.51.100.1")), "198.51.100.1");
        assert_eq!(client_key(None), "unknown");
        assert_eq!(client_key(Some("not an address")), "unknown");
    }

    #[test]
    fn retry_after_runs_to_the_end_of_the_window() {
        assert_eq!(retry_after_secs(60_000, 60), 60);
        assert_eq!(retry_after_secs(61_000, 60), 59);
        assert_eq!(retry_after_secs(119_999, 60), 1);
        assert_eq!(retry_after_secs(5_000, 10), 5);
        assert_eq!(retry_after_secs(5_000, 0), 1);
    }

    #[test]
    fn tokens_must_be_present_and_short() {
        assert_eq!(check_token(Some(" tok ")), Ok("tok"));
        assert!(matches!(check_token(None), Err(Verdict::Refused(_))));
        assert!(matches!(check_token(Some("  ")), Err(Verdict::Refused(_))));
        let long = "x".repeat(MAX_TOKEN_CHARS + 1);
        assert!(matches!(check_token(Some(&long)), Err(Verdict::Refused(_))));
    }

    #[test]
    fn siteverify_answers() {
        assert_eq!(
            verdict(Some(200), br#"{"success":true,"error-codes":[]}"#),
            Verdict::Passed
        );
        assert_eq!(
            verdict(
                Some(200),
                br#"{"success":false,"error-codes":["timeout-or-duplicate"]}"#
            ),
            Verdict::Refused("the Turnstile challenge failed (timeout-or-duplicate)".into())
        );
        assert_eq!(
            verdict(
                Some(200),
                br#"{"success":false,"error-codes":["internal-error"]}"#
            ),
            Verdict::Unavailable
        );
        assert_eq!(verdict(Some(500), b"{}"), Verdict::Unavailable);
        assert_eq!(verdict(None, b""), Verdict::Unavailable);
        assert_eq!(verdict(Some(200), b"<html>"), Verdict::Unavailable);
    }

    #[test]
    fn the_request_carries_the_secret_token_and_address() {
        let body = serde_json::to_value(SiteverifyRequest {
            secret: "s",
            response: "t",
            remoteip: None,
        })
        .unwrap();
        assert_eq!(body, serde_json::json!({ "secret": "s", "response": "t" }));
    }

    proptest! {
        #[test]
        fn retry_after_is_within_the_period(now in any::<u32>(), period in prop::sample::select(vec![10u64, 60])) {
            let wait = retry_after_secs(u64::from(now) * 7, period);
            prop_assert!((1..=period).contains(&wait));
            // Waiting that long always lands in the next window.
            let now_s = u64::from(now) * 7 / 1000;
            prop_assert_ne!(now_s / period, (now_s + wait) / period);
        }
    }
}
