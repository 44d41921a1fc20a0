//! The session state machine: created → uploading → uploaded → forwarding (⇄ queued) →
//! processing → completed | failed → purged.
//!
//! The Durable Object owns exactly one [`Session`]; every request, origin event and alarm becomes
//! an [`Input`] applied with the current time. [`Session::apply`] returns the [`Effect`]s the
//! edge must perform (broadcast, forward, send, delete chunks, purge) and leaves in the session
//! the one [`Deadline`] the object's single alarm must be set to. Because time is an argument,
//! every rule (sliding expiry, backoff, queue, watchdog, retention, lifetime, tombstone) is tested
//! without a runtime.
//!
//! One deadline per session, because a Durable Object has one alarm: whatever the state, the
//! next thing that must happen if nobody calls is unique (purge an idle upload, retry or
//! re-forward, purge the result, forget the tombstone). No deadline lies past the session's
//! absolute lifetime (`Limits::max_lifetime_ms` from creation): then it is purged whatever its
//! state, so retrying or a stuck PATCH can never keep a video longer. Chunks live exactly as long
//! as they can still be needed: until the result, a terminal failure, or the end of the
//! retention after a retryable failure. The session itself holds no video, so it can be stored as
//! JSON and sent as a [`Snapshot`].
//!
//! The lifecycle decides every forward, so the edge holds no forwarding state of its own:
//! - [`Effect::Forward`] asks the edge to start a forward task; the task applies
//!   [`Input::ForwardStarted`], which answers [`Effect::Send`] with the wire attempt when it must
//!   really send (nothing when that forward is no longer wanted or another is in flight).
//! - One forward is in flight at a time (`in_flight`). A forward wanted meanwhile (a "Réessayer"
//!   right after a failure the origin reported before its 202) is remembered (`forward_due`) and
//!   asked for again when the in-flight one's outcome ([`Input::Forwarded`]) arrives.
//! - The outcome of a forward other than the one in flight is stale (`Err(StaleAttempt)`).
//! - A busy origin ([`ForwardOutcome::Busy`], 429/503) queues the session (`queued`, with the time
//!   it started waiting and the origin's queue position if given); it is asked again after
//!   `Retry-After` (bounded by `busy_retry_min_ms`..`busy_retry_max_ms`, then spread by up to
//!   [`BUSY_SPREAD`] from the session id and the time: a replica tells every waiting session the
//!   same Retry-After, and without the spread they would all ask again in the same millisecond
//!   — 19,806 probes for 100 sessions in the load test) without spending an
//!   attempt, until `queue_limit_ms` → `failed{origin_busy, retryable}`. Transient answers spend
//!   an attempt with exponential backoff; permanent ones fail at once.
//! - Origin events carry their forward attempt; see [`Session::apply`] for which apply.
//!
//! A PATCH in progress ([`Input::PatchStarted`] … [`Input::Patched`]) defers the idle purge: a
//! slow client sending one long PATCH is still uploading. An upload created without a length
//! (tus `Upload-Defer-Length`, a recording uploaded while it is filmed) gets it once, from
//! [`Input::LengthDeclared`]; until then it cannot be complete, so nothing is forwarded.
//! "Réessayer" is capped per session (`max_retries`); the failure after the last allowed retry
//! is final (not retryable, chunks deleted at once).
//!
//! A deferred-length upload is also streamed to the origin while it is received
//! ([`Effect::SendRange`], [`Input::RangeSent`]), and its forward then only sends the rest
//! (`Effect::Send::resume_from`): the rules are in [`stream`].

mod stream;

pub use stream::{
    RangeInFlight, RangeOutcome, RangeResponse, Stream, STREAM_MAX_FAILURES, STREAM_RANGE_MAX,
    STREAM_RANGE_MIN,
};

use crate::answer::{classify, Answer};
use crate::protocol::{
    AnalysisResult, ErrorCode, Failure, Millis, OriginEvent, Queue, SessionEvent, Snapshot, Stage,
    Status, UploadMeta, UploadProgress,
};
#[cfg(doc)]
use crate::protocol::{OriginReport, HEADER_QUEUE_POSITION, HEADER_RUNNING_ATTEMPT};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Every duration and count the lifecycle uses, from the edge's configuration (wrangler vars).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Limits {
    /// An upload with no PATCH for this long is purged. Every PATCH pushes it (sliding); it does
    /// not fire while a PATCH is being received.
    pub idle_expiry_ms: u64,
    /// How long the result snapshot (and, after a retryable failure, the chunks) stay.
    pub retention_ms: u64,
    /// How long a purged session answers 410 before it is forgotten (then 404).
    pub tombstone_ms: u64,
    /// No origin event for this long while forwarding or processing → re-forward. Also the
    /// timeout of one forward.
    pub watchdog_ms: u64,
    /// First forward retry delay; doubles per attempt, capped at `forward_backoff_max_ms`.
    pub forward_backoff_ms: u64,
    pub forward_backoff_max_ms: u64,
    /// Forward attempts (first forward, retries after transient answers, watchdog re-forwards;
    /// not busy answers) before `failed{origin_unavailable, retryable}`.
    pub max_forward_attempts: u32,
    /// A session is purged this long after its creation, whatever its state.
    pub max_lifetime_ms: u64,
    /// How long a session may wait for a busy origin before `failed{origin_busy, retryable}`.
    pub queue_limit_ms: u64,
    /// Bounds of the wait before asking a busy origin again (its `Retry-After`, or the minimum
    /// when it gives none).
    pub busy_retry_min_ms: u64,
    pub busy_retry_max_ms: u64,
    /// "Réessayer" at most this many times per session.
    pub max_retries: u32,
    /// Deferred-length uploads are streamed to the origin while they are received.
    pub forward_while_receiving: bool,
    /// A range is sent once this many committed bytes lie past what the origin holds.
    pub stream_range_min: u64,
    /// Consecutive failed ranges before the stream is abandoned (whole file at the end).
    pub stream_max_failures: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            idle_expiry_ms: 15 * 60_000,
            retention_ms: 10 * 60_000,
            tombstone_ms: 60 * 60_000,
            watchdog_ms: 120_000,
            forward_backoff_ms: 1_000,
            forward_backoff_max_ms: 30_000,
            max_forward_attempts: 5,
            max_lifetime_ms: 2 * 60 * 60_000,
            queue_limit_ms: 15 * 60_000,
            busy_retry_min_ms: 1_000,
            busy_retry_max_ms: 60_000,
            max_retries: 3,
            forward_while_receiving: true,
            stream_range_min: STREAM_RANGE_MIN,
            stream_max_failures: STREAM_MAX_FAILURES,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    IdleExpiry,
    ForwardRetry,
    Watchdog,
    Retention,
    /// The end of the absolute lifetime, when it comes before anything else.
    Lifetime,
    Tombstone,
}

/// The single pending deadline of a session; the Durable Object's alarm is set to `at`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    pub at: Millis,
    pub kind: DeadlineKind,
}

/// The origin's answer to one forward, as the edge read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardResponse {
    /// `None`: no answer (a network error or the forward's timeout).
    pub status: Option<u16>,
    /// `Retry-After`, in milliseconds ([`crate::answer::retry_after_ms`]).
    pub retry_after_ms: Option<u64>,
    /// [`HEADER_RUNNING_ATTEMPT`] of a 2xx answer to a duplicate forward.
    pub running_attempt: Option<u32>,
    /// [`HEADER_QUEUE_POSITION`] of a busy answer, when the origin gives one.
    pub queue_position: Option<u32>,
}

/// What one forward came to, from [`Input::from_forward_response`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardOutcome {
    /// 2xx. `running`: for a duplicate, the attempt the origin says it runs (or ran) for this
    /// session; its events are then the ones to apply.
    Accepted { running: Option<u32> },
    /// 429/503: at capacity. Not a fault: the session waits in the queue.
    Busy {
        retry_after_ms: Option<u64>,
        position: Option<u32>,
    },
    /// 5xx, network error, timeout: retried with backoff, spending an attempt.
    Transient,
    /// Any other 4xx: the same forward can never succeed.
    Refused { status: u16 },
}

/// What happened, as seen by the Durable Object.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A PATCH of a deferred-length upload declared its length (before its body is read).
    LengthDeclared { length: u64 },
    /// A PATCH (or creation-with-upload body) starts being received.
    PatchStarted,
    /// A PATCH ended; rows were written up to `offset`, the new offset (the current one when it
    /// committed nothing).
    Patched { offset: u64 },
    /// The edge's forward task is about to send; answered by [`Effect::Send`] or nothing.
    ForwardStarted,
    /// The outcome of the forward sent as `attempt`.
    Forwarded {
        attempt: u32,
        outcome: ForwardOutcome,
    },
    /// The outcome of the range [`Effect::SendRange`] asked for stream `attempt`.
    RangeSent { attempt: u32, outcome: RangeOutcome },
    /// A verified origin event of forward `attempt` ([`OriginReport`]).
    Origin { attempt: u32, event: OriginEvent },
    /// The user asked to run processing again (only after a retryable failure).
    Retry,
    /// tus DELETE.
    Terminate,
    /// The alarm fired at `now`.
    Alarm,
}

/// Work the edge must do after a transition, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send to every connected client; `seq` is already assigned and persisted in the session.
    Broadcast { seq: u64, event: SessionEvent },
    /// Start a forward task; it applies [`Input::ForwardStarted`] first.
    Forward,
    /// (Only from [`Input::ForwardStarted`].) Stream the stored upload to the origin as job
    /// `attempt` now, then report [`Input::Forwarded`] with that attempt. `probe`: the session
    /// is queued (the origin's last answer was busy), so first ask the origin's body-less
    /// admission probe, and report a busy answer to it as this forward's outcome instead of
    /// streaming the whole video only to be refused again. `resume_from`: the bytes the origin
    /// holds from the stream of this attempt; only the rest is sent (0: the whole file).
    Send {
        attempt: u32,
        probe: bool,
        resume_from: u64,
    },
    /// Send the committed rows from `from` (up to [`STREAM_RANGE_MAX`], ending on a row) to the
    /// origin as a range of stream `attempt`, then report [`Input::RangeSent`].
    SendRange { attempt: u32, from: u64 },
    /// Delete every chunk row (processing ended); the snapshot stays.
    DeleteChunks,
    /// Delete everything but a tombstone (no user data) so later requests answer 410.
    Purge,
    /// Forget the session entirely (`delete_all`, no alarm).
    Forget,
    /// Tell the origin to stop this session's job (signed `DELETE /v1/jobs/{id}`): it was
    /// purged (a tus DELETE, the lifetime) while the origin had, or was being sent, the video
    /// ([`Session::origin_may_run`]).
    CancelOrigin,
}

#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum LifecycleError {
    #[error("session is purged")]
    Purged,
    #[error("{input} is not allowed while {status:?}")]
    NotAllowed { status: Status, input: &'static str },
    #[error("attempt {attempt} is stale: the edge applies attempts {current} to {latest}")]
    StaleAttempt {
        attempt: u32,
        current: u32,
        latest: u32,
    },
    #[error("no retry left: processing was already run again {max} times for this video")]
    RetriesExhausted { max: u32 },
    #[error("offset {offset} is before {current} or after the length {length:?}")]
    BadOffset {
        current: u64,
        offset: u64,
        length: Option<u64>,
    },
    #[error("length {length} cannot be declared: the length is {known:?}, {offset} bytes are in")]
    BadLength {
        known: Option<u64>,
        offset: u64,
        length: u64,
    },
}

/// The persisted state of one session (stored as JSON in the Durable Object).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Session {
    pub id: String,
    pub status: Status,
    pub upload: UploadProgress,
    pub meta: UploadMeta,
    pub created_at: Millis,
    pub stage: Option<Stage>,
    pub progress: Option<f32>,
    pub result: Option<AnalysisResult>,
    pub error: Option<Failure>,
    /// Since when the session waits for a busy origin (only while queued).
    #[serde(default)]
    pub queue: Option<Queue>,
    /// Last assigned event sequence number.
    pub seq: u64,
    /// Forward attempts in the current processing run: bounds the retries of one run. Busy
    /// answers do not count.
    pub forward_attempts: u32,
    /// Forwards sent over the session's whole life; the job's `attempt` on the wire. The
    /// origin runs a session again only for a newer attempt than the one it finished, so this
    /// must keep growing across "Réessayer", unlike `forward_attempts`.
    #[serde(default)]
    pub forwards_sent: u32,
    /// The first attempt of the current run ("Réessayer" starts a run).
    #[serde(default)]
    pub run_start: u32,
    /// The oldest attempt whose origin events are applied: the one the origin is known to run
    /// (from its events or its answer to the forward). Older attempts are stale.
    #[serde(default)]
    pub origin_attempt: u32,
    /// The attempt being sent, until its outcome arrives.
    #[serde(default)]
    pub in_flight: Option<u32>,
    /// A forward is wanted and starts as soon as none is in flight.
    #[serde(default)]
    pub forward_due: bool,
    /// PATCHes being received (a takeover may overlap two for a moment).
    #[serde(default)]
    pub receiving: u32,
    /// "Réessayer" used so far.
    #[serde(default)]
    pub retries: u32,
    /// The stream of a deferred-length upload to the origin, while it exists.
    #[serde(default)]
    pub stream: Option<Stream>,
    /// Whether chunk rows still exist (false after completion or a terminal failure).
    pub has_chunks: bool,
    pub deadline: Option<Deadline>,
}

