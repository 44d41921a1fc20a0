//! What an HTTP answer means for the sender: the one classifier both directions use.
//!
//! The edge forwarding a video to the origin and the origin's outbox posting a final event to the
//! edge face the same question: was it taken, will asking again ever help, and when? Answering it
//! in one place keeps the two sides from drifting (the origin once retried an edge 400 for an
//! hour, and the edge re-sent a whole video five times for an origin 401).
//!
//! - 2xx → [`Answer::Accepted`].
//! - 429 and 503 → [`Answer::Busy`]: the receiver is at capacity (or briefly unavailable) and
//!   says so; the sender waits (honouring `Retry-After`) without counting it as a fault.
//! - 408 and every other 5xx, a network error or a timeout (`None`) → [`Answer::Transient`]:
//!   retried with the sender's attempt-based backoff.
//! - Any other 4xx (400, 401, 403, 404, 409, 410, 413, 415, …) → [`Answer::Permanent`]: the same
//!   request will be refused again, so the sender gives up at once.
//! - 1xx and 3xx are not answers either side expects (no redirect is followed): Transient, so a
//!   misrouted proxy is retried a bounded number of times rather than dropping a result.

/// How a sender treats the answer to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 2xx: taken.
    Accepted,
    /// The same request will never succeed.
    Permanent,
    /// At capacity: ask again after `retry_after_ms` (from `Retry-After`), not as a fault.
    Busy { retry_after_ms: Option<u64> },
    /// Might succeed later: retry with backoff.
    Transient,
}

/// Classifies an HTTP `status` (`None` = no answer: network error or timeout), with the
/// `Retry-After` the receiver sent, already in milliseconds.
pub fn classify(status: Option<u16>, retry_after_ms: Option<u64>) -> Answer {
    match status {
        Some(200..=299) => Answer::Accepted,
        Some(429 | 503) => Answer::Busy { retry_after_ms },
        Some(408) => Answer::Transient,
        Some(400..=499) => Answer::Permanent,
        _ => Answer::Transient,
    }
}

/// `Retry-After` in milliseconds: delay-seconds only (the HTTP-date form is not used by
/// DodoLens and is ignored, as is anything unparsable).
pub fn retry_after_ms(header: Option<&str>) -> Option<u64> {
    header?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|secs| secs.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_agreed_statuses() {
        for status in [200, 201, 202, 204] {
            assert_eq!(classify(Some(status), None), Answer::Accepted, "{status}");
        }
        for status in [400, 401, 403, 404, 409, 410, 413, 415] {
            assert_eq!(
                classify(Some(status), Some(1_000)),
                Answer::Permanent,
                "{status}"
            );
        }
        for status in [429, 503] {
            assert_eq!(
                classify(Some(status), Some(7_000)),
                Answer::Busy {
                    retry_after_ms: Some(7_000)
                }
            );
            assert_eq!(
                classify(Some(status), None),
                Answer::Busy {
                    retry_after_ms: None
                }
            );
        }
        for status in [500, 502, 504, 408] {
            assert_eq!(classify(Some(status), None), Answer::Transient, "{status}");
        }
        assert_eq!(classify(None, None), Answer::Transient, "network error");
        assert_eq!(classify(Some(302), None), Answer::Transient);
    }

    #[test]
    fn retry_after_is_delay_seconds() {
        assert_eq!(retry_after_ms(Some(" 5 ")), Some(5_000));
        assert_eq!(retry_after_ms(Some("0")), Some(0));
        assert_eq!(retry_after_ms(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after_ms(Some("-3")), None);
        assert_eq!(retry_after_ms(None), None);
        assert_eq!(
            retry_after_ms(Some(&u64::MAX.to_string())),
            Some(u64::MAX),
            "saturates instead of overflowing"
        );
    }

    proptest! {
        #[test]
        fn every_status_has_exactly_the_class_of_its_range(
            status in prop::option::of(0u16..1000),
            retry in prop::option::of(any::<u64>()),
        ) {
            let answer = classify(status, retry);
            match status {
                Some(s) if (200..300).contains(&s) => prop_assert_eq!(answer, Answer::Accepted),
                Some(429 | 503) => {
                    prop_assert_eq!(answer, Answer::Busy { retry_after_ms: retry })
                }
                Some(s) if (400..500).contains(&s) && s != 408 => {
                    prop_assert_eq!(answer, Answer::Permanent)
                }
                _ => prop_assert_eq!(answer, Answer::Transient),
            }
            // Only a busy answer carries the delay; nothing else depends on it.
            if !matches!(answer, Answer::Busy { .. }) {
                prop_assert_eq!(answer, classify(status, None));
            }
        }
    }
}
