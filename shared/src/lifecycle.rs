//! The session state machine: created → uploading → uploaded → forwarding → processing →
//! completed | failed → purged.
//!
//! SKELETON: signatures are the contract the edge codes against; bodies are being written.
//!
//! The Durable Object owns exactly one [`Session`]; every request, origin event and alarm becomes
//! an [`Input`] applied with the current time. [`Session::apply`] returns the [`Effect`]s the
//! edge must perform (broadcast, forward, delete chunks, purge) and leaves in the session the one
//! [`Deadline`] the object's single alarm must be set to. Because time is an argument, every rule
//! (sliding expiry, backoff, watchdog, retention, tombstone) is tested without a runtime.

use crate::protocol::{
    AnalysisResult, Failure, Millis, OriginEvent, SessionEvent, Snapshot, Stage, Status,
    UploadMeta, UploadProgress,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Every duration the lifecycle uses, from the edge's configuration (wrangler vars).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Limits {
    /// An upload with no PATCH for this long is purged. Every PATCH pushes it (sliding).
    pub idle_expiry_ms: u64,
    /// How long the result snapshot (and, after a retryable failure, the chunks) stay.
    pub retention_ms: u64,
    /// How long a purged session answers 410 before it is forgotten (then 404).
    pub tombstone_ms: u64,
    /// No origin event for this long while forwarding or processing → re-forward.
    pub watchdog_ms: u64,
    /// First forward retry delay; doubles per attempt, capped at `forward_backoff_max_ms`.
    pub forward_backoff_ms: u64,
    pub forward_backoff_max_ms: u64,
    /// Forward attempts (first forward, retries and watchdog re-forwards) before
    /// `failed{origin_unavailable, retryable}`.
    pub max_forward_attempts: u32,
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
    Tombstone,
}

/// The single pending deadline of a session; the Durable Object's alarm is set to `at`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    pub at: Millis,
    pub kind: DeadlineKind,
}

/// What happened, as seen by the Durable Object.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// PATCH (or creation-with-upload) rows were written; `offset` is the new offset.
    Patched { offset: u64 },
    /// The edge starts streaming the video to the origin.
    ForwardStarted,
    /// The origin answered 202.
    ForwardAccepted,
    /// The origin could not be reached or refused (5xx, 503 with `retry_after_ms`).
    ForwardFailed { retry_after_ms: Option<u64> },
    /// A verified origin event.
    Origin(OriginEvent),
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
    /// Stream the stored upload to the origin, then report `ForwardAccepted`/`ForwardFailed`.
    Forward { attempt: u32 },
    /// Delete every chunk row (processing ended); the snapshot stays.
    DeleteChunks,
    /// Delete everything but a tombstone (no user data) so later requests answer 410.
    Purge,
    /// Forget the session entirely (`delete_all`, no alarm).
    Forget,
}

#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum LifecycleError {
    #[error("session is purged")]
    Purged,
    #[error("{input} is not allowed while {status:?}")]
    NotAllowed { status: Status, input: &'static str },
    #[error("offset {offset} is before {current} or after the length {length}")]
    BadOffset { current: u64, offset: u64, length: u64 },
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
    /// Last assigned event sequence number.
    pub seq: u64,
    /// Forward attempts in the current processing run.
    pub forward_attempts: u32,
    /// Whether chunk rows still exist (false after completion or a terminal failure).
    pub has_chunks: bool,
    pub deadline: Option<Deadline>,
}

impl Session {
    /// A session created by tus POST, with its idle-expiry deadline.
    pub fn new(id: String, length: u64, meta: UploadMeta, now: Millis, limits: &Limits) -> Session {
        todo!("{id} {length} {meta:?} {now} {limits:?}")
    }

    /// Applies `input` at `now`. On error the session is unchanged.
    ///
    /// Rules: Patched moves created/uploading forward (offset never goes backwards), pushes the
    /// idle deadline, and at `offset == length` becomes uploaded with `Effect::Forward`.
    /// ForwardStarted → forwarding (watchdog deadline). ForwardAccepted → processing (watchdog).
    /// ForwardFailed → retry deadline with exponential backoff (or `retry_after_ms` when larger),
    /// or, after `max_forward_attempts`, failed{origin_unavailable, retryable}. Origin stage and
    /// progress events refresh the watchdog; completed → completed + DeleteChunks + retention;
    /// failed → failed (+ DeleteChunks unless retryable) + retention. Retry (failed, retryable,
    /// chunks present) → Forward with attempts reset. Terminate → Purge + tombstone. Alarm acts on
    /// the due deadline (idle expiry → Purge; forward retry → Forward; watchdog → re-forward or
    /// fail; retention → Purge; tombstone → Forget); an alarm before the deadline does nothing.
    /// Nothing leaves purged but Alarm at the tombstone deadline (Forget).
    pub fn apply(
        &mut self,
        input: Input,
        now: Millis,
        limits: &Limits,
    ) -> Result<Vec<Effect>, LifecycleError> {
        todo!("{input:?} {now} {limits:?}")
    }

    /// What a client gets on (re)connect and from the JSON endpoint.
    pub fn snapshot(&self) -> Snapshot {
        todo!()
    }
}