/// A progress event goes out at least this often while bytes keep arriving.
pub const PROGRESS_INTERVAL_MS: u64 = 250;
/// …or whenever this fraction of the upload (1/20 = 5 %) arrived since the last one.
pub const PROGRESS_STEPS: u64 = 20;

/// Whether the edge should send the `Upload` event of a PATCH that reached `offset` at `now`,
/// given the last one it sent. 1 MiB PATCHes arrive ~90 times a second; a browser needs a few
/// updates a second, and always the last one. A deferred length (`None`) is throttled by time
/// only: there is no fraction to step by.
pub fn should_broadcast_progress(
    last_sent_offset: u64,
    last_sent_at: Millis,
    offset: u64,
    now: Millis,
    length: Option<u64>,
) -> bool {
    if length.is_some_and(|length| offset >= length) {
        return true;
    }
    if offset <= last_sent_offset {
        return false;
    }
    now.saturating_sub(last_sent_at) >= PROGRESS_INTERVAL_MS
        || length
            .is_some_and(|length| offset - last_sent_offset >= (length / PROGRESS_STEPS).max(1))
}

/// A busy wait is lengthened by up to this share of itself (see the module docs).
pub const BUSY_SPREAD: f64 = 0.5;

/// A number in 0..1 from the session id and the time, the same for the same inputs (the
/// lifecycle stays deterministic), different across sessions told the same thing at once.
fn spread(id: &str, now: Millis) -> f64 {
    // FNV-1a, 64 bits: no dependency, and well enough mixed for spreading.
    let hash = id
        .bytes()
        .chain(now.to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

impl Limits {
    /// Delay before the next forward after `attempts` forwards failed: `forward_backoff_ms`
    /// doubled per attempt, capped at `forward_backoff_max_ms`.
    pub fn forward_backoff(&self, attempts: u32) -> u64 {
        let factor = 1u64
            .checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u64::MAX);
        self.forward_backoff_ms
            .saturating_mul(factor)
            .min(self.forward_backoff_max_ms)
    }

    /// Delay before asking a busy origin again: its `Retry-After` within the configured bounds,
    /// lengthened by `spread` (0..1) times [`BUSY_SPREAD`] of itself.
    pub fn busy_retry(&self, retry_after_ms: Option<u64>, spread: f64) -> u64 {
        let wait = retry_after_ms.unwrap_or(self.busy_retry_min_ms).clamp(
            self.busy_retry_min_ms,
            self.busy_retry_max_ms.max(self.busy_retry_min_ms),
        );
        wait.saturating_add((wait as f64 * BUSY_SPREAD * spread.clamp(0.0, 1.0)) as u64)
    }

    fn max_attempts(&self) -> u32 {
        self.max_forward_attempts.max(1)
    }
}

impl Input {
    /// The origin's answer to forward `attempt`, as an input, classified by
    /// [`crate::answer::classify`].
    pub fn from_forward_response(attempt: u32, response: &ForwardResponse) -> Input {
        let outcome = match classify(response.status, response.retry_after_ms) {
            Answer::Accepted => ForwardOutcome::Accepted {
                running: response.running_attempt,
            },
            Answer::Busy { retry_after_ms } => ForwardOutcome::Busy {
                retry_after_ms,
                position: response.queue_position,
            },
            Answer::Transient => ForwardOutcome::Transient,
            Answer::Permanent => ForwardOutcome::Refused {
                status: response.status.unwrap_or_default(),
            },
        };
        Input::Forwarded { attempt, outcome }
    }

    fn name(&self) -> &'static str {
        match self {
            Input::LengthDeclared { .. } => "length declaration",
            Input::PatchStarted => "PATCH start",
            Input::Patched { .. } => "PATCH",
            Input::ForwardStarted => "forward start",
            Input::Forwarded { .. } => "forward outcome",
            Input::RangeSent { .. } => "range outcome",
            Input::Origin { .. } => "origin event",
            Input::Retry => "retry",
            Input::Terminate => "termination",
            Input::Alarm => "alarm",
        }
    }
}

impl Session {
    /// A session created by tus POST, with its idle-expiry deadline; `length` is `None` when
    /// deferred.
    ///
    /// Creation-with-upload bytes (and a zero-length upload) are reported afterwards as
    /// `Input::Patched`, which is what starts forwarding once `offset == length`.
    pub fn new(
        id: String,
        length: Option<u64>,
        meta: UploadMeta,
        now: Millis,
        limits: &Limits,
    ) -> Session {
        let mut session = Session {
            id,
            status: Status::Created,
            upload: UploadProgress { offset: 0, length },
            meta,
            created_at: now,
            stage: None,
            progress: None,
            result: None,
            error: None,
            queue: None,
            seq: 0,
            forward_attempts: 0,
            forwards_sent: 0,
            run_start: 1,
            origin_attempt: 1,
            in_flight: None,
            forward_due: false,
            receiving: 0,
            retries: 0,
            stream: Stream::for_upload(length, limits),
            has_chunks: false,
            deadline: Some(after(now, limits.idle_expiry_ms, DeadlineKind::IdleExpiry)),
        };
        session.bound_by_lifetime(limits);
        session
    }

    /// Applies `input` at `now`. On error the session is unchanged.
    ///
    /// Rules: LengthDeclared sets a deferred length once (not below the offset; the same value
    /// again is a no-op, another is `Err(BadLength)`); PatchStarted counts a PATCH in progress;
    /// Patched ends it, moves created/uploading forward (offset never goes backwards nor past a
    /// known length), pushes the idle deadline, and at `offset == length` becomes uploaded and
    /// asks for a forward (never while the length is unknown). ForwardStarted → Send
    /// (forwarding, watchdog deadline) if a forward is due and none is in flight. Forwarded:
    /// accepted → processing (watchdog); busy → queued, asked again after `Retry-After`, or
    /// after `queue_limit_ms` failed{origin_busy, retryable}; transient → retry deadline with
    /// exponential backoff, or, after `max_forward_attempts`, failed{origin_unavailable,
    /// retryable}; refused → failed for good (413 `too_large`, else `internal`). Origin stage and
    /// progress events refresh the watchdog; completed → completed + DeleteChunks + retention;
    /// failed → failed (+ DeleteChunks unless retryable) + retention. Retry (failed, retryable,
    /// chunks present, retries left) → a new run. Terminate → Purge + tombstone. Any purge while
    /// the origin may hold the job (a forward in flight, forwarding, queued, processing) also
    /// asks for CancelOrigin. Alarm acts on
    /// the due deadline (idle expiry → Purge unless a PATCH is in progress; forward retry →
    /// forward, or fail once the queue limit is reached; watchdog → re-forward or fail;
    /// retention and lifetime → Purge; tombstone → Forget); an alarm before the deadline does
    /// nothing. Any input at or after the end of the lifetime purges the session instead of
    /// being applied. Nothing leaves purged but Alarm at the tombstone deadline (Forget).
    ///
    /// A deferred-length upload with `forward_while_receiving` also streams ranges while it is
    /// received (SendRange after Patched and RangeSent, one in flight, from what the origin
    /// holds); a range in flight holds back the forward (the watchdog bounds the wait); the
    /// forward that finishes a live stream is its attempt resumed from there, and a 409 to it
    /// sends the whole file as a new attempt without spending one (rules in [`stream`]).
    ///
    /// Origin events carry their forward attempt. Only attempts from `origin_attempt` (the job
    /// the origin is known to run: raised by its events and its 2xx answer, lowered only when a
    /// duplicate's answer names an earlier job it runs) to `forwards_sent` apply; any other is
    /// `Err(StaleAttempt)` and changes nothing (409 at the edge). "Réessayer" makes everything
    /// of the earlier run stale. A heartbeat only pushes the watchdog: no event, stage and
    /// progress kept.
    ///
    /// Races are expected, because forwards run in the background and the origin's outbox
    /// retries: the origin may report a stage before the edge saw its 202 (accepted as
    /// processing), a forward outcome may arrive after the result (it only ends the forward),
    /// and a final event may be delivered twice (ignored). A `completed` after an edge-decided
    /// failure is taken: the origin did finish, so the user gets the result. Every change that
    /// is broadcast gets the next `seq`, data events before the `Status` event they cause, so a
    /// client that sees the new status already has what goes with it. `seq` is strictly
    /// increasing but not dense on the wire: the edge drops some `Upload` events
    /// ([`should_broadcast_progress`]). Once purged, every input (an early alarm included) is
    /// `Err(Purged)`, which the edge answers with 410.
    pub fn apply(
        &mut self,
        input: Input,
        now: Millis,
        limits: &Limits,
    ) -> Result<Vec<Effect>, LifecycleError> {
        let mut next = self.clone();
        let mut effects = Vec::new();
        if next.status != Status::Purged && now >= next.lifetime_end(limits) {
            next.purge(now, limits, &mut effects);
        } else {
            next.step(input, now, limits, &mut effects)?;
        }
        next.bound_by_lifetime(limits);
        *self = next;
        Ok(effects)
    }

