//! Forwarding while receiving: the stream of a deferred-length upload (a live recording) to the
//! origin, range by range, while its PATCHes still arrive (docs/PROTOCOL.md, "Forwarding while
//! receiving").
//!
//! Streaming is an optimisation, never a dependency: the chunk rows stay until the result, so
//! whatever the ranges came to, the finished upload is forwarded as today. The session keeps a
//! [`Stream`]: the attempt its ranges belong to (reserved from `forwards_sent` by the first
//! range, so it is a job number no forward used), `acked` (what the origin said it holds), at
//! most one range in flight, and the consecutive failures.
//!
//! - After each PATCH and each range outcome, a range is due when streaming is live, none is in
//!   flight, the length is still unknown (once it is declared the finish carries the tail) and
//!   at least `stream_range_min` committed bytes lie past `acked`: [`Effect::SendRange`] from
//!   `acked`. The edge sends what rows it has from there (at most [`STREAM_RANGE_MAX`]) and
//!   reports [`Input::RangeSent`].
//! - Accepted and behind (409) answers both say what the origin holds: `acked` becomes it. An
//!   answer that moves nothing past the range's start counts as a failure, like a transient one
//!   (retried at the next PATCH); `stream_max_failures` in a row, a busy or refusing origin, or
//!   an origin claiming bytes the edge never committed abandon the stream.
//! - The upload completes: a range in flight is awaited (the watchdog bounds the wait), then the
//!   usual forward. A live stream with bytes acknowledged makes it the finish: the stream's
//!   attempt, resumed from `acked`. Anything else forgets the stream and forwards the whole file
//!   as a new attempt; so does a 409 to the finish, without spending an attempt.
//! - The origin sends no events for a stream before its finish: events of the stream's attempt
//!   are stale until then, and forgetting an unfinished stream makes them stale for good.

use super::{Effect, ForwardOutcome, Input, LifecycleError, Limits, Session};
use crate::answer::{classify, Answer};
#[cfg(doc)]
use crate::protocol::HEADER_STREAM_OFFSET;
use crate::protocol::{Millis, Status};
use serde::{Deserialize, Serialize};

/// The smallest range worth a request: 256 KiB (a second of 1080p recording at 2 Mbit/s).
pub const STREAM_RANGE_MIN: u64 = 256 << 10;
/// The largest range the edge reads into memory and the origin accepts (413 beyond).
pub const STREAM_RANGE_MAX: u64 = crate::stream_range::MAX_RANGE_BYTES;
/// Consecutive failed ranges before the stream is abandoned.
pub const STREAM_MAX_FAILURES: u32 = 3;

/// The stream state of a deferred-length upload.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    /// The forward attempt the ranges belong to, reserved by the first range.
    pub attempt: Option<u32>,
    /// Bytes the origin said it holds for `attempt`.
    pub acked: u64,
    /// The range being sent.
    pub range: Option<RangeInFlight>,
    /// Consecutive ranges that moved nothing.
    pub failures: u32,
    /// No more ranges; the whole file is forwarded at the end.
    pub abandoned: bool,
    /// The finish (the forward resumed from `acked`) was sent as `attempt`.
    pub finishing: bool,
}

/// The one range in flight.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeInFlight {
    pub from: u64,
    pub sent_at: Millis,
}

/// The origin's answer to one range, as the edge read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeResponse {
    /// `None`: no answer (a network error or the range's timeout).
    pub status: Option<u16>,
    /// `Retry-After`, in milliseconds.
    pub retry_after_ms: Option<u64>,
    /// [`HEADER_STREAM_OFFSET`] of the answer: the bytes the origin holds.
    pub held: Option<u64>,
}

/// What one range came to, from [`RangeOutcome::from_response`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// 2xx: the origin holds `held` bytes of this attempt.
    Accepted { held: u64 },
    /// 409: the range started past what the origin holds (`held`, 0 when it has no live job).
    Behind { held: u64 },
    /// 429/503: no slot for a live job.
    Busy,
    /// 5xx, network error, timeout.
    Transient,
    /// Any other 4xx, or an answer without a readable offset (an origin that does not stream).
    Refused { status: u16 },
}