    /// What a client gets on (re)connect and from the JSON endpoint.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            session_id: self.id.clone(),
            status: self.status,
            seq: self.seq,
            upload: self.upload,
            meta: self.meta.clone(),
            stage: self.stage,
            progress: self.progress,
            queue: self.queue,
            result: self.result.clone(),
            error: self.error.clone(),
            expires_at: self.expires_at(),
        }
    }

    /// When the session is purged if nothing else happens: the idle expiry while uploading,
    /// the retention once finished, the lifetime when it comes first (tus `Upload-Expires`).
    /// `None` while the origin works.
    pub fn expires_at(&self) -> Option<Millis> {
        self.deadline
            .filter(|d| {
                matches!(
                    d.kind,
                    DeadlineKind::IdleExpiry | DeadlineKind::Retention | DeadlineKind::Lifetime
                )
            })
            .map(|d| d.at)
    }

    /// When the session is purged whatever happens.
    pub fn lifetime_end(&self, limits: &Limits) -> Millis {
        self.created_at.saturating_add(limits.max_lifetime_ms)
    }

    /// No deadline of a live session lies past its lifetime.
    fn bound_by_lifetime(&mut self, limits: &Limits) {
        let end = self.lifetime_end(limits);
        if self.status != Status::Purged && self.deadline.is_some_and(|d| d.at > end) {
            self.deadline = Some(Deadline {
                at: end,
                kind: DeadlineKind::Lifetime,
            });
        }
    }

    fn step(
        &mut self,
        input: Input,
        now: Millis,
        limits: &Limits,
        fx: &mut Vec<Effect>,
    ) -> Result<(), LifecycleError> {
        use Status::*;
        if self.status == Purged {
            let forget = matches!(input, Input::Alarm)
                && self
                    .deadline
                    .is_some_and(|d| d.kind == DeadlineKind::Tombstone && now >= d.at);
            if !forget {
                return Err(LifecycleError::Purged);
            }
            self.deadline = None;
            fx.push(Effect::Forget);
            return Ok(());
        }
        let not_allowed = LifecycleError::NotAllowed {
            status: self.status,
            input: input.name(),
        };
        match (input, self.status) {
            (Input::LengthDeclared { length }, Created | Uploading) => self.declare(length)?,
            (Input::LengthDeclared { .. }, _) => return Err(not_allowed),
            (Input::PatchStarted, Created | Uploading) => self.receiving += 1,
            (Input::Patched { offset }, Created | Uploading) => {
                self.patched(offset, now, limits, fx)?
            }
            (Input::PatchStarted | Input::Patched { .. }, _) => return Err(not_allowed),

            (Input::ForwardStarted | Input::Forwarded { .. }, Created | Uploading) => {
                return Err(not_allowed)
            }
            (Input::ForwardStarted, _) => self.start_forward(now, limits, fx),
            (Input::Forwarded { attempt, outcome }, _) => {
                self.forwarded(attempt, outcome, now, limits, fx)?
            }
            (Input::RangeSent { attempt, outcome }, _) => {
                self.range_sent(attempt, outcome, now, limits, fx)?
            }

            (Input::Origin { .. }, Created | Uploading) => return Err(not_allowed),
            (Input::Origin { attempt, event }, _) => {
                self.check_attempt(attempt)?;
                self.origin_attempt = attempt;
                match (event, self.status) {
                    (OriginEvent::Completed { result }, Failed) => {
                        self.complete(result, now, limits, fx)
                    }
                    (_, Completed | Failed) => {}
                    (event, _) => self.origin(event, now, limits, fx),
                }
            }

            (Input::Retry, Failed)
                if self.has_chunks && self.error.as_ref().is_some_and(|e| e.retryable) =>
            {
                if self.retries >= limits.max_retries {
                    return Err(LifecycleError::RetriesExhausted {
                        max: limits.max_retries,
                    });
                }
                self.retries += 1;
                self.error = None;
                self.stage = None;
                self.progress = None;
                self.forward_attempts = 0;
                // Whatever the earlier run still reports is stale from now on.
                self.run_start = self.forwards_sent + 1;
                self.origin_attempt = self.run_start;
                self.set_status(Uploaded, fx);
                self.forward_or_fail(now, limits, fx);
            }
            (Input::Retry, _) => return Err(not_allowed),

            (Input::Terminate, _) => self.purge(now, limits, fx),

            (Input::Alarm, _) => match self.deadline {
                Some(deadline) if now >= deadline.at => self.due(deadline.kind, now, limits, fx),
                _ => {}
            },
        }
        Ok(())
    }

    /// The alarm reached the deadline of `kind`.
    fn due(&mut self, kind: DeadlineKind, now: Millis, limits: &Limits, fx: &mut Vec<Effect>) {
        match kind {
            DeadlineKind::IdleExpiry if self.receiving > 0 => {
                // Still receiving a PATCH: not idle. The lifetime bounds a PATCH that never ends.
                self.deadline = Some(after(now, limits.idle_expiry_ms, DeadlineKind::IdleExpiry));
            }
            DeadlineKind::ForwardRetry if self.status == Status::Queued => {
                if self.queue_end(limits).is_some_and(|end| now >= end) {
                    self.fail(origin_busy(), now, limits, fx);
                } else {
                    self.request_forward(now, limits, fx);
                }
            }
            DeadlineKind::ForwardRetry => self.forward_or_fail(now, limits, fx),
            // Only a range was awaited (the upload completed under it): it is lost, and the
            // forward it held back goes now.
            DeadlineKind::Watchdog if self.lose_range(limits) => {
                self.request_forward(now, limits, fx)
            }
            DeadlineKind::Watchdog => {
                // A forward still in flight outlived its own timeout (or the object restarted
                // under it): it is lost, and its late outcome will be stale.
                self.in_flight = None;
                self.forward_or_fail(now, limits, fx);
            }
            DeadlineKind::IdleExpiry
            | DeadlineKind::Retention
            | DeadlineKind::Lifetime
            | DeadlineKind::Tombstone => self.purge(now, limits, fx),
        }
    }

    fn patched(
        &mut self,
        offset: u64,
        now: Millis,
        limits: &Limits,
        fx: &mut Vec<Effect>,
    ) -> Result<(), LifecycleError> {
        let UploadProgress {
            offset: current,
            length,
        } = self.upload;
        if offset < current || length.is_some_and(|length| offset > length) {
            return Err(LifecycleError::BadOffset {
                current,
                offset,
                length,
            });
        }
        self.receiving = self.receiving.saturating_sub(1);
        self.upload.offset = offset;
        self.expire_range(now, limits);
        self.has_chunks |= offset > 0;
        let complete = length == Some(offset);
        if offset > current || complete {
            self.broadcast(SessionEvent::Upload { offset, length }, fx);
        }
        if complete {
            self.receiving = 0;
            self.set_status(Status::Uploaded, fx);
            self.forward_or_fail(now, limits, fx);
        } else {
            if offset > 0 {
                self.set_status(Status::Uploading, fx);
            }
            self.deadline = Some(after(now, limits.idle_expiry_ms, DeadlineKind::IdleExpiry));
            self.next_range(now, fx, limits);
        }
        Ok(())
    }

    /// A deferred length becomes known; it can never change after.
    fn declare(&mut self, length: u64) -> Result<(), LifecycleError> {
        let UploadProgress {
            offset,
            length: known,
        } = self.upload;
        match known {
            Some(known) if known == length => Ok(()),
            None if length >= offset => {
                self.upload.length = Some(length);
                Ok(())
            }
            _ => Err(LifecycleError::BadLength {
                known,
                offset,
                length,
            }),
        }
    }

    /// The forward task asks whether to send: only a due forward, one at a time, none while a
    /// range is in flight. The finish of a stream resumes it under its attempt; any other
    /// forward is a new attempt with the whole file.
    fn start_forward(&mut self, now: Millis, limits: &Limits, fx: &mut Vec<Effect>) {
        if !self.forward_due || self.in_flight.is_some() || self.range_in_flight() {
            return;
        }
        self.forward_due = false;
        let (attempt, resume_from) = self.finish_stream().unwrap_or_else(|| {
            self.forwards_sent += 1;
            (self.forwards_sent, 0)
        });
        self.in_flight = Some(attempt);
        if self.status != Status::Queued {
            self.set_status(Status::Forwarding, fx);
        }
        self.deadline = Some(after(now, limits.watchdog_ms, DeadlineKind::Watchdog));
        fx.push(Effect::Send {
            attempt,
            probe: self.status == Status::Queued,
            resume_from,
        });
    }

    /// The outcome of a forward: it ends the one in flight; it decides the session's next step
    /// only while the current run still waits for the origin to take the job.
    fn forwarded(
        &mut self,
        attempt: u32,
        outcome: ForwardOutcome,
        now: Millis,
        limits: &Limits,
        fx: &mut Vec<Effect>,
    ) -> Result<(), LifecycleError> {
        if self.in_flight != Some(attempt) {
            return Err(LifecycleError::StaleAttempt {
                attempt,
                current: self.in_flight.unwrap_or(0),
                latest: self.forwards_sent,
            });
        }
        self.in_flight = None;
        let this_run = attempt >= self.run_start;
        let waiting = matches!(
            self.status,
            Status::Uploaded | Status::Forwarding | Status::Queued
        );
        if self.finished(attempt, &outcome) && waiting {
            // The origin lost the stream: the whole file now, not counted as a failed attempt.
            self.request_forward(now, limits, fx);
            return Ok(());
        }
        match outcome {
            ForwardOutcome::Accepted { running } if this_run => {
                // The origin spoke first (processing) or the edge gave up (failed): the answer
                // still says which job runs.
                self.origin_attempt = running.filter(|&r| r <= attempt).unwrap_or(attempt);
                if waiting {
                    self.set_status(Status::Processing, fx);
                    self.deadline = Some(after(now, limits.watchdog_ms, DeadlineKind::Watchdog));
                }
            }
            ForwardOutcome::Busy {
                retry_after_ms,
                position,
            } if this_run && waiting => self.queued(retry_after_ms, position, now, limits, fx),
            ForwardOutcome::Transient if this_run && waiting => {
                if self.forward_attempts >= limits.max_attempts() {
                    self.fail(origin_unavailable(self.forward_attempts), now, limits, fx);
                } else {
                    let delay = limits.forward_backoff(self.forward_attempts);
                    self.set_status(Status::Forwarding, fx);
                    self.deadline = Some(after(now, delay, DeadlineKind::ForwardRetry));
                }
            }
            ForwardOutcome::Refused { status } if this_run && waiting => {
                self.fail(refused(status), now, limits, fx)
            }
            _ => {}
        }
        if self.forward_due {
            fx.push(Effect::Forward);
        }
        Ok(())
    }

    /// A busy origin: wait in the queue, then ask again, until the queue limit.
    fn queued(
        &mut self,
        retry_after_ms: Option<u64>,
        position: Option<u32>,
        now: Millis,
        limits: &Limits,
        fx: &mut Vec<Effect>,
    ) {
        let since = self.queue.map_or(now, |q| q.since);
        let end = since.saturating_add(limits.queue_limit_ms);
        if now >= end {
            return self.fail(origin_busy(), now, limits, fx);
        }
        let queue = Queue { since, position };
        if self.queue != Some(queue) {
            self.queue = Some(queue);
            self.broadcast(SessionEvent::Queued { since, position }, fx);
        }
        self.set_status(Status::Queued, fx);
        let at = now
            .saturating_add(limits.busy_retry(retry_after_ms, spread(&self.id, now)))
            .min(end);
        self.deadline = Some(Deadline {
            at,
            kind: DeadlineKind::ForwardRetry,
        });
    }

    fn queue_end(&self, limits: &Limits) -> Option<Millis> {
        self.queue
            .map(|q| q.since.saturating_add(limits.queue_limit_ms))
    }

    /// Only events of the attempt the origin runs (or a newer one already sent) apply; a
    /// stream's attempt runs no job before its finish is sent.
    fn check_attempt(&self, attempt: u32) -> Result<(), LifecycleError> {
        if attempt < self.origin_attempt
            || attempt > self.forwards_sent
            || self.stream_unfinished(attempt)
        {
            return Err(LifecycleError::StaleAttempt {
                attempt,
                current: self.origin_attempt,
                latest: self.forwards_sent,
            });
        }
        Ok(())
    }

    /// An origin event while the job is in flight (uploaded, forwarding, queued, processing).
    fn origin(&mut self, event: OriginEvent, now: Millis, limits: &Limits, fx: &mut Vec<Effect>) {
        match event {
            OriginEvent::Heartbeat => {
                // Only the silence timer moves: no event, and a pending retry keeps its time.
                if self
                    .deadline
                    .is_some_and(|d| d.kind == DeadlineKind::Watchdog)
                {
                    self.deadline = Some(after(now, limits.watchdog_ms, DeadlineKind::Watchdog));
                }
                return;
            }
            OriginEvent::Stage { stage } => {
                self.stage = Some(stage);
                self.progress = None;
                self.broadcast(SessionEvent::Stage { stage }, fx);
            }
            OriginEvent::Progress { stage, fraction } => {
                // NaN becomes 0 so the stored state stays comparable and serialisable.
                let fraction = if fraction.is_nan() {
                    0.0
                } else {
                    fraction.clamp(0.0, 1.0)
                };
                self.stage = Some(stage);
                self.progress = Some(fraction);
                self.broadcast(SessionEvent::Progress { stage, fraction }, fx);
            }
            OriginEvent::Completed { result } => return self.complete(result, now, limits, fx),
            OriginEvent::Failed { error } => return self.fail(error, now, limits, fx),
        }
        self.set_status(Status::Processing, fx);
        self.deadline = Some(after(now, limits.watchdog_ms, DeadlineKind::Watchdog));
    }

    fn complete(
        &mut self,
        result: Box<AnalysisResult>,
        now: Millis,
        limits: &Limits,
        fx: &mut Vec<Effect>,
    ) {
        self.delete_chunks(fx);
        self.stream = None;
        self.progress = None;
        self.error = None;
        self.result = Some((*result).clone());
        self.broadcast(SessionEvent::Completed { result }, fx);
        self.set_status(Status::Completed, fx);
        self.deadline = Some(after(now, limits.retention_ms, DeadlineKind::Retention));
    }

    /// A retryable failure keeps the chunks (until retention) so "Réessayer" needs no upload;
    /// once the retries are used up no failure is retryable any more.
    fn fail(&mut self, mut error: Failure, now: Millis, limits: &Limits, fx: &mut Vec<Effect>) {
        error.retryable &= self.retries < limits.max_retries;
        if !error.retryable {
            self.delete_chunks(fx);
        }
        self.stream = None;
        self.progress = None;
        self.result = None;
        self.error = Some(error.clone());
        self.broadcast(SessionEvent::Failed { error }, fx);
        self.set_status(Status::Failed, fx);
        self.deadline = Some(after(now, limits.retention_ms, DeadlineKind::Retention));
    }

    /// Sends the upload to the origin again, unless the attempts are used up.
    fn forward_or_fail(&mut self, now: Millis, limits: &Limits, fx: &mut Vec<Effect>) {
        if self.forward_attempts >= limits.max_attempts() {
            return self.fail(origin_unavailable(self.forward_attempts), now, limits, fx);
        }
        self.forward_attempts += 1;
        if self.status == Status::Processing {
            self.set_status(Status::Forwarding, fx);
        }
        self.request_forward(now, limits, fx);
    }

    /// A forward is due: asked for now, or when the one in flight ends.
    fn request_forward(&mut self, now: Millis, limits: &Limits, fx: &mut Vec<Effect>) {
        self.forward_due = true;
        if self.in_flight.is_none() && !self.range_in_flight() {
            fx.push(Effect::Forward);
        }
        self.deadline = Some(after(now, limits.watchdog_ms, DeadlineKind::Watchdog));
    }

    /// Whether the origin may be running (or receiving) this session's job: a forward is in
    /// flight, or the session waits for, or follows, a job it sent, or streams it ranges. A
    /// result or a failure ends the job on the origin's side (or the edge gave up on it).
    pub fn origin_may_run(&self) -> bool {
        self.in_flight.is_some()
            || self.stream_may_run()
            || matches!(
                self.status,
                Status::Forwarding | Status::Queued | Status::Processing
            )
    }

    /// Keeps only what a tombstone needs: no result, no error, no file name, no chunks; the
    /// origin is told to stop a job it may still run.
    fn purge(&mut self, now: Millis, limits: &Limits, fx: &mut Vec<Effect>) {
        let cancel = self.origin_may_run();
        self.stream = None;
        self.stage = None;
        self.progress = None;
        self.result = None;
        self.error = None;
        self.meta.filename = None;
        self.has_chunks = false;
        self.set_status(Status::Purged, fx);
        fx.push(Effect::Purge);
        if cancel {
            fx.push(Effect::CancelOrigin);
        }
        self.deadline = Some(after(now, limits.tombstone_ms, DeadlineKind::Tombstone));
    }

    fn delete_chunks(&mut self, fx: &mut Vec<Effect>) {
        if self.has_chunks {
            self.has_chunks = false;
            fx.push(Effect::DeleteChunks);
        }
    }

    /// Leaving the states that wait for the origin to take the job drops a pending forward;
    /// leaving `queued` ends the wait.
    fn set_status(&mut self, status: Status, fx: &mut Vec<Effect>) {
        if status != Status::Queued {
            self.queue = None;
        }
        if !matches!(
            status,
            Status::Uploaded | Status::Forwarding | Status::Queued
        ) {
            self.forward_due = false;
        }
        if status == Status::Purged {
            self.receiving = 0;
        }
        if self.status != status {
            self.status = status;
            self.broadcast(SessionEvent::Status { status }, fx);
        }
    }

    fn broadcast(&mut self, event: SessionEvent, fx: &mut Vec<Effect>) {
        self.seq += 1;
        fx.push(Effect::Broadcast {
            seq: self.seq,
            event,
        });
    }
}