impl RangeOutcome {
    /// Classified by [`crate::answer::classify`]; a 2xx or 409 must say what is held.
    pub fn from_response(response: &RangeResponse) -> RangeOutcome {
        let refused = RangeOutcome::Refused {
            status: response.status.unwrap_or_default(),
        };
        match (
            classify(response.status, response.retry_after_ms),
            response.held,
        ) {
            (Answer::Accepted, Some(held)) => RangeOutcome::Accepted { held },
            (Answer::Permanent, Some(held)) if response.status == Some(409) => {
                RangeOutcome::Behind { held }
            }
            (Answer::Busy { .. }, _) => RangeOutcome::Busy,
            (Answer::Transient, _) => RangeOutcome::Transient,
            (Answer::Accepted | Answer::Permanent, _) => refused,
        }
    }
}

impl Input {
    /// The origin's answer to a range of stream `attempt`, as an input.
    pub fn from_range_response(attempt: u32, response: &RangeResponse) -> Input {
        Input::RangeSent {
            attempt,
            outcome: RangeOutcome::from_response(response),
        }
    }
}

impl Stream {
    /// Starts a stream for a new upload when its length is deferred and streaming is on.
    pub(super) fn for_upload(length: Option<u64>, limits: &Limits) -> Option<Stream> {
        (length.is_none() && limits.forward_while_receiving).then(Stream::default)
    }

    fn fail_range(&mut self, limits: &Limits) {
        self.failures += 1;
        if self.failures >= limits.stream_max_failures.max(1) {
            self.abandoned = true;
        }
    }

    /// Applies the answer to the range from `from`; whether another may follow at once.
    fn answered(
        &mut self,
        from: u64,
        outcome: RangeOutcome,
        committed: u64,
        limits: &Limits,
    ) -> bool {
        match outcome {
            RangeOutcome::Accepted { held } | RangeOutcome::Behind { held }
                if held <= committed =>
            {
                self.acked = held;
                if held > from {
                    self.failures = 0;
                } else {
                    self.fail_range(limits);
                }
                true
            }
            RangeOutcome::Transient => {
                self.fail_range(limits);
                false
            }
            // Busy, refused, or more than the edge ever committed: nothing to stream to.
            _ => {
                self.abandoned = true;
                false
            }
        }
    }
}