fn after(now: Millis, delay_ms: u64, kind: DeadlineKind) -> Deadline {
    Deadline {
        at: now.saturating_add(delay_ms),
        kind,
    }
}

fn origin_unavailable(attempts: u32) -> Failure {
    Failure {
        code: ErrorCode::OriginUnavailable,
        message: format!("the analysis service did not take the video after {attempts} attempts"),
        retryable: true,
    }
}

fn origin_busy() -> Failure {
    Failure {
        code: ErrorCode::OriginBusy,
        message: "the analysis service stayed at capacity for the whole queue limit".into(),
        retryable: true,
    }
}

/// A forward the origin refused for good: it can never analyse this video as sent.
fn refused(status: u16) -> Failure {
    let (code, message) = match status {
        413 => (
            ErrorCode::TooLarge,
            "the video is larger than the analysis service accepts".to_string(),
        ),
        _ => (
            ErrorCode::Internal,
            format!("the analysis service refused the video (HTTP {status})"),
        ),
    };
    Failure {
        code,
        message,
        retryable: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Analyser, Cost, Inventory, MediaFacts};
    use proptest::prelude::*;

    pub(super) const LEN: u64 = 100;
    pub(super) const T0: Millis = 1_750_000_000_000;

    pub(super) fn limits() -> Limits {
        Limits {
            idle_expiry_ms: 1_000,
            retention_ms: 2_000,
            tombstone_ms: 3_000,
            watchdog_ms: 500,
            forward_backoff_ms: 10,
            forward_backoff_max_ms: 60,
            max_forward_attempts: 3,
            max_lifetime_ms: 100_000,
            queue_limit_ms: 1_500,
            busy_retry_min_ms: 100,
            busy_retry_max_ms: 400,
            max_retries: 2,
            forward_while_receiving: false,
            stream_range_min: 20,
            stream_max_failures: 3,
        }
    }

    pub(super) fn meta() -> UploadMeta {
        UploadMeta {
            filename: Some("salon.mp4".into()),
            filetype: "video/mp4".into(),
            locale: "fr".into(),
        }
    }

    pub(super) fn result() -> Box<AnalysisResult> {
        Box::new(AnalysisResult {
            inventory: Inventory {
                rooms: vec![],
                subtotal_m3: 2.0,
                margin_ratio: 0.1,
                margin_m3: 0.2,
                total_m3: 2.2,
                total_weight_kg: 55.0,
                item_count: 1,
                flagged: vec![],
                warnings: vec![],
            },
            media: MediaFacts::default(),
            cost: Cost::default(),
            vision_model: "vision".into(),
            transcription_model: "speech".into(),
            analyser: Analyser::Openai,
            simulated: true,
            processing_ms: 1_200,
        })
    }

    fn failure(code: ErrorCode, retryable: bool) -> Failure {
        Failure {
            code,
            message: "boom".into(),
            retryable,
        }
    }

    fn new_session() -> Session {
        Session::new("ab".repeat(32), Some(LEN), meta(), T0, &limits())
    }

    fn ok(s: &mut Session, input: Input, now: Millis) -> Vec<Effect> {
        s.apply(input.clone(), now, &limits())
            .unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    fn uploaded() -> Session {
        let mut s = new_session();
        ok(&mut s, Input::Patched { offset: LEN }, T0 + 10);
        s
    }

    fn processing() -> Session {
        let mut s = uploaded();
        ok(&mut s, Input::ForwardStarted, T0 + 20);
        ok(&mut s, accepted(1), T0 + 30);
        s
    }

    pub(super) fn forwarded(attempt: u32, outcome: ForwardOutcome) -> Input {
        Input::Forwarded { attempt, outcome }
    }

    pub(super) fn accepted(attempt: u32) -> Input {
        forwarded(attempt, ForwardOutcome::Accepted { running: None })
    }

    fn transient(attempt: u32) -> Input {
        forwarded(attempt, ForwardOutcome::Transient)
    }

    fn busy(attempt: u32, retry_after_ms: Option<u64>, position: Option<u32>) -> Input {
        forwarded(
            attempt,
            ForwardOutcome::Busy {
                retry_after_ms,
                position,
            },
        )
    }

    /// An event of the first forward.
    pub(super) fn origin_event(event: OriginEvent) -> Input {
        Input::Origin { attempt: 1, event }
    }

    pub(super) fn events(effects: &[Effect]) -> Vec<SessionEvent> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Broadcast { event, .. } => Some(event.clone()),
                _ => None,
            })
            .collect()
    }

    pub(super) fn status_event(status: Status) -> SessionEvent {
        SessionEvent::Status { status }
    }

    #[test]
    fn a_new_session_waits_for_chunks_until_the_idle_expiry() {
        let s = new_session();
        assert_eq!(s.status, Status::Created);
        assert_eq!(
            s.upload,
            UploadProgress {
                offset: 0,
                length: Some(LEN)
            }
        );
        assert_eq!(
            s.deadline,
            Some(Deadline {
                at: T0 + 1_000,
                kind: DeadlineKind::IdleExpiry
            })
        );
        assert_eq!(s.snapshot().expires_at, Some(T0 + 1_000));
        assert!(!s.has_chunks);
        assert_eq!(s.seq, 0);
    }

    #[test]
    fn every_patch_slides_the_idle_expiry() {
        let mut s = new_session();
        let fx = ok(&mut s, Input::Patched { offset: 40 }, T0 + 900);
        assert_eq!(
            events(&fx),
            vec![
                SessionEvent::Upload {
                    offset: 40,
                    length: Some(LEN)
                },
                status_event(Status::Uploading)
            ]
        );
        assert_eq!(s.deadline.unwrap().at, T0 + 1_900);
        // Slower than the first idle expiry in total, but never idle for long: still alive.
        let fx = ok(&mut s, Input::Patched { offset: 80 }, T0 + 1_800);
        assert_eq!(
            events(&fx),
            vec![SessionEvent::Upload {
                offset: 80,
                length: Some(LEN)
            }]
        );
        assert_eq!(
            s.deadline,
            Some(Deadline {
                at: T0 + 2_800,
                kind: DeadlineKind::IdleExpiry
            })
        );
        assert!(s.has_chunks);
        assert_eq!(s.seq, 3);
    }

    #[test]
    fn offsets_never_go_backwards_or_past_the_length() {
        let mut s = new_session();
        ok(&mut s, Input::Patched { offset: 50 }, T0 + 1);
        let before = s.clone();
        assert_eq!(
            s.apply(Input::Patched { offset: 49 }, T0 + 2, &limits()),
            Err(LifecycleError::BadOffset {
                current: 50,
                offset: 49,
                length: Some(LEN)
            })
        );
        assert!(matches!(
            s.apply(Input::Patched { offset: LEN + 1 }, T0 + 2, &limits()),
            Err(LifecycleError::BadOffset { .. })
        ));
        assert_eq!(s, before, "a refused input leaves the session unchanged");
    }

    #[test]
    fn the_last_patch_uploads_and_forwards() {
        let mut s = new_session();
        let fx = ok(&mut s, Input::Patched { offset: LEN }, T0 + 10);
        assert_eq!(
            fx,
            vec![
                Effect::Broadcast {
                    seq: 1,
                    event: SessionEvent::Upload {
                        offset: LEN,
                        length: Some(LEN)
                    }
                },
                Effect::Broadcast {
                    seq: 2,
                    event: status_event(Status::Uploaded)
                },
                Effect::Forward,
            ]
        );
        assert_eq!(
            s.deadline,
            Some(Deadline {
                at: T0 + 510,
                kind: DeadlineKind::Watchdog
            })
        );
        assert_eq!(s.snapshot().expires_at, None);
        assert!(matches!(
            s.apply(Input::Patched { offset: LEN }, T0 + 11, &limits()),
            Err(LifecycleError::NotAllowed {
                status: Status::Uploaded,
                ..
            })
        ));
    }

    #[test]
    fn a_zero_length_upload_forwards_on_its_empty_patch() {
        let mut s = Session::new("ab".repeat(32), Some(0), meta(), T0, &limits());
        let fx = ok(&mut s, Input::Patched { offset: 0 }, T0);
        assert!(fx.contains(&Effect::Forward));
        assert_eq!(s.status, Status::Uploaded);
    }

    #[test]
    fn forwarding_then_processing_under_a_watchdog() {
        let mut s = uploaded();
        let fx = ok(&mut s, Input::ForwardStarted, T0 + 20);
        assert_eq!(events(&fx), vec![status_event(Status::Forwarding)]);
        assert_eq!(
            s.deadline,
            Some(Deadline {
                at: T0 + 520,
                kind: DeadlineKind::Watchdog
            })
        );
        let fx = ok(&mut s, accepted(1), T0 + 30);
        assert_eq!(events(&fx), vec![status_event(Status::Processing)]);
        let fx = ok(
            &mut s,
            origin_event(OriginEvent::Stage {
                stage: Stage::Probing,
            }),
            T0 + 400,
        );
        assert_eq!(
            events(&fx),
            vec![SessionEvent::Stage {
                stage: Stage::Probing
            }]
        );
        assert_eq!(
            s.deadline,
            Some(Deadline {
                at: T0 + 900,
                kind: DeadlineKind::Watchdog
            })
        );
        let progress = OriginEvent::Progress {
            stage: Stage::Extracting,
            fraction: 0.5,
        };
        ok(&mut s, origin_event(progress), T0 + 800);
        assert_eq!((s.stage, s.progress), (Some(Stage::Extracting), Some(0.5)));
        assert_eq!(s.deadline.unwrap().at, T0 + 1_300);
    }

    #[test]
    fn an_origin_event_before_the_202_means_processing_and_the_late_202_is_ignored() {
        let mut s = uploaded();
        ok(&mut s, Input::ForwardStarted, T0 + 20);
        let fx = ok(
            &mut s,
            origin_event(OriginEvent::Stage {
                stage: Stage::Received,
            }),
            T0 + 25,
        );
        assert_eq!(
            events(&fx),
            vec![
                SessionEvent::Stage {
                    stage: Stage::Received
                },
                status_event(Status::Processing)
            ]
        );
        let before = s.clone();
        assert_eq!(ok(&mut s, accepted(1), T0 + 30), vec![]);
        assert_eq!(
            (s.status, s.seq, s.deadline, s.in_flight),
            (before.status, before.seq, before.deadline, None),
            "the late 202 only ends the forward"
        );
        assert!(matches!(
            s.apply(transient(1), T0 + 31, &limits()),
            Err(LifecycleError::StaleAttempt { attempt: 1, .. })
        ));
    }

    #[test]
    fn progress_fractions_are_clamped() {
        let mut s = processing();
        for (fraction, stored) in [(f32::NAN, 0.0), (-1.0, 0.0), (7.0, 1.0)] {
            let fx = ok(
                &mut s,
                origin_event(OriginEvent::Progress {
                    stage: Stage::Analysing,
                    fraction,
                }),
                T0 + 40,
            );
            assert_eq!(s.progress, Some(stored));
            assert_eq!(
                events(&fx),
                vec![SessionEvent::Progress {
                    stage: Stage::Analysing,
                    fraction: stored
                }]
            );
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let l = limits();
        let delays: Vec<u64> = (1..=6).map(|n| l.forward_backoff(n)).collect();
        assert_eq!(delays, vec![10, 20, 40, 60, 60, 60]);
        assert_eq!(l.forward_backoff(u32::MAX), 60);
        let huge = Limits {
            forward_backoff_max_ms: u64::MAX,
            ..l
        };
        assert_eq!(huge.forward_backoff(200), u64::MAX);
    }

    #[test]
    fn a_failed_forward_waits_then_the_alarm_forwards_again() {
        let mut s = uploaded();
        ok(&mut s, Input::ForwardStarted, T0 + 20);
        assert_eq!(ok(&mut s, transient(1), T0 + 50), vec![]);
        assert_eq!(
            s.deadline,
            Some(Deadline {
                at: T0 + 60,
                kind: DeadlineKind::ForwardRetry
            })
        );
        assert_eq!(
            ok(&mut s, Input::Alarm, T0 + 59),
            vec![],
            "alarm before the deadline"
        );
        assert_eq!(ok(&mut s, Input::Alarm, T0 + 60), vec![Effect::Forward]);
        assert_eq!(
            s.deadline,
            Some(Deadline {
                at: T0 + 560,
                kind: DeadlineKind::Watchdog
            })
        );
        assert_eq!(
            ok(&mut s, Input::ForwardStarted, T0 + 61),
            vec![Effect::Send {
                attempt: 2,
                probe: false,
                resume_from: 0
            }]
        );
        ok(&mut s, transient(2), T0 + 70);
        assert_eq!(
            s.deadline.unwrap().at,
            T0 + 70 + 20,
            "second failure waits twice as long"
        );
    }

    #[test]
    fn origin_answers_become_inputs() {
        let answer = |status: Option<u16>, retry_after_ms: Option<u64>| ForwardResponse {
            status,
            retry_after_ms,
            running_attempt: Some(2),
            queue_position: Some(4),
        };
        assert_eq!(
            Input::from_forward_response(3, &answer(Some(202), None)),
            forwarded(3, ForwardOutcome::Accepted { running: Some(2) })
        );
        assert_eq!(
            Input::from_forward_response(3, &answer(Some(503), Some(5_000))),
            busy(3, Some(5_000), Some(4))
        );
        assert_eq!(
            Input::from_forward_response(3, &answer(Some(429), None)),
            busy(3, None, Some(4))
        );
        for status in [Some(504), Some(500), None] {
            assert_eq!(
                Input::from_forward_response(3, &answer(status, Some(9_000))),
                transient(3),
                "{status:?}"
            );
        }
        assert_eq!(
            Input::from_forward_response(3, &answer(Some(401), None)),
            forwarded(3, ForwardOutcome::Refused { status: 401 })
        );
    }

    #[test]
    fn a_refused_forward_fails_for_good_at_once() {
        for (status, code) in [
            (413, ErrorCode::TooLarge),
            (400, ErrorCode::Internal),
            (401, ErrorCode::Internal),
            (415, ErrorCode::Internal),
        ] {
            let mut s = uploaded();
            ok(&mut s, Input::ForwardStarted, T0 + 20);
            let fx = ok(
                &mut s,
                forwarded(1, ForwardOutcome::Refused { status }),
                T0 + 30,
            );
            assert_eq!(s.status, Status::Failed);
            assert_eq!(
                s.error.as_ref().map(|e| (e.code, e.retryable)),
                Some((code, false)),
                "{status}"
            );
            assert!(
                !s.has_chunks && fx.contains(&Effect::DeleteChunks),
                "a video that can never be analysed is not kept"
            );
        }
    }

    #[test]
    fn a_busy_origin_queues_the_session_without_spending_attempts() {
        let mut s = uploaded();
        ok(&mut s, Input::ForwardStarted, T0 + 20);
        let fx = ok(&mut s, busy(1, Some(100), Some(3)), T0 + 50);
        let queue = Queue {
            since: T0 + 50,
            position: Some(3),
        };
        assert_eq!(
            events(&fx),
            vec![
                SessionEvent::Queued {
                    since: T0 + 50,
                    position: Some(3)
                },
                status_event(Status::Queued)
            ]
        );
        assert_eq!(s.snapshot().queue, Some(queue));
        let deadline = s.deadline.unwrap();
        assert_eq!(deadline.kind, DeadlineKind::ForwardRetry);
        assert!(
            (T0 + 150..=T0 + 200).contains(&deadline.at),
            "Retry-After honoured, spread by at most half: {}",
            deadline.at - T0 - 50
        );
        // Far more busy answers than forward attempts: still queued, the wait kept from the
        // first one, Retry-After bounded by the minimum and the maximum.
        let mut now = deadline.at;
        for (n, (retry_after, waited)) in [(Some(5_000), 400), (Some(1), 100), (None, 100)]
            .into_iter()
            .enumerate()
        {
            let attempt = 2 + n as u32;
            assert_eq!(ok(&mut s, Input::Alarm, now), vec![Effect::Forward]);
            assert_eq!(
                ok(&mut s, Input::ForwardStarted, now),
                vec![Effect::Send {
                    attempt,
                    probe: true,
                    resume_from: 0
                }],
                "the status stays queued while it asks again, body-less first"
            );
            let fx = ok(&mut s, busy(attempt, retry_after, Some(3)), now + 1);
            assert_eq!(fx, vec![], "same position: nothing new to say");
            let wait = s.deadline.unwrap().at - (now + 1);
            assert!(
                (waited..=waited + waited / 2).contains(&wait),
                "{retry_after:?}: waited {wait}"
            );
            now = s.deadline.unwrap().at;
        }
        assert_eq!((s.status, s.forward_attempts), (Status::Queued, 1));
        assert_eq!(s.queue, Some(queue));
        // A new position is news; then the origin takes the job.
        ok(&mut s, Input::Alarm, now);
        ok(&mut s, Input::ForwardStarted, now);
        let fx = ok(&mut s, busy(5, None, Some(1)), now + 1);
        assert_eq!(
            events(&fx),
            vec![SessionEvent::Queued {
                since: T0 + 50,
                position: Some(1)
            }]
        );
        let now = s.deadline.unwrap().at;
        ok(&mut s, Input::Alarm, now);
        ok(&mut s, Input::ForwardStarted, now);
        let fx = ok(&mut s, accepted(6), now + 1);
        assert_eq!(events(&fx), vec![status_event(Status::Processing)]);
        assert_eq!((s.queue, s.snapshot().queue), (None, None));
    }

    #[test]
    fn sessions_told_the_same_retry_after_at_once_ask_again_at_different_times() {
        let waits: Vec<Millis> = (0..100u32)
            .map(|n| {
                let mut s = Session::new(format!("{n:064x}"), Some(LEN), meta(), T0, &limits());
                ok(&mut s, Input::Patched { offset: LEN }, T0 + 10);
                ok(&mut s, Input::ForwardStarted, T0 + 20);
                ok(&mut s, busy(1, Some(400), None), T0 + 50);
                s.deadline.unwrap().at - (T0 + 50)
            })
            .collect();
        assert!(waits.iter().all(|w| (400..=600).contains(w)), "{waits:?}");
        let most_at_once = waits
            .iter()
            .map(|w| waits.iter().filter(|&v| v == w).count())
            .max();
        assert!(
            most_at_once <= Some(4),
            "{most_at_once:?} of 100 ask in the same millisecond"
        );
        let early = waits.iter().filter(|&&w| w < 500).count();
        assert!(
            (30..=70).contains(&early),
            "{early} of 100 in the first half of the spread"
        );
    }

    #[test]
    fn the_queue_limit_fails_busy_retryable() {
        let mut s = uploaded();
        ok(&mut s, Input::ForwardStarted, T0 + 20);
        ok(&mut s, busy(1, Some(400), None), T0 + 100);
        let mut attempt = 1;
        while s.status == Status::Queued {
            let at = s.deadline.unwrap().at;
            assert!(at <= T0 + 100 + 1_500, "no retry past the queue limit");
            let fx = ok(&mut s, Input::Alarm, at);
            if fx == vec![Effect::Forward] {
                attempt += 1;
                ok(&mut s, Input::ForwardStarted, at);
                ok(&mut s, busy(attempt, Some(400), None), at);
            }
        }
        assert_eq!(s.status, Status::Failed);
        assert_eq!(
            s.error.as_ref().map(|e| (e.code, e.retryable)),
            Some((ErrorCode::OriginBusy, true))
        );
        assert!(s.has_chunks, "retryable: the video stays for \"Réessayer\"");
        assert_eq!(s.queue, None);
    }

    #[test]
    fn a_transient_answer_while_queued_spends_an_attempt_and_ends_the_wait() {
        let mut s = uploaded();
        ok(&mut s, Input::ForwardStarted, T0 + 20);
        ok(&mut s, busy(1, None, None), T0 + 30);
        let at = s.deadline.unwrap().at;
        ok(&mut s, Input::Alarm, at);
        ok(&mut s, Input::ForwardStarted, at);
        let fx = ok(&mut s, transient(2), at + 1);
        assert_eq!(events(&fx), vec![status_event(Status::Forwarding)]);
        assert_eq!((s.queue, s.forward_attempts), (None, 1));
        assert_eq!(s.deadline.unwrap().kind, DeadlineKind::ForwardRetry);
        let at = s.deadline.unwrap().at;
        assert_eq!(ok(&mut s, Input::Alarm, at), vec![Effect::Forward]);
        assert_eq!(s.forward_attempts, 2);
    }

    #[test]
    fn used_up_forwards_fail_retryable_and_keep_the_chunks() {
        let mut s = uploaded();
        let mut now = T0 + 20;
        for attempt in 1..=2 {
            ok(&mut s, Input::ForwardStarted, now);
            ok(&mut s, transient(attempt), now + 1);
            now = s.deadline.unwrap().at;
            assert_eq!(ok(&mut s, Input::Alarm, now), vec![Effect::Forward]);
        }
        ok(&mut s, Input::ForwardStarted, now);
        let fx = ok(&mut s, transient(3), now + 1);
        let error = origin_unavailable(3);
        assert_eq!(
            events(&fx),
            vec![
                SessionEvent::Failed {
                    error: error.clone()
                },
                status_event(Status::Failed)
            ]
        );
        assert!(!fx.contains(&Effect::DeleteChunks));
        assert!(s.has_chunks && error.retryable);
        assert_eq!(
            s.deadline,
            Some(Deadline {
                at: now + 1 + 2_000,
                kind: DeadlineKind::Retention
            })
        );
    }

    #[test]
    fn the_watchdog_reforwards_a_silent_job_then_gives_up() {
        let mut s = processing();
        let at = s.deadline.unwrap().at;
        let fx = ok(&mut s, Input::Alarm, at);
        assert_eq!(
            fx,
            vec![
                Effect::Broadcast {
                    seq: 5,
                    event: status_event(Status::Forwarding)
                },
                Effect::Forward,
            ]
        );
        let at = s.deadline.unwrap().at;
        assert_eq!(ok(&mut s, Input::Alarm, at), vec![Effect::Forward]);
        let at = s.deadline.unwrap().at;
        let fx = ok(&mut s, Input::Alarm, at);
        assert_eq!(events(&fx)[1], status_event(Status::Failed));
        assert_eq!(
            s.error.as_ref().map(|e| (e.code, e.retryable)),
            Some((ErrorCode::OriginUnavailable, true))
        );
        assert_eq!(s.deadline.unwrap().kind, DeadlineKind::Retention);
    }

    #[test]
    fn completion_deletes_the_chunks_and_keeps_the_result_for_the_retention() {
        let mut s = processing();
        let fx = ok(
            &mut s,
            origin_event(OriginEvent::Completed { result: result() }),
            T0 + 100,
        );
        assert_eq!(
            fx,
            vec![
                Effect::DeleteChunks,
                Effect::Broadcast {
                    seq: 5,
                    event: SessionEvent::Completed { result: result() }
                },
                Effect::Broadcast {
                    seq: 6,
                    event: status_event(Status::Completed)
                },
            ]
        );
        assert!(!s.has_chunks);
        let snapshot = s.snapshot();
        assert_eq!(snapshot.status, Status::Completed);
        assert_eq!(snapshot.result.as_ref(), Some(&*result()));
        assert_eq!(snapshot.seq, 6);
        assert_eq!(snapshot.expires_at, Some(T0 + 2_100));
    }

    #[test]
    fn duplicate_or_late_origin_events_after_the_end_change_nothing() {
        let mut s = processing();
        ok(
            &mut s,
            origin_event(OriginEvent::Completed { result: result() }),
            T0 + 100,
        );
        let before = s.clone();
        for event in [
            OriginEvent::Completed { result: result() },
            OriginEvent::Failed {
                error: failure(ErrorCode::Internal, false),
            },
            OriginEvent::Stage {
                stage: Stage::Delivering,
            },
        ] {
            assert_eq!(ok(&mut s, origin_event(event), T0 + 200), vec![]);
        }
        assert_eq!(s, before);
    }

    #[test]
    fn a_terminal_failure_deletes_the_chunks_a_retryable_one_keeps_them() {
        let mut s = processing();
        let error = failure(ErrorCode::UnsupportedMedia, false);
        let fx = ok(
            &mut s,
            origin_event(OriginEvent::Failed {
                error: error.clone(),
            }),
            T0 + 100,
        );
        assert_eq!(fx[0], Effect::DeleteChunks);
        assert_eq!(
            events(&fx),
            vec![SessionEvent::Failed { error }, status_event(Status::Failed)]
        );
        assert!(!s.has_chunks);
        assert_eq!(
            s.deadline,
            Some(Deadline {
                at: T0 + 2_100,
                kind: DeadlineKind::Retention
            })
        );

        let mut s = processing();
        let error = failure(ErrorCode::ModelUnavailable, true);
        let fx = ok(
            &mut s,
            origin_event(OriginEvent::Failed { error }),
            T0 + 100,
        );
        assert!(!fx.contains(&Effect::DeleteChunks));
        assert!(s.has_chunks);
    }

    #[test]
    fn retry_reruns_a_retryable_failure_from_the_stored_upload() {
        let mut s = processing();
        let error = failure(ErrorCode::ModelUnavailable, true);
        ok(
            &mut s,
            origin_event(OriginEvent::Failed { error }),
            T0 + 100,
        );
        let fx = ok(&mut s, Input::Retry, T0 + 200);
        assert_eq!(
            fx,
            vec![
                Effect::Broadcast {
                    seq: 7,
                    event: status_event(Status::Uploaded)
                },
                Effect::Forward,
            ]
        );
        assert_eq!(
            (s.error.clone(), s.stage, s.forward_attempts),
            (None, None, 1)
        );
        assert_eq!(
            s.deadline,
            Some(Deadline {
                at: T0 + 700,
                kind: DeadlineKind::Watchdog
            })
        );
        assert!(matches!(
            s.apply(Input::Retry, T0 + 201, &limits()),
            Err(LifecycleError::NotAllowed {
                status: Status::Uploaded,
                input: "retry"
            })
        ));
        // The run's attempts restart; the job number on the wire keeps growing.
        assert_eq!(s.forwards_sent, 1);
        ok(&mut s, Input::ForwardStarted, T0 + 210);
        assert_eq!((s.forward_attempts, s.forwards_sent), (1, 2));
    }

    #[test]
    fn retry_is_refused_without_a_retryable_failure_and_its_chunks() {
        let mut terminal = processing();
        let error = failure(ErrorCode::InvalidMedia, false);
        ok(
            &mut terminal,
            origin_event(OriginEvent::Failed { error }),
            T0 + 100,
        );
        let mut completed = processing();
        ok(
            &mut completed,
            origin_event(OriginEvent::Completed { result: result() }),
            T0 + 100,
        );
        for mut s in [new_session(), processing(), terminal, completed] {
            let status = s.status;
            assert_eq!(
                s.apply(Input::Retry, T0 + 300, &limits()),
                Err(LifecycleError::NotAllowed {
                    status,
                    input: "retry"
                })
            );
        }
    }

    #[test]
    fn origin_events_during_the_upload_are_not_allowed() {
        let mut s = new_session();
        ok(&mut s, Input::Patched { offset: 10 }, T0 + 1);
        for event in [
            OriginEvent::Stage {
                stage: Stage::Received,
            },
            OriginEvent::Completed { result: result() },
        ] {
            assert_eq!(
                s.apply(origin_event(event), T0 + 2, &limits()),
                Err(LifecycleError::NotAllowed {
                    status: Status::Uploading,
                    input: "origin event"
                })
            );
        }
        assert!(matches!(
            s.apply(accepted(1), T0 + 2, &limits()),
            Err(LifecycleError::NotAllowed { .. })
        ));
    }

    #[test]
    fn a_late_result_beats_a_failure_the_edge_decided() {
        let mut s = processing();
        for _ in 0..3 {
            let at = s.deadline.unwrap().at;
            ok(&mut s, Input::Alarm, at);
        }
        assert_eq!(s.status, Status::Failed);
        let fx = ok(
            &mut s,
            origin_event(OriginEvent::Completed { result: result() }),
            T0 + 5_000,
        );
        assert!(fx.contains(&Effect::DeleteChunks));
        assert_eq!((s.status, s.error.clone()), (Status::Completed, None));
        assert!(s.result.is_some());
    }

    #[test]
    fn terminate_purges_from_any_state_and_keeps_no_user_data() {
        let mut finished = processing();
        ok(
            &mut finished,
            origin_event(OriginEvent::Completed { result: result() }),
            T0 + 100,
        );
        let mut forwarding = uploaded();
        ok(&mut forwarding, Input::ForwardStarted, T0 + 20);
        let mut queued = forwarding.clone();
        ok(&mut queued, busy(1, None, None), T0 + 30);
        // Uploaded: the forward task has not been told to send yet, so the origin has nothing.
        for (mut s, origin_has_it) in [
            (new_session(), false),
            (uploaded(), false),
            (forwarding, true),
            (queued, true),
            (processing(), true),
            (finished, false),
        ] {
            let seq = s.seq;
            let fx = ok(&mut s, Input::Terminate, T0 + 1_000);
            let mut expected = vec![
                Effect::Broadcast {
                    seq: seq + 1,
                    event: status_event(Status::Purged),
                },
                Effect::Purge,
            ];
            if origin_has_it {
                expected.push(Effect::CancelOrigin);
            }
            assert_eq!(fx, expected);
            assert_eq!(s.status, Status::Purged);
            assert_eq!(
                (s.result.clone(), s.error.clone(), s.meta.filename.clone()),
                (None, None, None)
            );
            assert!(!s.has_chunks);
            assert_eq!(
                s.deadline,
                Some(Deadline {
                    at: T0 + 4_000,
                    kind: DeadlineKind::Tombstone
                })
            );
        }
    }

    #[test]
    fn purged_refuses_everything_until_the_tombstone_is_forgotten() {
        let mut s = uploaded();
        ok(&mut s, Input::Terminate, T0 + 100);
        let before = s.clone();
        for input in [
            Input::Patched { offset: LEN },
            accepted(1),
            origin_event(OriginEvent::Completed { result: result() }),
            Input::Retry,
            Input::Terminate,
            Input::Alarm,
        ] {
            assert_eq!(
                s.apply(input, T0 + 200, &limits()),
                Err(LifecycleError::Purged)
            );
        }
        assert_eq!(s, before);
        assert_eq!(ok(&mut s, Input::Alarm, T0 + 3_100), vec![Effect::Forget]);
        assert_eq!(s.deadline, None);
        assert_eq!(
            s.apply(Input::Alarm, T0 + 9_999, &limits()),
            Err(LifecycleError::Purged)
        );
    }

    #[test]
    fn an_idle_upload_is_purged_at_its_expiry() {
        let mut s = new_session();
        ok(&mut s, Input::Patched { offset: 10 }, T0 + 100);
        assert_eq!(ok(&mut s, Input::Alarm, T0 + 1_099), vec![]);
        let fx = ok(&mut s, Input::Alarm, T0 + 1_100);
        assert_eq!(fx.last(), Some(&Effect::Purge));
        assert_eq!(s.status, Status::Purged);
    }

    #[test]
    fn the_retention_ends_in_a_purge() {
        let mut s = processing();
        ok(
            &mut s,
            origin_event(OriginEvent::Completed { result: result() }),
            T0 + 100,
        );
        let fx = ok(&mut s, Input::Alarm, T0 + 2_100);
        assert_eq!(events(&fx), vec![status_event(Status::Purged)]);
        assert_eq!(fx.last(), Some(&Effect::Purge));
        assert_eq!(s.result, None);
    }

    #[test]
    fn progress_broadcasts_are_throttled_by_bytes_and_time() {
        let len = 100 * 1024 * 1024;
        let mib = 1024 * 1024;
        let len = Some(len);
        assert!(!should_broadcast_progress(mib, T0, 2 * mib, T0 + 10, len));
        assert!(should_broadcast_progress(
            mib,
            T0,
            2 * mib,
            T0 + PROGRESS_INTERVAL_MS,
            len
        ));
        assert!(should_broadcast_progress(0, T0, 5 * mib, T0 + 1, len));
        assert!(
            should_broadcast_progress(99 * mib, T0, 100 * mib, T0, len),
            "the last one always goes"
        );
        assert!(
            !should_broadcast_progress(mib, T0, mib, T0 + 10_000, len),
            "nothing new"
        );
        // A deferred length: by time only, and no final one until the length is known.
        assert!(!should_broadcast_progress(0, T0, 50 * mib, T0 + 10, None));
        assert!(should_broadcast_progress(
            0,
            T0,
            mib,
            T0 + PROGRESS_INTERVAL_MS,
            None
        ));
    }

    fn deferred() -> Session {
        Session::new("ab".repeat(32), None, meta(), T0, &limits())
    }

    #[test]
    fn a_deferred_upload_never_forwards_until_its_length_is_declared() {
        let mut s = deferred();
        assert_eq!(s.snapshot().upload.length, None);
        let fx = ok(&mut s, Input::Patched { offset: 40 }, T0 + 10);
        assert_eq!(
            events(&fx),
            vec![
                SessionEvent::Upload {
                    offset: 40,
                    length: None
                },
                status_event(Status::Uploading)
            ]
        );
        assert_eq!(
            s.deadline,
            Some(after(T0 + 10, 1_000, DeadlineKind::IdleExpiry))
        );
        // Far more than any length could be: the edge's tus rules bound the bytes, not this.
        let fx = ok(&mut s, Input::Patched { offset: 10 * LEN }, T0 + 20);
        assert!(!fx.contains(&Effect::Forward));
        assert_eq!(s.status, Status::Uploading);
        // An empty PATCH does not complete it either.
        assert!(ok(&mut s, Input::Patched { offset: 10 * LEN }, T0 + 30).is_empty());
        assert_eq!(s.status, Status::Uploading);
    }

    #[test]
    fn a_zero_byte_final_patch_declares_the_length_and_forwards() {
        let mut s = deferred();
        ok(&mut s, Input::Patched { offset: 60 }, T0 + 10);
        assert!(ok(&mut s, Input::LengthDeclared { length: 60 }, T0 + 20).is_empty());
        assert_eq!(s.upload.length, Some(60));
        ok(&mut s, Input::PatchStarted, T0 + 20);
        let fx = ok(&mut s, Input::Patched { offset: 60 }, T0 + 21);
        assert_eq!(
            events(&fx),
            vec![
                SessionEvent::Upload {
                    offset: 60,
                    length: Some(60)
                },
                status_event(Status::Uploaded)
            ]
        );
        assert!(fx.contains(&Effect::Forward));
    }

    #[test]
    fn a_declared_length_bounds_the_rest_and_never_changes() {
        let mut s = deferred();
        ok(&mut s, Input::Patched { offset: 30 }, T0 + 1);
        let below = s.apply(Input::LengthDeclared { length: 29 }, T0 + 2, &limits());
        assert_eq!(
            below,
            Err(LifecycleError::BadLength {
                known: None,
                offset: 30,
                length: 29
            })
        );
        ok(&mut s, Input::LengthDeclared { length: 50 }, T0 + 3);
        // Sent again by a client retrying its final PATCH: nothing changes.
        assert!(ok(&mut s, Input::LengthDeclared { length: 50 }, T0 + 4).is_empty());
        assert!(matches!(
            s.apply(Input::LengthDeclared { length: 51 }, T0 + 5, &limits()),
            Err(LifecycleError::BadLength {
                known: Some(50),
                ..
            })
        ));
        assert!(matches!(
            s.apply(Input::Patched { offset: 51 }, T0 + 6, &limits()),
            Err(LifecycleError::BadOffset { .. })
        ));
        // The declaring PATCH's body failed; the next one, without the header, finishes it.
        ok(&mut s, Input::Patched { offset: 30 }, T0 + 7);
        let fx = ok(&mut s, Input::Patched { offset: 50 }, T0 + 8);
        assert!(fx.contains(&Effect::Forward));
        assert!(matches!(
            s.apply(Input::LengthDeclared { length: 50 }, T0 + 9, &limits()),
            Err(LifecycleError::NotAllowed { .. })
        ));
    }

    #[test]
    fn sessions_persist_as_json_and_snapshots_carry_no_chunk_data() {
        let mut s = processing();
        ok(
            &mut s,
            origin_event(OriginEvent::Completed { result: result() }),
            T0 + 100,
        );
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Session>(&text).unwrap(), s);
        let snapshot = serde_json::to_value(s.snapshot()).unwrap();
        let mut keys: Vec<&str> = snapshot
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "error",
                "expires_at",
                "meta",
                "progress",
                "queue",
                "result",
                "seq",
                "session_id",
                "stage",
                "status",
                "upload"
            ]
        );
        assert_eq!(snapshot["status"], "completed");
    }

    #[test]
    fn a_heartbeat_only_pushes_the_watchdog() {
        let mut s = processing();
        ok(
            &mut s,
            origin_event(OriginEvent::Progress {
                stage: Stage::Analysing,
                fraction: 0.4,
            }),
            T0 + 100,
        );
        let before = s.clone();
        let fx = ok(&mut s, origin_event(OriginEvent::Heartbeat), T0 + 450);
        assert_eq!(fx, vec![], "nothing stored or broadcast");
        assert_eq!(
            (s.stage, s.progress, s.seq),
            (before.stage, before.progress, before.seq)
        );
        assert_eq!(
            s.deadline,
            Some(Deadline {
                at: T0 + 950,
                kind: DeadlineKind::Watchdog
            })
        );
        // A pending retry keeps its time: a heartbeat is no reason to wait longer.
        let mut s = uploaded();
        ok(&mut s, Input::ForwardStarted, T0 + 20);
        ok(&mut s, transient(1), T0 + 30);
        let deadline = s.deadline;
        ok(&mut s, origin_event(OriginEvent::Heartbeat), T0 + 35);
        assert_eq!(s.deadline, deadline);
    }

    #[test]
    fn events_of_another_attempt_are_stale() {
        let mut s = processing();
        // The watchdog re-forwards (attempt 2); the origin takes it as a new job.
        let at = s.deadline.unwrap().at;
        ok(&mut s, Input::Alarm, at);
        ok(&mut s, Input::ForwardStarted, at);
        ok(&mut s, accepted(2), at + 1);
        assert_eq!(s.origin_attempt, 2);
        let before = s.clone();
        let late = OriginEvent::Failed {
            error: failure(ErrorCode::ModelUnavailable, true),
        };
        for attempt in [1, 3] {
            assert_eq!(
                s.apply(
                    Input::Origin {
                        attempt,
                        event: late.clone()
                    },
                    at + 2,
                    &limits()
                ),
                Err(LifecycleError::StaleAttempt {
                    attempt,
                    current: 2,
                    latest: 2
                })
            );
        }
        assert_eq!(s, before);
        let fx = ok(
            &mut s,
            Input::Origin {
                attempt: 2,
                event: OriginEvent::Completed { result: result() },
            },
            at + 3,
        );
        assert!(fx.contains(&Effect::DeleteChunks));
    }

    #[test]
    fn a_duplicate_forward_names_the_job_that_runs() {
        // The origin still runs attempt 1 when the watchdog re-forwards: its answer names 1, so
        // attempt 1's events (not only 2's) are the job's.
        let mut s = processing();
        let at = s.deadline.unwrap().at;
        ok(&mut s, Input::Alarm, at);
        ok(&mut s, Input::ForwardStarted, at);
        ok(
            &mut s,
            forwarded(2, ForwardOutcome::Accepted { running: Some(1) }),
            at + 1,
        );
        assert_eq!((s.status, s.origin_attempt), (Status::Processing, 1));
        ok(
            &mut s,
            origin_event(OriginEvent::Completed { result: result() }),
            at + 2,
        );
        assert_eq!(s.status, Status::Completed);
    }

    #[test]
    fn a_retry_makes_the_earlier_run_stale() {
        let mut s = processing();
        let error = failure(ErrorCode::ModelUnavailable, true);
        ok(
            &mut s,
            origin_event(OriginEvent::Failed { error }),
            T0 + 100,
        );
        ok(&mut s, Input::Retry, T0 + 200);
        // The earlier run's outbox delivers its failure again: not this run's.
        let late = origin_event(OriginEvent::Failed {
            error: failure(ErrorCode::Timeout, true),
        });
        assert!(matches!(
            s.apply(late, T0 + 205, &limits()),
            Err(LifecycleError::StaleAttempt { attempt: 1, .. })
        ));
        assert_eq!(
            ok(&mut s, Input::ForwardStarted, T0 + 210),
            vec![
                Effect::Broadcast {
                    seq: 8,
                    event: status_event(Status::Forwarding)
                },
                Effect::Send {
                    attempt: 2,
                    probe: false,
                    resume_from: 0
                }
            ]
        );
    }

    #[test]
    fn a_forward_wanted_while_one_is_in_flight_waits_for_it() {
        // The origin reports a retryable failure before its 202 arrives; the user presses
        // "Réessayer" at once: the new forward waits for the one in flight, then goes.
        let mut s = uploaded();
        ok(&mut s, Input::ForwardStarted, T0 + 20);
        let error = failure(ErrorCode::ModelUnavailable, true);
        ok(&mut s, origin_event(OriginEvent::Failed { error }), T0 + 25);
        let fx = ok(&mut s, Input::Retry, T0 + 26);
        assert!(!fx.contains(&Effect::Forward), "one forward at a time");
        assert_eq!(ok(&mut s, Input::ForwardStarted, T0 + 27), vec![]);
        assert!(s.forward_due);
        // The old forward's 202 belongs to the earlier run: it only frees the way.
        let fx = ok(&mut s, accepted(1), T0 + 30);
        assert_eq!(fx, vec![Effect::Forward]);
        assert_eq!(s.status, Status::Uploaded);
        let fx = ok(&mut s, Input::ForwardStarted, T0 + 31);
        assert_eq!(
            fx.last(),
            Some(&Effect::Send {
                attempt: 2,
                probe: false,
                resume_from: 0
            })
        );
        assert_eq!(
            ok(&mut s, Input::ForwardStarted, T0 + 32),
            vec![],
            "not twice"
        );
    }

    #[test]
    fn a_forward_no_longer_wanted_is_not_sent() {
        let mut s = uploaded();
        ok(&mut s, Input::ForwardStarted, T0 + 20);
        ok(&mut s, accepted(1), T0 + 30);
        let before = s.clone();
        assert_eq!(ok(&mut s, Input::ForwardStarted, T0 + 40), vec![]);
        assert_eq!(s, before);
    }

    #[test]
    fn the_watchdog_gives_up_on_a_forward_that_never_answers() {
        let mut s = uploaded();
        ok(&mut s, Input::ForwardStarted, T0 + 20);
        let at = s.deadline.unwrap().at;
        assert_eq!(ok(&mut s, Input::Alarm, at), vec![Effect::Forward]);
        assert_eq!(s.in_flight, None);
        assert_eq!(
            ok(&mut s, Input::ForwardStarted, at).last(),
            Some(&Effect::Send {
                attempt: 2,
                probe: false,
                resume_from: 0
            })
        );
        assert!(
            s.apply(transient(1), at + 1, &limits()).is_err(),
            "the lost forward's late outcome is stale"
        );
    }

    #[test]
    fn a_patch_in_progress_defers_the_idle_purge() {
        let mut s = new_session();
        ok(&mut s, Input::Patched { offset: 10 }, T0 + 100);
        assert_eq!(ok(&mut s, Input::PatchStarted, T0 + 200), vec![]);
        // One long PATCH: no row committed for longer than the idle expiry.
        let at = s.deadline.unwrap().at;
        assert_eq!(ok(&mut s, Input::Alarm, at), vec![]);
        assert_eq!(
            (s.status, s.deadline.unwrap().at),
            (Status::Uploading, at + 1_000)
        );
        ok(&mut s, Input::Patched { offset: 60 }, at + 500);
        assert_eq!(s.receiving, 0);
        let at = s.deadline.unwrap().at;
        let fx = ok(&mut s, Input::Alarm, at);
        assert_eq!(fx.last(), Some(&Effect::Purge), "idle again once it ended");
        // A PATCH that committed nothing ends too, without an upload event.
        let mut s = new_session();
        ok(&mut s, Input::PatchStarted, T0 + 1);
        assert_eq!(ok(&mut s, Input::Patched { offset: 0 }, T0 + 2), vec![]);
        assert_eq!(s.receiving, 0);
        assert!(matches!(
            uploaded().apply(Input::PatchStarted, T0 + 20, &limits()),
            Err(LifecycleError::NotAllowed { .. })
        ));
    }

    #[test]
    fn the_lifetime_purges_whatever_the_state() {
        // A session that keeps failing and retrying, or a PATCH that never ends.
        let mut s = processing();
        let error = failure(ErrorCode::ModelUnavailable, true);
        ok(
            &mut s,
            origin_event(OriginEvent::Failed { error }),
            T0 + 99_000,
        );
        assert_eq!(
            s.deadline,
            Some(Deadline {
                at: T0 + 100_000,
                kind: DeadlineKind::Lifetime
            }),
            "the retention would end later"
        );
        assert_eq!(s.snapshot().expires_at, Some(T0 + 100_000));
        let fx = ok(&mut s, Input::Alarm, T0 + 100_000);
        assert_eq!(fx.last(), Some(&Effect::Purge));
        assert!(!s.has_chunks);

        let mut s = new_session();
        ok(&mut s, Input::PatchStarted, T0 + 1);
        while s.status != Status::Purged {
            let at = s.deadline.unwrap().at;
            assert!(at <= T0 + 100_000);
            ok(&mut s, Input::Alarm, at);
        }
        // An input after the end (a late alarm) purges instead of being applied; the origin,
        // still running the job, is told to stop.
        let mut s = processing();
        let fx = ok(
            &mut s,
            origin_event(OriginEvent::Completed { result: result() }),
            T0 + 100_001,
        );
        assert_eq!(fx[fx.len() - 2..], [Effect::Purge, Effect::CancelOrigin]);
        assert_eq!((s.status, s.result.clone()), (Status::Purged, None));
    }

    #[test]
    fn retries_are_capped_and_the_last_failure_is_final() {
        let mut s = processing();
        let error = failure(ErrorCode::ModelUnavailable, true);
        let mut now = T0 + 100;
        ok(
            &mut s,
            origin_event(OriginEvent::Failed {
                error: error.clone(),
            }),
            now,
        );
        for retry in 1..=2 {
            now += 10;
            ok(&mut s, Input::Retry, now);
            ok(&mut s, Input::ForwardStarted, now);
            let attempt = s.forwards_sent;
            ok(&mut s, accepted(attempt), now);
            let fx = ok(
                &mut s,
                Input::Origin {
                    attempt,
                    event: OriginEvent::Failed {
                        error: error.clone(),
                    },
                },
                now + 1,
            );
            assert_eq!(s.retries, retry);
            let last = retry == 2;
            assert_eq!(s.error.as_ref().unwrap().retryable, !last);
            assert_eq!(fx.contains(&Effect::DeleteChunks), last);
        }
        assert!(!s.has_chunks, "no retry left: the video goes at once");
        let mut kept = s.clone();
        kept.has_chunks = true;
        kept.error.as_mut().unwrap().retryable = true;
        assert_eq!(
            kept.apply(Input::Retry, now + 5, &limits()),
            Err(LifecycleError::RetriesExhausted { max: 2 })
        );
    }

    /// Inputs the property tests draw from: `Patch` appends that many bytes (possibly past the
    /// length), `Outcome` answers the forward in flight (or, with an offset, another one),
    /// `Event` is an origin event of the attempt the edge applies plus an offset (0: current),
    /// `AlarmAtDeadline` jumps the clock to the deadline.
    #[derive(Clone, Debug)]
    enum Step {
        Input(Input),
        Patch(u64),
        Outcome(ForwardOutcome, i64),
        Event(OriginEvent, i64),
        /// The answer to the range in flight (or, with an offset, another stream's); `held` of
        /// an accepted answer counts from the range's start.
        Range(RangeOutcome, i64),
        /// The length declared as the current offset.
        Declare,
        AlarmAtDeadline,
    }

    fn any_origin_event() -> impl Strategy<Value = OriginEvent> {
        let stage = prop::sample::select(Stage::ALL.to_vec());
        let code = prop::sample::select(vec![
            ErrorCode::UnsupportedMedia,
            ErrorCode::ModelUnavailable,
            ErrorCode::Timeout,
        ]);
        prop_oneof![
            stage.clone().prop_map(|stage| OriginEvent::Stage { stage }),
            (stage, -1.0f32..2.0)
                .prop_map(|(stage, fraction)| OriginEvent::Progress { stage, fraction }),
            Just(OriginEvent::Heartbeat),
            Just(OriginEvent::Completed { result: result() }),
            (code, any::<bool>()).prop_map(|(code, retryable)| OriginEvent::Failed {
                error: failure(code, retryable)
            }),
        ]
    }

    fn any_outcome() -> impl Strategy<Value = ForwardOutcome> {
        prop_oneof![
            prop::option::of(1u32..4).prop_map(|running| ForwardOutcome::Accepted { running }),
            (prop::option::of(0u64..3_000), prop::option::of(1u32..50)).prop_map(
                |(retry_after_ms, position)| ForwardOutcome::Busy {
                    retry_after_ms,
                    position
                }
            ),
            Just(ForwardOutcome::Transient),
            prop::sample::select(vec![400u16, 401, 413, 415])
                .prop_map(|status| ForwardOutcome::Refused { status }),
        ]
    }

    fn any_range_outcome() -> impl Strategy<Value = RangeOutcome> {
        prop_oneof![
            6 => (0u64..80).prop_map(|held| RangeOutcome::Accepted { held }),
            2 => (0u64..60).prop_map(|held| RangeOutcome::Behind { held }),
            1 => Just(RangeOutcome::Busy),
            3 => Just(RangeOutcome::Transient),
            1 => prop::sample::select(vec![400u16, 401, 404, 405, 413])
                .prop_map(|status| RangeOutcome::Refused { status }),
        ]
    }

    /// Mostly the right attempt, sometimes an older or a newer one.
    fn attempt_offset() -> impl Strategy<Value = i64> {
        prop_oneof![6 => Just(0i64), 1 => -3i64..0, 1 => 1i64..3]
    }

    fn any_step() -> impl Strategy<Value = Step> {
        prop_oneof![
            36 => (0..=LEN / 3).prop_map(Step::Patch),
            4 => (0..=LEN + 5).prop_map(|offset| Step::Input(Input::Patched { offset })),
            6 => Just(Step::Input(Input::PatchStarted)),
            12 => Just(Step::Input(Input::ForwardStarted)),
            24 => (any_outcome(), attempt_offset()).prop_map(|(o, d)| Step::Outcome(o, d)),
            24 => (any_origin_event(), attempt_offset()).prop_map(|(e, d)| Step::Event(e, d)),
            6 => Just(Step::Input(Input::Retry)),
            1 => Just(Step::Input(Input::Terminate)),
            8 => Just(Step::Input(Input::Alarm)),
            6 => Just(Step::AlarmAtDeadline),
            12 => (any_range_outcome(), attempt_offset()).prop_map(|(o, d)| Step::Range(o, d)),
            2 => Just(Step::Declare),
        ]
    }

    fn offset(attempt: u32, by: i64) -> u32 {
        (i64::from(attempt) + by).max(0) as u32
    }

    /// The input a step stands for in state `s` at `now` (moved on by the step).
    fn input_of(step: Step, s: &Session, now: &mut Millis, dt: u64) -> Input {
        match step {
            Step::AlarmAtDeadline => {
                *now = (*now).max(s.deadline.map_or(*now, |d| d.at));
                return Input::Alarm;
            }
            _ => *now += dt,
        }
        match step {
            Step::Input(input) => input,
            Step::Patch(bytes) => Input::Patched {
                offset: s.upload.offset + bytes,
            },
            Step::Outcome(outcome, by) => Input::Forwarded {
                attempt: offset(s.in_flight.unwrap_or(s.forwards_sent), by),
                outcome,
            },
            Step::Event(event, by) => Input::Origin {
                attempt: offset(s.origin_attempt, by),
                event,
            },
            Step::Range(outcome, by) => {
                let stream = s.stream.clone().unwrap_or_default();
                let from = stream.range.map_or(stream.acked, |r| r.from);
                Input::RangeSent {
                    attempt: offset(stream.attempt.unwrap_or(s.forwards_sent), by),
                    outcome: match outcome {
                        RangeOutcome::Accepted { held } => {
                            RangeOutcome::Accepted { held: from + held }
                        }
                        other => other,
                    },
                }
            }
            Step::Declare => Input::LengthDeclared {
                length: s.upload.offset,
            },
            Step::AlarmAtDeadline => unreachable!(),
        }
    }

    fn deadline_fits(s: &Session) -> bool {
        use DeadlineKind::*;
        use Status::*;
        matches!(
            (s.status, s.deadline.map(|d| d.kind)),
            (Created | Uploading, Some(IdleExpiry))
                | (
                    Uploaded | Forwarding | Queued | Processing,
                    Some(Watchdog | ForwardRetry)
                )
                | (Completed | Failed, Some(Retention))
                | (Purged, Some(Tombstone) | None)
        ) || (s.status != Purged && s.deadline.map(|d| d.kind) == Some(Lifetime))
    }

    /// Streaming on, with ranges of at least 20 bytes.
    pub(super) fn stream_limits() -> Limits {
        Limits {
            forward_while_receiving: true,
            ..limits()
        }
    }

    /// A deferred-length upload that streams.
    pub(super) fn streaming() -> Session {
        Session::new("ab".repeat(32), None, meta(), T0, &stream_limits())
    }

    /// The starting points of the property tests: a new upload, uploaded, processing, and a
    /// streaming recording (with its limits).
    const STARTS: usize = 4;

    fn start(n: usize) -> (Session, Limits) {
        match n {
            3 => (streaming(), stream_limits()),
            n => ([new_session, uploaded, processing][n](), limits()),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn lifecycle_invariants_hold_for_any_input_sequence(
            first in 0..STARTS,
            steps in prop::collection::vec((any_step(), 0u64..400), 1..80),
        ) {
            let (mut s, limits) = start(first);
            let mut now = T0 + 100;
            for (step, dt) in steps {
                let input = input_of(step, &s, &mut now, dt);
                let before = s.clone();
                let outcome = s.apply(input.clone(), now, &limits);

                // No transition leaves purged.
                if before.status == Status::Purged {
                    prop_assert_eq!(s.status, Status::Purged);
                }
                // Tus offsets never go backwards, nor past the length.
                prop_assert!(s.upload.offset >= before.upload.offset);
                prop_assert!(s.upload.length.is_none_or(|length| s.upload.offset <= length));
                // The job number on the wire never repeats an older one.
                prop_assert!(s.forwards_sent >= before.forwards_sent);
                prop_assert!(s.forward_attempts <= limits.max_forward_attempts);
                prop_assert!(s.retries <= limits.max_retries);
                // The wait shows exactly while queued.
                prop_assert_eq!(s.queue.is_some(), s.status == Status::Queued);

                let effects = match outcome {
                    Err(_) => {
                        prop_assert_eq!(&s, &before, "an error leaves the session unchanged");
                        continue;
                    }
                    Ok(effects) => effects,
                };

                // Seq strictly increases, one per broadcast, and the session keeps the last.
                let mut seq = before.seq;
                for effect in &effects {
                    match effect {
                        Effect::Broadcast { seq: n, .. } => {
                            prop_assert_eq!(*n, seq + 1);
                            seq = *n;
                        }
                        Effect::Send { attempt, probe, resume_from } => {
                            // One forward at a time, each with a new number (or the stream's,
                            // which no forward used, resumed from what the origin holds); a
                            // queued session probes first, any other sends its video at once.
                            prop_assert_eq!(&input, &Input::ForwardStarted);
                            prop_assert_eq!(*probe, before.status == Status::Queued);
                            prop_assert_eq!(before.in_flight, None);
                            prop_assert!(!before.range_in_flight());
                            if *resume_from > 0 {
                                let stream = before.stream.clone().unwrap();
                                prop_assert_eq!(Some(*attempt), stream.attempt);
                                prop_assert_eq!(*resume_from, stream.acked);
                                prop_assert!(!stream.abandoned && !stream.finishing);
                                prop_assert_eq!(*attempt, before.forwards_sent);
                            } else {
                                prop_assert_eq!(*attempt, before.forwards_sent + 1);
                            }
                            prop_assert!(*resume_from <= s.upload.offset);
                            prop_assert_eq!(s.in_flight, Some(*attempt));
                        }
                        Effect::SendRange { attempt, from } => {
                            // One range at a time, from what the origin holds, only while
                            // receiving a deferred length, never beside a forward.
                            let stream = s.stream.clone().unwrap();
                            prop_assert_eq!(stream.attempt, Some(*attempt));
                            prop_assert_eq!(*from, stream.acked);
                            prop_assert_eq!(stream.range, Some(RangeInFlight { from: *from, sent_at: now }));
                            prop_assert!(*from + limits.stream_range_min <= s.upload.offset);
                            prop_assert!(!stream.abandoned && s.upload.length.is_none());
                            prop_assert!(matches!(s.status, Status::Created | Status::Uploading));
                            prop_assert_eq!(s.in_flight, None);
                            // The range before it was answered, or given up as lost.
                            let lost = |r: &RangeInFlight| now >= r.sent_at + limits.watchdog_ms;
                            let freed = match input {
                                Input::RangeSent { .. } => true,
                                Input::Patched { .. } => before.stream.as_ref().is_some_and(|b| {
                                    b.range.as_ref().is_some_and(lost)
                                }),
                                _ => false,
                            };
                            prop_assert!(freed || !before.range_in_flight());
                        }
                        Effect::Forward => {
                            prop_assert_eq!(s.in_flight, None);
                            prop_assert!(!s.range_in_flight());
                        }
                        _ => {}
                    }
                }
                prop_assert_eq!(s.seq, seq);
                let ranges = effects.iter().filter(|e| matches!(e, Effect::SendRange { .. }));
                prop_assert!(ranges.count() <= 1);
                // What the origin holds never exceeds what the edge committed; only a
                // deferred-length upload with streaming on has a stream.
                if let Some(stream) = &s.stream {
                    prop_assert!(stream.acked <= s.upload.offset);
                    prop_assert!(limits.forward_while_receiving);
                    prop_assert!(stream.failures <= limits.stream_max_failures);
                }

                // Exactly one deadline (none only once forgotten), never in the past after a
                // change caused by anything but the alarm, never past the lifetime.
                if effects.contains(&Effect::Forget) {
                    prop_assert_eq!(s.deadline, None);
                } else {
                    prop_assert!(s.deadline.is_some());
                }
                if s.deadline != before.deadline && !matches!(input, Input::Alarm) {
                    prop_assert!(s.deadline.unwrap().at >= now);
                }
                if s.status != Status::Purged {
                    prop_assert!(s.deadline.unwrap().at <= s.lifetime_end(&limits));
                }
                prop_assert!(deadline_fits(&s), "{:?} with {:?}", s.status, s.deadline);

                // Chunks only live while they may still be needed.
                if matches!(s.status, Status::Completed | Status::Purged) {
                    prop_assert!(!s.has_chunks);
                }
                if s.status == Status::Failed && s.has_chunks {
                    prop_assert!(s.error.as_ref().unwrap().retryable);
                }
                if before.has_chunks && !s.has_chunks && s.status != Status::Purged {
                    prop_assert!(effects.contains(&Effect::DeleteChunks));
                }
                if s.status == Status::Purged && before.status != Status::Purged {
                    prop_assert!(effects.contains(&Effect::Purge));
                    prop_assert!(s.result.is_none() && s.meta.filename.is_none());
                }
                // The origin is told to stop exactly when a purge finds it may run the job.
                let purged_now = s.status == Status::Purged && before.status != Status::Purged;
                prop_assert_eq!(
                    effects.iter().filter(|e| **e == Effect::CancelOrigin).count(),
                    usize::from(purged_now && before.origin_may_run())
                );
            }
        }

        /// Whatever happens, and however late the inputs come, no chunk outlives the lifetime:
        /// the alarm is due by then, and anything at or after it purges.
        #[test]
        fn no_input_sequence_keeps_chunks_past_the_absolute_lifetime(
            first in 0..STARTS,
            steps in prop::collection::vec((any_step(), 0u64..20_000), 1..60),
        ) {
            let (mut s, limits) = start(first);
            let mut now = T0 + 100;
            let end = s.lifetime_end(&limits);
            for (step, dt) in steps {
                let input = input_of(step, &s, &mut now, dt);
                let _ = s.apply(input, now, &limits);
                if now >= end {
                    prop_assert_eq!(s.status, Status::Purged);
                }
                if s.has_chunks {
                    prop_assert!(now < end);
                    prop_assert!(s.deadline.is_some_and(|d| d.at <= end));
                }
            }
        }

        /// An origin event of an attempt the edge no longer (or not yet) applies, and the
        /// outcome of a forward that is not in flight, never change the session.
        #[test]
        fn an_event_of_an_older_attempt_never_changes_the_state(
            first in 0..STARTS,
            steps in prop::collection::vec((any_step(), 0u64..400), 0..60),
            event in any_origin_event(),
            outcome in any_outcome(),
            range in any_range_outcome(),
            older in 1u32..5,
            newer in 1u32..5,
        ) {
            let (mut s, limits) = start(first);
            let mut now = T0 + 100;
            for (step, dt) in steps {
                let input = input_of(step, &s, &mut now, dt);
                let _ = s.apply(input, now, &limits);
            }
            now += 1;
            prop_assume!(now < s.lifetime_end(&limits));
            let before = s.clone();
            let stale = [
                s.origin_attempt.checked_sub(older),
                Some(s.forwards_sent + newer),
            ];
            for attempt in stale.into_iter().flatten() {
                let input = Input::Origin { attempt, event: event.clone() };
                prop_assert!(s.apply(input, now, &limits).is_err());
                prop_assert_eq!(&s, &before);
            }
            let not_in_flight = s.in_flight.map_or(s.forwards_sent, |a| a + newer);
            let input = Input::Forwarded { attempt: not_in_flight, outcome };
            prop_assert!(s.apply(input, now, &limits).is_err());
            prop_assert_eq!(&s, &before);
            let stream = s.stream.clone().unwrap_or_default();
            let not_sent = match (stream.attempt, stream.range) {
                (Some(attempt), Some(_)) => attempt + newer,
                _ => s.forwards_sent.saturating_sub(older),
            };
            let input = Input::RangeSent { attempt: not_sent, outcome: range };
            prop_assert!(s.apply(input, now, &limits).is_err());
            prop_assert_eq!(&s, &before);
        }

        /// Left alone (only the alarm, and an origin that answers forwards but never reports),
        /// every session ends, failed or completed or purged, then is forgotten; none outlives
        /// its lifetime.
        #[test]
        fn every_session_reaches_a_final_state_then_is_forgotten(
            first in 0..STARTS,
            steps in prop::collection::vec((any_step(), 0u64..400), 0..40),
            answers in prop::collection::vec(any_outcome(), 1..8),
        ) {
            let (mut s, limits) = start(first);
            let mut now = T0 + 100;
            for (step, dt) in steps {
                let input = input_of(step, &s, &mut now, dt);
                let _ = s.apply(input, now, &limits);
            }
            let end = s.lifetime_end(&limits);
            let mut answers = answers.into_iter().cycle();
            let mut finished_at = None;
            let mut forgotten = false;
            for _ in 0..10_000 {
                if s.status.is_final() && finished_at.is_none() {
                    finished_at = Some(now);
                }
                let Some(deadline) = s.deadline else {
                    forgotten = true;
                    break;
                };
                now = now.max(deadline.at);
                let mut effects = s.apply(Input::Alarm, now, &limits).unwrap_or_default();
                while effects.contains(&Effect::Forward) {
                    effects = s.apply(Input::ForwardStarted, now, &limits).unwrap();
                    if let Some(Effect::Send { attempt, .. }) = effects.last().cloned() {
                        let outcome = answers.next().unwrap();
                        effects = s
                            .apply(Input::Forwarded { attempt, outcome }, now, &limits)
                            .unwrap();
                    }
                }
            }
            prop_assert!(forgotten, "still {:?} with {:?}", s.status, s.deadline);
            prop_assert!(finished_at.is_some_and(|at| at <= end));
        }

        /// A deferred upload, whatever it receives (PATCHes, declarations right or wrong,
        /// alarms), forwards nothing before its length is known, and once it asks for a forward
        /// the length is the offset, declared once.
        #[test]
        fn a_deferred_upload_forwards_only_once_its_length_is_known(
            steps in prop::collection::vec(
                (
                    prop_oneof![
                        8 => any_step(),
                        3 => (0..=2 * LEN)
                            .prop_map(|length| Step::Input(Input::LengthDeclared { length })),
                    ],
                    0u64..400,
                ),
                1..80,
            ),
        ) {
            let limits = limits();
            let mut s = deferred();
            let mut now = T0 + 100;
            let mut declared = None;
            for (step, dt) in steps {
                let input = input_of(step, &s, &mut now, dt);
                let before = s.clone();
                let Ok(effects) = s.apply(input, now, &limits) else {
                    prop_assert_eq!(&s, &before);
                    continue;
                };
                if before.upload.length.is_some() {
                    prop_assert_eq!(s.upload.length, before.upload.length, "the length changed");
                }
                if s.upload.length.is_some() && declared.is_none() {
                    declared = s.upload.length;
                    prop_assert!(declared >= Some(before.upload.offset));
                }
                let forwards = effects
                    .iter()
                    .any(|e| matches!(e, Effect::Forward | Effect::Send { .. }));
                use Status::*;
                let past_upload = matches!(
                    s.status,
                    Uploaded | Forwarding | Queued | Processing | Completed
                );
                if forwards || past_upload {
                    prop_assert_eq!(s.upload.length, Some(s.upload.offset));
                }
                if s.upload.length.is_none() {
                    prop_assert!(!forwards);
                    prop_assert!(matches!(s.status, Created | Uploading | Purged));
                }
            }
        }

        #[test]
        fn uploads_in_random_chunks_always_reach_the_origin(
            chunks in prop::collection::vec(0u64..30, 1..40),
        ) {
            let mut s = new_session();
            let mut now = T0;
            let mut forwards = 0;
            for chunk in chunks {
                now += 1;
                let offset = (s.upload.offset + chunk).min(LEN);
                if s.status == Status::Uploaded {
                    break;
                }
                let fx = s.apply(Input::Patched { offset }, now, &limits()).unwrap();
                forwards += fx.iter().filter(|e| matches!(e, Effect::Forward)).count();
            }
            prop_assert_eq!(forwards, usize::from(s.status == Status::Uploaded));
        }
    }
}