impl Session {
    /// Whether a range is being sent (no forward starts meanwhile).
    pub(super) fn range_in_flight(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.range.is_some())
    }

    /// Whether origin events of `attempt` are refused: its stream has not sent its finish, so
    /// the origin runs no job for it.
    pub(super) fn stream_unfinished(&self, attempt: u32) -> bool {
        self.stream
            .as_ref()
            .is_some_and(|s| s.attempt == Some(attempt) && !s.finishing)
    }

    /// Whether the origin may hold a live job of this session's stream.
    pub(super) fn stream_may_run(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.attempt.is_some())
    }

    /// After a PATCH or a range outcome: sends the next range if one is due.
    pub(super) fn next_range(&mut self, now: Millis, fx: &mut Vec<Effect>, limits: &Limits) {
        let receiving = self.upload.length.is_none()
            && matches!(self.status, Status::Created | Status::Uploading);
        let committed = self.upload.offset;
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        let enough = committed.saturating_sub(stream.acked) >= limits.stream_range_min.max(1);
        if !receiving || stream.abandoned || stream.range.is_some() || !enough {
            return;
        }
        let attempt = *stream.attempt.get_or_insert_with(|| {
            self.forwards_sent += 1;
            self.forwards_sent
        });
        let from = stream.acked;
        stream.range = Some(RangeInFlight { from, sent_at: now });
        fx.push(Effect::SendRange { attempt, from });
    }

    /// A range sent `watchdog_ms` ago gets no answer any more (the object restarted under it):
    /// it failed.
    pub(super) fn expire_range(&mut self, now: Millis, limits: &Limits) {
        if let Some(stream) = self.stream.as_mut() {
            if stream
                .range
                .is_some_and(|r| now >= r.sent_at.saturating_add(limits.watchdog_ms))
            {
                stream.range = None;
                stream.fail_range(limits);
            }
        }
    }

    /// The watchdog found a range still in flight: it is lost. Whether there was one.
    pub(super) fn lose_range(&mut self, limits: &Limits) -> bool {
        let Some(stream) = self.stream.as_mut().filter(|s| s.range.is_some()) else {
            return false;
        };
        stream.range = None;
        stream.fail_range(limits);
        true
    }

    pub(super) fn range_sent(
        &mut self,
        attempt: u32,
        outcome: RangeOutcome,
        now: Millis,
        limits: &Limits,
        fx: &mut Vec<Effect>,
    ) -> Result<(), LifecycleError> {
        let committed = self.upload.offset;
        let stale = LifecycleError::StaleAttempt {
            attempt,
            current: self.stream.as_ref().and_then(|s| s.attempt).unwrap_or(0),
            latest: self.forwards_sent,
        };
        let Some(stream) = self
            .stream
            .as_mut()
            .filter(|s| s.attempt == Some(attempt) && s.range.is_some())
        else {
            return Err(stale);
        };
        let from = stream.range.take().map_or(0, |r| r.from);
        if stream.answered(from, outcome, committed, limits) {
            self.next_range(now, fx, limits);
        }
        // The upload completed while the range was in flight: its forward goes now.
        if self.forward_due && self.in_flight.is_none() && !self.range_in_flight() {
            fx.push(Effect::Forward);
        }
        Ok(())
    }

    /// At the start of a forward: the stream's attempt and `acked` when the forward is its
    /// finish; otherwise the stream is forgotten (the whole file goes as a new attempt).
    pub(super) fn finish_stream(&mut self) -> Option<(u32, u64)> {
        let stream = self.stream.as_mut()?;
        match stream.attempt {
            Some(attempt) if !stream.abandoned && !stream.finishing && stream.acked > 0 => {
                stream.finishing = true;
                Some((attempt, stream.acked))
            }
            _ => {
                self.forget_stream();
                None
            }
        }
    }

    /// The outcome of forward `attempt` ends its stream. A 409 to the finish means the origin
    /// no longer holds what was streamed: true when the whole file must go at once instead.
    pub(super) fn finished(&mut self, attempt: u32, outcome: &ForwardOutcome) -> bool {
        let finish = self
            .stream
            .as_ref()
            .is_some_and(|s| s.finishing && s.attempt == Some(attempt));
        if !finish {
            return false;
        }
        self.stream = None;
        let behind = *outcome == ForwardOutcome::Refused { status: 409 };
        if behind {
            self.origin_attempt = self.origin_attempt.max(attempt + 1);
        }
        behind
    }

    /// Drops the stream. Events of its attempt are stale from now on unless its finish was
    /// sent (the origin may run that job: a watchdog re-forward keeps its events, as ever).
    pub(super) fn forget_stream(&mut self) {
        if let Some(Stream {
            attempt: Some(attempt),
            finishing: false,
            ..
        }) = self.stream.take()
        {
            self.origin_attempt = self.origin_attempt.max(attempt + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{
        accepted, events, forwarded, meta, origin_event, result, status_event, stream_limits,
        streaming, LEN, T0,
    };
    use super::super::{Deadline, DeadlineKind};
    use super::*;
    use crate::protocol::{OriginEvent, SessionEvent};
    use proptest::prelude::*;

    fn ok(s: &mut Session, input: Input, now: Millis) -> Vec<Effect> {
        s.apply(input.clone(), now, &stream_limits())
            .unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    fn ranges(effects: &[Effect]) -> Vec<(u32, u64)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::SendRange { attempt, from } => Some((*attempt, *from)),
                _ => None,
            })
            .collect()
    }

    fn answer(attempt: u32, outcome: RangeOutcome) -> Input {
        Input::RangeSent { attempt, outcome }
    }

    fn held(held: u64) -> RangeOutcome {
        RangeOutcome::Accepted { held }
    }

    fn sends(effects: &[Effect]) -> Vec<(u32, u64)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send {
                    attempt,
                    resume_from,
                    ..
                } => Some((*attempt, *resume_from)),
                _ => None,
            })
            .collect()
    }

    /// Declares the length at the current offset and ends the upload with an empty PATCH.
    fn finish(s: &mut Session, now: Millis) -> Vec<Effect> {
        let length = s.upload.offset;
        ok(s, Input::LengthDeclared { length }, now);
        ok(s, Input::Patched { offset: length }, now)
    }

    #[test]
    fn answers_become_outcomes() {
        let outcome = |status, held| {
            RangeOutcome::from_response(&RangeResponse {
                status,
                retry_after_ms: Some(3_000),
                held,
            })
        };
        assert_eq!(outcome(Some(202), Some(40)), held(40));
        assert_eq!(
            outcome(Some(409), Some(0)),
            RangeOutcome::Behind { held: 0 }
        );
        assert_eq!(outcome(Some(503), None), RangeOutcome::Busy);
        assert_eq!(outcome(Some(429), Some(7)), RangeOutcome::Busy);
        for status in [Some(500), Some(502), Some(408), None] {
            assert_eq!(outcome(status, Some(9)), RangeOutcome::Transient);
        }
        // Today's origin has no stream route; a 2xx or 409 without an offset is not an answer
        // the edge can resume from.
        for (status, held) in [
            (404, None),
            (405, None),
            (401, Some(3)),
            (413, None),
            (202, None),
            (409, None),
        ] {
            assert_eq!(
                outcome(Some(status), held),
                RangeOutcome::Refused { status },
                "{status}"
            );
        }
        assert_eq!(
            Input::from_range_response(
                4,
                &RangeResponse {
                    status: Some(202),
                    retry_after_ms: None,
                    held: Some(8)
                }
            ),
            answer(4, held(8))
        );
    }

    #[test]
    fn ranges_go_one_at_a_time_from_what_the_origin_holds() {
        let mut s = streaming();
        assert!(ranges(&ok(&mut s, Input::Patched { offset: 19 }, T0 + 1)).is_empty());
        let fx = ok(&mut s, Input::Patched { offset: 30 }, T0 + 2);
        // The first range reserves the stream's attempt.
        assert_eq!(ranges(&fx), vec![(1, 0)]);
        assert_eq!(s.forwards_sent, 1);
        assert!(ranges(&ok(&mut s, Input::Patched { offset: 70 }, T0 + 3)).is_empty());
        let fx = ok(&mut s, answer(1, held(30)), T0 + 4);
        assert_eq!(
            ranges(&fx),
            vec![(1, 30)],
            "40 bytes past what is held: at once"
        );
        assert_eq!(ok(&mut s, answer(1, held(70)), T0 + 5), vec![]);
        assert_eq!(s.stream.as_ref().unwrap().acked, 70);
        assert_eq!(
            ranges(&ok(&mut s, Input::Patched { offset: 90 }, T0 + 6)),
            vec![(1, 70)]
        );
        assert_eq!(
            s.apply(answer(2, held(90)), T0 + 7, &stream_limits()),
            Err(LifecycleError::StaleAttempt {
                attempt: 2,
                current: 1,
                latest: 1
            })
        );
    }

    #[test]
    fn without_streaming_nothing_is_sent_before_the_end() {
        let limits = Limits {
            forward_while_receiving: false,
            ..stream_limits()
        };
        let mut s = Session::new("ab".repeat(32), None, meta(), T0, &limits);
        assert_eq!(s.stream, None);
        let fx = s
            .apply(Input::Patched { offset: 90 }, T0 + 1, &limits)
            .unwrap();
        assert!(ranges(&fx).is_empty());
        // A known length never streams either.
        let s = Session::new("ab".repeat(32), Some(LEN), meta(), T0, &stream_limits());
        assert_eq!(s.stream, None);
    }

    #[test]
    fn the_finish_waits_for_the_range_in_flight_then_resumes_from_acked() {
        let mut s = streaming();
        ok(&mut s, Input::Patched { offset: 30 }, T0 + 1);
        ok(&mut s, Input::Patched { offset: 45 }, T0 + 2);
        let fx = finish(&mut s, T0 + 3);
        assert!(
            !fx.contains(&Effect::Forward),
            "the range is still in flight"
        );
        assert_eq!(s.status, Status::Uploaded);
        assert_eq!(ok(&mut s, Input::ForwardStarted, T0 + 3), vec![]);
        let fx = ok(&mut s, answer(1, held(30)), T0 + 4);
        assert_eq!(
            fx,
            vec![Effect::Forward],
            "no range once the length is known"
        );
        let fx = ok(&mut s, Input::ForwardStarted, T0 + 5);
        assert_eq!(sends(&fx), vec![(1, 30)]);
        assert_eq!(
            s.forwards_sent, 1,
            "the stream's attempt: no new job number"
        );
        let fx = ok(&mut s, accepted(1), T0 + 6);
        assert_eq!(s.status, Status::Processing);
        assert_eq!(s.stream, None);
        assert!(events(&fx).contains(&status_event(Status::Processing)));
        ok(
            &mut s,
            origin_event(OriginEvent::Completed { result: result() }),
            T0 + 7,
        );
        assert_eq!(s.status, Status::Completed);
    }

    #[test]
    fn a_409_to_the_finish_forwards_the_whole_file_as_a_new_attempt() {
        let mut s = streaming();
        ok(&mut s, Input::Patched { offset: 30 }, T0 + 1);
        ok(&mut s, answer(1, held(30)), T0 + 2);
        assert_eq!(finish(&mut s, T0 + 3).last(), Some(&Effect::Forward));
        let attempts = s.forward_attempts;
        assert_eq!(
            sends(&ok(&mut s, Input::ForwardStarted, T0 + 4)),
            vec![(1, 30)]
        );
        let refused = ForwardOutcome::Refused { status: 409 };
        assert_eq!(
            ok(&mut s, forwarded(1, refused), T0 + 5),
            vec![Effect::Forward]
        );
        assert_eq!(s.forward_attempts, attempts, "not a failed attempt");
        assert_eq!(s.status, Status::Forwarding);
        assert_eq!(
            sends(&ok(&mut s, Input::ForwardStarted, T0 + 6)),
            vec![(2, 0)]
        );
        // The first attempt never ran: its events are stale; the second's apply.
        let late = Input::Origin {
            attempt: 1,
            event: OriginEvent::Heartbeat,
        };
        assert!(s.apply(late, T0 + 7, &stream_limits()).is_err());
        ok(&mut s, accepted(2), T0 + 8);
        assert_eq!(s.status, Status::Processing);
    }

    #[test]
    fn another_refusal_of_the_finish_is_a_refusal() {
        let mut s = streaming();
        ok(&mut s, Input::Patched { offset: 30 }, T0 + 1);
        ok(&mut s, answer(1, held(30)), T0 + 2);
        finish(&mut s, T0 + 3);
        ok(&mut s, Input::ForwardStarted, T0 + 4);
        let refused = ForwardOutcome::Refused { status: 400 };
        ok(&mut s, forwarded(1, refused), T0 + 5);
        assert_eq!(s.status, Status::Failed);
    }

    #[test]
    fn an_origin_without_the_stream_route_abandons_at_once_and_gets_the_whole_file() {
        let mut s = streaming();
        ok(&mut s, Input::Patched { offset: 30 }, T0 + 1);
        ok(
            &mut s,
            answer(1, RangeOutcome::Refused { status: 404 }),
            T0 + 2,
        );
        assert!(s.stream.as_ref().unwrap().abandoned);
        assert!(ranges(&ok(&mut s, Input::Patched { offset: 90 }, T0 + 3)).is_empty());
        assert_eq!(finish(&mut s, T0 + 4).last(), Some(&Effect::Forward));
        assert_eq!(
            sends(&ok(&mut s, Input::ForwardStarted, T0 + 5)),
            vec![(2, 0)]
        );
        assert_eq!(s.stream, None);
    }

    #[test]
    fn a_busy_origin_abandons_the_stream() {
        let mut s = streaming();
        ok(&mut s, Input::Patched { offset: 30 }, T0 + 1);
        ok(&mut s, answer(1, RangeOutcome::Busy), T0 + 2);
        assert!(s.stream.as_ref().unwrap().abandoned);
        assert!(ranges(&ok(&mut s, Input::Patched { offset: 90 }, T0 + 3)).is_empty());
    }

    #[test]
    fn transient_failures_retry_at_the_next_patch_and_abandon_after_three() {
        let mut s = streaming();
        ok(&mut s, Input::Patched { offset: 30 }, T0 + 1);
        for n in 1..=3 {
            let fx = ok(&mut s, answer(1, RangeOutcome::Transient), T0 + 10 * n);
            assert!(ranges(&fx).is_empty(), "not at once");
            let patched = ok(&mut s, Input::Patched { offset: 30 + n }, T0 + 10 * n + 1);
            assert_eq!(
                ranges(&patched).len(),
                usize::from(n < 3),
                "after failure {n}"
            );
        }
        assert!(s.stream.as_ref().unwrap().abandoned);
        // A range that moves what the origin holds resets the count.
        let mut s = streaming();
        ok(&mut s, Input::Patched { offset: 30 }, T0 + 1);
        ok(&mut s, answer(1, RangeOutcome::Transient), T0 + 2);
        ok(&mut s, Input::Patched { offset: 31 }, T0 + 3);
        ok(&mut s, answer(1, RangeOutcome::Transient), T0 + 4);
        ok(&mut s, Input::Patched { offset: 52 }, T0 + 5);
        ok(&mut s, answer(1, held(52)), T0 + 6);
        assert_eq!(s.stream.as_ref().unwrap().failures, 0);
        ok(&mut s, Input::Patched { offset: 80 }, T0 + 7);
        ok(&mut s, answer(1, RangeOutcome::Transient), T0 + 8);
        assert!(!s.stream.as_ref().unwrap().abandoned);
    }

    #[test]
    fn an_origin_that_lost_the_stream_is_sent_it_again_from_what_it_holds() {
        let mut s = streaming();
        ok(&mut s, Input::Patched { offset: 30 }, T0 + 1);
        ok(&mut s, answer(1, held(30)), T0 + 2);
        assert_eq!(
            ranges(&ok(&mut s, Input::Patched { offset: 60 }, T0 + 3)),
            vec![(1, 30)]
        );
        // Restarted: it holds nothing.
        let fx = ok(&mut s, answer(1, RangeOutcome::Behind { held: 0 }), T0 + 4);
        assert_eq!(ranges(&fx), vec![(1, 0)]);
        let fx = ok(&mut s, answer(1, held(60)), T0 + 5);
        assert!(ranges(&fx).is_empty());
        assert_eq!(s.stream.as_ref().unwrap().failures, 0);
    }

    #[test]
    fn an_origin_claiming_more_than_was_committed_is_not_believed() {
        let mut s = streaming();
        ok(&mut s, Input::Patched { offset: 30 }, T0 + 1);
        ok(&mut s, answer(1, held(31)), T0 + 2);
        let stream = s.stream.clone().unwrap();
        assert!(stream.abandoned);
        assert_eq!(stream.acked, 0);
    }

    #[test]
    fn a_range_that_never_answers_is_given_up() {
        // While receiving: the next PATCH after the watchdog's time sends it again.
        let mut s = streaming();
        ok(&mut s, Input::Patched { offset: 30 }, T0 + 1);
        assert!(ranges(&ok(&mut s, Input::Patched { offset: 40 }, T0 + 500)).is_empty());
        let fx = ok(&mut s, Input::Patched { offset: 50 }, T0 + 501);
        assert_eq!(ranges(&fx), vec![(1, 0)]);
        assert_eq!(s.stream.as_ref().unwrap().failures, 1);
        // At the end: the watchdog lets the forward go.
        let fx = finish(&mut s, T0 + 600);
        assert!(!fx.contains(&Effect::Forward));
        assert_eq!(
            s.deadline,
            Some(Deadline {
                at: T0 + 1_100,
                kind: DeadlineKind::Watchdog
            })
        );
        let fx = ok(&mut s, Input::Alarm, T0 + 1_100);
        assert_eq!(fx, vec![Effect::Forward]);
        assert_eq!(
            sends(&ok(&mut s, Input::ForwardStarted, T0 + 1_101)),
            vec![(2, 0)]
        );
    }

    #[test]
    fn a_purge_while_streaming_cancels_at_the_origin() {
        let mut s = streaming();
        ok(&mut s, Input::Patched { offset: 10 }, T0 + 1);
        let fx = ok(&mut s, Input::Terminate, T0 + 2);
        assert!(!fx.contains(&Effect::CancelOrigin), "nothing was sent yet");
        let mut s = streaming();
        ok(&mut s, Input::Patched { offset: 30 }, T0 + 1);
        let fx = ok(&mut s, Input::Terminate, T0 + 2);
        assert!(fx.contains(&Effect::CancelOrigin));
        assert_eq!(s.stream, None);
        // The idle expiry too.
        let mut s = streaming();
        ok(&mut s, Input::Patched { offset: 30 }, T0 + 1);
        ok(&mut s, answer(1, held(30)), T0 + 2);
        let fx = ok(&mut s, Input::Alarm, T0 + 1_001);
        assert!(fx.contains(&Effect::Purge) && fx.contains(&Effect::CancelOrigin));
    }

    #[test]
    fn origin_events_of_the_stream_are_stale_until_its_finish() {
        let mut s = streaming();
        ok(&mut s, Input::Patched { offset: 30 }, T0 + 1);
        ok(&mut s, Input::Patched { offset: 45 }, T0 + 2);
        finish(&mut s, T0 + 3);
        let stage = origin_event(OriginEvent::Heartbeat);
        assert!(matches!(
            s.apply(stage.clone(), T0 + 4, &stream_limits()),
            Err(LifecycleError::StaleAttempt { attempt: 1, .. })
        ));
        ok(&mut s, answer(1, held(45)), T0 + 5);
        ok(&mut s, Input::ForwardStarted, T0 + 6);
        // The origin may report before the edge sees its 202.
        let fx = ok(
            &mut s,
            origin_event(OriginEvent::Stage {
                stage: crate::protocol::Stage::Extracting,
            }),
            T0 + 7,
        );
        assert!(events(&fx).contains(&SessionEvent::Stage {
            stage: crate::protocol::Stage::Extracting
        }));
    }

    /// What happens to the range in flight at each step of a recording.
    #[derive(Clone, Debug)]
    enum Fate {
        Answered(RangeOutcome),
        /// No answer yet (or ever).
        Pending,
    }

    fn any_fate() -> impl Strategy<Value = Fate> {
        prop_oneof![
            5 => (0u64..90).prop_map(|held| Fate::Answered(RangeOutcome::Accepted { held })),
            2 => (0u64..60).prop_map(|held| Fate::Answered(RangeOutcome::Behind { held })),
            1 => Just(Fate::Answered(RangeOutcome::Busy)),
            3 => Just(Fate::Answered(RangeOutcome::Transient)),
            1 => Just(Fate::Answered(RangeOutcome::Refused { status: 404 })),
            3 => Just(Fate::Pending),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the ranges come to (accepted, behind, busy, failing, lost), the ranges are
        /// contiguous from what the origin holds, one at a time; the completed upload gets
        /// exactly one forward decision; and the finish resumes exactly from `acked` under the
        /// stream's attempt, or sends the whole file as a new attempt.
        #[test]
        fn every_recording_gets_exactly_one_forward_whatever_its_ranges(
            steps in prop::collection::vec((0u64..40, any_fate(), 0u64..300), 1..40),
            last in any_fate(),
            finish_answer in prop_oneof![
                Just(ForwardOutcome::Accepted { running: None }),
                Just(ForwardOutcome::Refused { status: 409 }),
            ],
        ) {
            let limits = stream_limits();
            let mut s = streaming();
            let mut now = T0;
            let mut forwards = 0;
            let mut expect_from = None;
            let apply = |s: &mut Session, input: Input, now: Millis, expect: &mut Option<u64>| {
                let fx = s.apply(input, now, &limits).unwrap();
                for effect in &fx {
                    if let Effect::SendRange { from, .. } = effect {
                        // In order: from what the origin last said it holds.
                        prop_assert_eq!(Some(*from), Some(s.stream.as_ref().unwrap().acked));
                        *expect = Some(*from);
                    }
                }
                Ok(fx)
            };
            for (bytes, fate, dt) in steps {
                now += dt;
                let offset = s.upload.offset + bytes;
                let fx = apply(&mut s, Input::Patched { offset }, now, &mut expect_from)?;
                forwards += fx.iter().filter(|e| **e == Effect::Forward).count();
                if let (Fate::Answered(outcome), Some(range)) =
                    (fate, s.stream.as_ref().and_then(|st| st.range))
                {
                    let outcome = match outcome {
                        RangeOutcome::Accepted { held } => RangeOutcome::Accepted {
                            held: (range.from + held).min(s.upload.offset + 1),
                        },
                        other => other,
                    };
                    let attempt = s.stream.as_ref().unwrap().attempt.unwrap();
                    let fx = apply(&mut s, answer(attempt, outcome), now, &mut expect_from)?;
                    forwards += fx.iter().filter(|e| **e == Effect::Forward).count();
                }
                let stream = s.stream.clone().unwrap();
                prop_assert!(stream.acked <= s.upload.offset);
                prop_assert_eq!(stream.range.map(|r| r.from), stream.range.and(expect_from));
            }
            prop_assert_eq!(forwards, 0, "nothing forwarded while receiving");
            now += 1;
            let fx = finish(&mut s, now);
            forwards += fx.iter().filter(|e| **e == Effect::Forward).count();
            if s.range_in_flight() {
                prop_assert_eq!(forwards, 0, "the range in flight is awaited");
                let attempt = s.stream.as_ref().unwrap().attempt.unwrap();
                let fx = match last {
                    Fate::Answered(outcome) => {
                        let outcome = match outcome {
                            RangeOutcome::Accepted { held } => RangeOutcome::Accepted {
                                held: held.min(s.upload.offset),
                            },
                            other => other,
                        };
                        ok(&mut s, answer(attempt, outcome), now + 1)
                    }
                    Fate::Pending => {
                        now = s.deadline.unwrap().at;
                        ok(&mut s, Input::Alarm, now)
                    }
                };
                prop_assert!(ranges(&fx).is_empty(), "no range once the length is known");
                forwards += fx.iter().filter(|e| **e == Effect::Forward).count();
            }
            prop_assert_eq!(forwards, 1, "exactly one forward decision");
            let stream = s.stream.clone().unwrap();
            let sent = sends(&ok(&mut s, Input::ForwardStarted, now + 2));
            let resumable = !stream.abandoned && stream.acked > 0;
            if resumable {
                prop_assert_eq!(&sent, &vec![(stream.attempt.unwrap(), stream.acked)]);
            } else {
                prop_assert_eq!(&sent, &vec![(s.forwards_sent, 0)]);
                prop_assert_ne!(Some(s.forwards_sent), stream.attempt);
            }
            let (attempt, _) = sent[0];
            let fx = ok(&mut s, forwarded(attempt, finish_answer.clone()), now + 3);
            if resumable && finish_answer == (ForwardOutcome::Refused { status: 409 }) {
                prop_assert_eq!(fx, vec![Effect::Forward]);
                let again = sends(&ok(&mut s, Input::ForwardStarted, now + 4));
                prop_assert_eq!(again, vec![(attempt + 1, 0)]);
            }
            prop_assert_eq!(s.stream, None);
        }
    }
}
