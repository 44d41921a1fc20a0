//! The session state machine: created → uploading → uploaded → forwarding → processing →
//! completed | failed → purged.
//!
//! The Durable Object owns exactly one [`Session`]; every request, origin event and alarm becomes
//! an [`Input`] applied with the current time. [`Session::apply`] returns the [`Effect`]s the
//! edge must perform (broadcast, forward, delete chunks, purge) and leaves in the session the one
//! [`Deadline`] the object's single alarm must be set to. Because time is an argument, every rule
//! (sliding expiry, backoff, watchdog, retention, tombstone) is tested without a runtime.
//!
//! One deadline per session, because a Durable Object has one alarm: whatever the state, the
//! next thing that must happen if nobody calls is unique (purge an idle upload, retry or
//! re-forward, purge the result, forget the tombstone). Chunks live exactly as long as they can
//! still be needed: until the result, a terminal failure, or the end of the retention after a
//! retryable failure. The session itself holds no video, so it can be stored as JSON and sent as
//! a [`Snapshot`].

use crate::answer::{classify, Answer};
use crate::protocol::{
    AnalysisResult, ErrorCode, Failure, Millis, OriginEvent, SessionEvent, Snapshot, Stage, Status,
    UploadMeta, UploadProgress,
};
#[cfg(doc)]
use crate::protocol::{OriginReport, HEADER_RUNNING_ATTEMPT};
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

/// The origin's answer to one forward, as the edge read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardResponse {
    /// `None`: no answer (a network error or the forward's timeout).
    pub status: Option<u16>,
    /// `Retry-After`, in milliseconds ([`crate::answer::retry_after_ms`]).
    pub retry_after_ms: Option<u64>,
    /// [`HEADER_RUNNING_ATTEMPT`] of a 2xx answer to a duplicate forward.
    pub running_attempt: Option<u32>,
}

/// What happened, as seen by the Durable Object.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// PATCH (or creation-with-upload) rows were written; `offset` is the new offset.
    Patched { offset: u64 },
    /// The edge starts streaming the video to the origin.
    ForwardStarted,
    /// The origin answered 2xx. `running`: for a duplicate, the attempt the origin says it
    /// runs (or ran) for this session ([`HEADER_RUNNING_ATTEMPT`]); its events are then the ones
    /// to apply.
    ForwardAccepted { running: Option<u32> },
    /// The origin could not be reached or refused (5xx, 503 with `retry_after_ms`).
    ForwardFailed { retry_after_ms: Option<u64> },
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
    #[error("event of attempt {attempt}, but the edge applies attempts {current} to {latest}")]
    StaleAttempt {
        attempt: u32,
        current: u32,
        latest: u32,
    },
    #[error("offset {offset} is before {current} or after the length {length}")]
    BadOffset {
        current: u64,
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
    /// Last assigned event sequence number.
    pub seq: u64,
    /// Forward attempts in the current processing run: bounds the retries of one run.
    pub forward_attempts: u32,
    /// Forwards started over the session's whole life; the job's `attempt` on the wire. The
    /// origin runs a session again only for a newer attempt than the one it finished, so this
    /// must keep growing across "Réessayer", unlike `forward_attempts`.
    #[serde(default)]
    pub forwards_sent: u32,
    /// The oldest attempt whose origin events are applied: the one the origin is known to run
    /// (from its events or its answer to the forward). Older attempts are stale.
    #[serde(default)]
    pub origin_attempt: u32,
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
/// updates a second, and always the last one.
pub fn should_broadcast_progress(
    last_sent_offset: u64,
    last_sent_at: Millis,
    offset: u64,
    now: Millis,
    length: u64,
) -> bool {
    if offset >= length {
        return true;
    }
    if offset <= last_sent_offset {
        return false;
    }
    now.saturating_sub(last_sent_at) >= PROGRESS_INTERVAL_MS
        || offset - last_sent_offset >= (length / PROGRESS_STEPS).max(1)
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

    fn max_attempts(&self) -> u32 {
        self.max_forward_attempts.max(1)
    }
}

impl Input {
    /// The origin's answer to forward `attempt`, as an input, classified by
    /// [`crate::answer::classify`]. Accepted → processing. A permanent refusal can never succeed,
    /// so the job fails for good at once, as if the origin had reported it: 413 as `too_large`
    /// (the origin's size limit is below the edge's), anything else (400 malformed, 401 bad
    /// signature…) as `internal`. Busy and transient answers are retried with backoff, honouring
    /// a busy answer's `Retry-After`.
    pub fn from_forward_response(attempt: u32, response: &ForwardResponse) -> Input {
        let refused = |code, message: &str| Input::Origin {
            attempt,
            event: OriginEvent::Failed {
                error: Failure {
                    code,
                    message: message.into(),
                    retryable: false,
                },
            },
        };
        match classify(response.status, response.retry_after_ms) {
            Answer::Accepted => Input::ForwardAccepted {
                running: response.running_attempt,
            },
            Answer::Permanent if response.status == Some(413) => refused(
                ErrorCode::TooLarge,
                "La vidéo dépasse la taille maximale acceptée par le service d'analyse.",
            ),
            Answer::Permanent => refused(
                ErrorCode::Internal,
                "Le service d'analyse a refusé la vidéo (erreur de configuration).",
            ),
            Answer::Busy { retry_after_ms } => Input::ForwardFailed { retry_after_ms },
            Answer::Transient => Input::ForwardFailed {
                retry_after_ms: None,
            },
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Input::Patched { .. } => "PATCH",
            Input::ForwardStarted => "forward start",
            Input::ForwardAccepted { .. } => "forward acceptance",
            Input::ForwardFailed { .. } => "forward failure",
            Input::Origin { .. } => "origin event",
            Input::Retry => "retry",
            Input::Terminate => "termination",
            Input::Alarm => "alarm",
        }
    }
}

impl Session {
    /// A session created by tus POST, with its idle-expiry deadline.
    ///
    /// Creation-with-upload bytes (and a zero-length upload) are reported afterwards as
    /// `Input::Patched`, which is what starts forwarding once `offset == length`.
    pub fn new(id: String, length: u64, meta: UploadMeta, now: Millis, limits: &Limits) -> Session {
        Session {
            id,
            status: Status::Created,
            upload: UploadProgress { offset: 0, length },
            meta,
            created_at: now,
            stage: None,
            progress: None,
            result: None,
            error: None,
            seq: 0,
            forward_attempts: 0,
            forwards_sent: 0,
            origin_attempt: 1,
            has_chunks: false,
            deadline: Some(after(now, limits.idle_expiry_ms, DeadlineKind::IdleExpiry)),
        }
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
    /// processing), a forward outcome may arrive after the result (ignored), and a final event
    /// may be delivered twice (ignored). A `completed` after an edge-decided failure is taken:
    /// the origin did finish, so the user gets the result. Every change that is broadcast gets
    /// the next `seq`, data events before the `Status` event they cause, so a client that sees
    /// the new status already has what goes with it. `seq` is strictly increasing but not dense
    /// on the wire: the edge drops some `Upload` events ([`should_broadcast_progress`]).
    /// Once purged, every input (an early alarm included) is `Err(Purged)`, which the edge
    /// answers with 410.
    pub fn apply(
        &mut self,
        input: Input,
        now: Millis,
        limits: &Limits,
    ) -> Result<Vec<Effect>, LifecycleError> {
        let mut next = self.clone();
        let mut effects = Vec::new();
        next.step(input, now, limits, &mut effects)?;
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
            result: self.result.clone(),
            error: self.error.clone(),
            expires_at: self.expires_at(),
        }
    }

    /// When the session is purged if nothing else happens: the idle expiry while uploading,
    /// the retention once finished (tus `Upload-Expires`). `None` while the origin works.
    pub fn expires_at(&self) -> Option<Millis> {
        self.deadline
            .filter(|d| matches!(d.kind, DeadlineKind::IdleExpiry | DeadlineKind::Retention))
            .map(|d| d.at)
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
            (Input::Patched { offset }, Created | Uploading) => {
                self.patched(offset, now, limits, fx)?
            }
            (Input::Patched { .. }, _) => return Err(not_allowed),

            (Input::ForwardStarted, Uploaded | Forwarding) => {
                self.forwards_sent += 1;
                self.set_status(Forwarding, fx);
                self.deadline = Some(after(now, limits.watchdog_ms, DeadlineKind::Watchdog));
            }
            (Input::ForwardAccepted { running }, Uploaded | Forwarding) => {
                self.origin_attempt = self.running_attempt(running);
                self.set_status(Processing, fx);
                self.deadline = Some(after(now, limits.watchdog_ms, DeadlineKind::Watchdog));
            }
            // The origin spoke first; a duplicate's answer still says which job it runs.
            (Input::ForwardAccepted { running }, Processing | Failed) => {
                self.origin_attempt = self.running_attempt(running);
            }
            (Input::ForwardFailed { retry_after_ms }, Uploaded | Forwarding) => {
                if self.forward_attempts >= limits.max_attempts() {
                    self.fail(origin_unavailable(self.forward_attempts), now, limits, fx);
                } else {
                    let delay = limits
                        .forward_backoff(self.forward_attempts)
                        .max(retry_after_ms.unwrap_or(0));
                    self.set_status(Forwarding, fx);
                    self.deadline = Some(after(now, delay, DeadlineKind::ForwardRetry));
                }
            }
            // A forward outcome that arrives after the origin already spoke is stale.
            (
                Input::ForwardStarted | Input::ForwardAccepted { .. } | Input::ForwardFailed { .. },
                Processing | Completed | Failed,
            ) => {}
            (
                Input::ForwardStarted | Input::ForwardAccepted { .. } | Input::ForwardFailed { .. },
                _,
            ) => return Err(not_allowed),

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
                self.error = None;
                self.stage = None;
                self.progress = None;
                self.forward_attempts = 0;
                // Whatever the earlier run still reports is stale from now on.
                self.origin_attempt = self.forwards_sent + 1;
                self.set_status(Uploaded, fx);
                self.forward_or_fail(now, limits, fx);
            }
            (Input::Retry, _) => return Err(not_allowed),

            (Input::Terminate, _) => self.purge(now, limits, fx),

            (Input::Alarm, _) => match self.deadline {
                Some(deadline) if now >= deadline.at => match deadline.kind {
                    DeadlineKind::ForwardRetry | DeadlineKind::Watchdog => {
                        self.forward_or_fail(now, limits, fx)
                    }
                    DeadlineKind::IdleExpiry
                    | DeadlineKind::Retention
                    | DeadlineKind::Tombstone => self.purge(now, limits, fx),
                },
                _ => {}
            },
        }
        Ok(())
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
        if offset < current || offset > length {
            return Err(LifecycleError::BadOffset {
                current,
                offset,
                length,
            });
        }
        self.upload.offset = offset;
        self.has_chunks |= offset > 0;
        self.broadcast(SessionEvent::Upload { offset, length }, fx);
        if offset == length {
            self.set_status(Status::Uploaded, fx);
            self.forward_or_fail(now, limits, fx);
        } else {
            if offset > 0 {
                self.set_status(Status::Uploading, fx);
            }
            self.deadline = Some(after(now, limits.idle_expiry_ms, DeadlineKind::IdleExpiry));
        }
        Ok(())
    }

    /// Only events of the attempt the origin runs (or a newer one already sent) apply.
    fn check_attempt(&self, attempt: u32) -> Result<(), LifecycleError> {
        if attempt < self.origin_attempt || attempt > self.forwards_sent {
            return Err(LifecycleError::StaleAttempt {
                attempt,
                current: self.origin_attempt,
                latest: self.forwards_sent,
            });
        }
        Ok(())
    }

    /// The attempt a 2xx answer to the latest forward says the origin runs: that forward's, or
    /// for a duplicate the earlier one the origin names (never a newer one than was sent).
    fn running_attempt(&self, running: Option<u32>) -> u32 {
        running
            .filter(|&attempt| attempt <= self.forwards_sent)
            .unwrap_or(self.forwards_sent)
    }

    /// An origin event while the job is in flight (uploaded, forwarding or processing).
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
        self.progress = None;
        self.error = None;
        self.result = Some((*result).clone());
        self.broadcast(SessionEvent::Completed { result }, fx);
        self.set_status(Status::Completed, fx);
        self.deadline = Some(after(now, limits.retention_ms, DeadlineKind::Retention));
    }

    /// A retryable failure keeps the chunks (until retention) so "Réessayer" needs no upload.
    fn fail(&mut self, error: Failure, now: Millis, limits: &Limits, fx: &mut Vec<Effect>) {
        if !error.retryable {
            self.delete_chunks(fx);
        }
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
        if self.status == Status::Processing {
            self.set_status(Status::Forwarding, fx);
        }
        self.forward_attempts += 1;
        fx.push(Effect::Forward {
            attempt: self.forward_attempts,
        });
        self.deadline = Some(after(now, limits.watchdog_ms, DeadlineKind::Watchdog));
    }

    /// Keeps only what a tombstone needs: no result, no error, no file name, no chunks.
    fn purge(&mut self, now: Millis, limits: &Limits, fx: &mut Vec<Effect>) {
        self.stage = None;
        self.progress = None;
        self.result = None;
        self.error = None;
        self.meta.filename = None;
        self.has_chunks = false;
        self.set_status(Status::Purged, fx);
        fx.push(Effect::Purge);
        self.deadline = Some(after(now, limits.tombstone_ms, DeadlineKind::Tombstone));
    }

    fn delete_chunks(&mut self, fx: &mut Vec<Effect>) {
        if self.has_chunks {
            self.has_chunks = false;
            fx.push(Effect::DeleteChunks);
        }
    }

    fn set_status(&mut self, status: Status, fx: &mut Vec<Effect>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Cost, Inventory, MediaFacts};
    use proptest::prelude::*;

    const LEN: u64 = 100;
    const T0: Millis = 1_750_000_000_000;

    fn limits() -> Limits {
        Limits {
            idle_expiry_ms: 1_000,
            retention_ms: 2_000,
            tombstone_ms: 3_000,
            watchdog_ms: 500,
            forward_backoff_ms: 10,
            forward_backoff_max_ms: 60,
            max_forward_attempts: 3,
        }
    }

    fn meta() -> UploadMeta {
        UploadMeta {
            filename: Some("salon.mp4".into()),
            filetype: "video/mp4".into(),
            locale: "fr".into(),
        }
    }

    fn result() -> Box<AnalysisResult> {
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
        Session::new("ab".repeat(32), LEN, meta(), T0, &limits())
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
        ok(&mut s, Input::ForwardAccepted { running: None }, T0 + 30);
        s
    }

    /// An event of the first forward.
    fn origin_event(event: OriginEvent) -> Input {
        Input::Origin { attempt: 1, event }
    }

    fn events(effects: &[Effect]) -> Vec<SessionEvent> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Broadcast { event, .. } => Some(event.clone()),
                _ => None,
            })
            .collect()
    }

    fn status_event(status: Status) -> SessionEvent {
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
                length: LEN
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
                    length: LEN
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
                length: LEN
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
                length: LEN
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
                        length: LEN
                    }
                },
                Effect::Broadcast {
                    seq: 2,
                    event: status_event(Status::Uploaded)
                },
                Effect::Forward { attempt: 1 },
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
        let mut s = Session::new("ab".repeat(32), 0, meta(), T0, &limits());
        let fx = ok(&mut s, Input::Patched { offset: 0 }, T0);
        assert!(fx.contains(&Effect::Forward { attempt: 1 }));
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
        let fx = ok(&mut s, Input::ForwardAccepted { running: None }, T0 + 30);
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
        assert_eq!(
            ok(&mut s, Input::ForwardAccepted { running: None }, T0 + 30),
            vec![]
        );
        assert_eq!(
            ok(
                &mut s,
                Input::ForwardFailed {
                    retry_after_ms: None
                },
                T0 + 31
            ),
            vec![]
        );
        assert_eq!(s, before);
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
        assert_eq!(
            ok(
                &mut s,
                Input::ForwardFailed {
                    retry_after_ms: None
                },
                T0 + 50
            ),
            vec![]
        );
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
        assert_eq!(
            ok(&mut s, Input::Alarm, T0 + 60),
            vec![Effect::Forward { attempt: 2 }]
        );
        assert_eq!(
            s.deadline,
            Some(Deadline {
                at: T0 + 560,
                kind: DeadlineKind::Watchdog
            })
        );
        ok(&mut s, Input::ForwardStarted, T0 + 61);
        ok(
            &mut s,
            Input::ForwardFailed {
                retry_after_ms: None,
            },
            T0 + 70,
        );
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
            running_attempt: Some(1),
        };
        assert_eq!(
            Input::from_forward_response(2, &answer(Some(202), None)),
            Input::ForwardAccepted { running: Some(1) }
        );
        assert_eq!(
            Input::from_forward_response(2, &answer(Some(503), Some(5_000))),
            Input::ForwardFailed {
                retry_after_ms: Some(5_000)
            }
        );
        for transient in [Some(504), Some(500), None] {
            assert_eq!(
                Input::from_forward_response(2, &answer(transient, Some(9_000))),
                Input::ForwardFailed {
                    retry_after_ms: None
                },
                "{transient:?}: only a busy answer's Retry-After counts"
            );
        }
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
                Input::from_forward_response(1, &answer(Some(status), None)),
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
        assert_eq!(s.deadline.unwrap().at, T0 + 950);
    }

    #[test]
    fn events_of_another_attempt_are_stale() {
        let mut s = processing();
        let at = s.deadline.unwrap().at;
        ok(&mut s, Input::Alarm, at);
        ok(&mut s, Input::ForwardStarted, at);
        ok(&mut s, Input::ForwardAccepted { running: None }, at + 1);
        let before = s.clone();
        for attempt in [1, 3] {
            assert!(matches!(
                s.apply(
                    Input::Origin {
                        attempt,
                        event: OriginEvent::Completed { result: result() }
                    },
                    at + 2,
                    &limits()
                ),
                Err(LifecycleError::StaleAttempt { .. })
            ));
        }
        assert_eq!(s, before);
        // A duplicate's answer names the job that runs: its events apply.
        ok(&mut s, Input::ForwardAccepted { running: Some(1) }, at + 3);
        ok(
            &mut s,
            origin_event(OriginEvent::Completed { result: result() }),
            at + 4,
        );
        assert_eq!(s.status, Status::Completed);
    }

    #[test]
    fn retry_after_wins_when_it_is_longer() {
        let mut s = uploaded();
        ok(&mut s, Input::ForwardStarted, T0 + 20);
        ok(
            &mut s,
            Input::ForwardFailed {
                retry_after_ms: Some(5_000),
            },
            T0 + 50,
        );
        assert_eq!(s.deadline.unwrap().at, T0 + 5_050);
        let mut s = uploaded();
        ok(&mut s, Input::ForwardStarted, T0 + 20);
        ok(
            &mut s,
            Input::ForwardFailed {
                retry_after_ms: Some(1),
            },
            T0 + 50,
        );
        assert_eq!(s.deadline.unwrap().at, T0 + 60);
    }

    #[test]
    fn used_up_forwards_fail_retryable_and_keep_the_chunks() {
        let mut s = uploaded();
        let mut now = T0 + 20;
        for attempt in 2..=3 {
            ok(&mut s, Input::ForwardStarted, now);
            ok(
                &mut s,
                Input::ForwardFailed {
                    retry_after_ms: None,
                },
                now + 1,
            );
            now = s.deadline.unwrap().at;
            assert_eq!(
                ok(&mut s, Input::Alarm, now),
                vec![Effect::Forward { attempt }]
            );
        }
        ok(&mut s, Input::ForwardStarted, now);
        let fx = ok(
            &mut s,
            Input::ForwardFailed {
                retry_after_ms: None,
            },
            now + 1,
        );
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
                Effect::Forward { attempt: 2 },
            ]
        );
        let at = s.deadline.unwrap().at;
        assert_eq!(
            ok(&mut s, Input::Alarm, at),
            vec![Effect::Forward { attempt: 3 }]
        );
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
                Effect::Forward { attempt: 1 },
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
            s.apply(Input::ForwardAccepted { running: None }, T0 + 2, &limits()),
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
        for mut s in [new_session(), uploaded(), processing(), finished] {
            let seq = s.seq;
            let fx = ok(&mut s, Input::Terminate, T0 + 1_000);
            assert_eq!(
                fx,
                vec![
                    Effect::Broadcast {
                        seq: seq + 1,
                        event: status_event(Status::Purged)
                    },
                    Effect::Purge,
                ]
            );
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
            Input::ForwardAccepted { running: None },
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
            should_broadcast_progress(99 * mib, T0, len, T0, len),
            "the last one always goes"
        );
        assert!(
            !should_broadcast_progress(mib, T0, mib, T0 + 10_000, len),
            "nothing new"
        );
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

    /// Inputs the property tests draw from: `Patch` appends that many bytes (possibly past the
    /// length), `AlarmAtDeadline` jumps the clock to the deadline.
    #[derive(Clone, Debug)]
    enum Step {
        Input(Input),
        Patch(u64),
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
            Just(OriginEvent::Completed { result: result() }),
            (code, any::<bool>()).prop_map(|(code, retryable)| OriginEvent::Failed {
                error: failure(code, retryable)
            }),
        ]
    }

    fn any_step() -> impl Strategy<Value = Step> {
        prop_oneof![
            36 => (0..=LEN / 3).prop_map(Step::Patch),
            4 => (0..=LEN + 5).prop_map(|offset| Step::Input(Input::Patched { offset })),
            12 => Just(Step::Input(Input::ForwardStarted)),
            12 => Just(Step::Input(Input::ForwardAccepted { running: None })),
            12 => prop::option::of(0u64..3_000)
                .prop_map(|retry_after_ms| Step::Input(Input::ForwardFailed { retry_after_ms })),
            24 => any_origin_event().prop_map(|e| Step::Input(Input::Origin { attempt: 1, event: e })),
            6 => Just(Step::Input(Input::Retry)),
            1 => Just(Step::Input(Input::Terminate)),
            8 => Just(Step::Input(Input::Alarm)),
            6 => Just(Step::AlarmAtDeadline),
        ]
    }

    fn deadline_fits(s: &Session) -> bool {
        use DeadlineKind::*;
        use Status::*;
        matches!(
            (s.status, s.deadline.map(|d| d.kind)),
            (Created | Uploading, Some(IdleExpiry))
                | (
                    Uploaded | Forwarding | Processing,
                    Some(Watchdog | ForwardRetry)
                )
                | (Completed | Failed, Some(Retention))
                | (Purged, Some(Tombstone) | None)
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn lifecycle_invariants_hold_for_any_input_sequence(
            start in 0..3usize,
            steps in prop::collection::vec((any_step(), 0u64..400), 1..80),
        ) {
            let limits = limits();
            let mut s = [new_session, uploaded, processing][start]();
            let mut now = T0 + 100;
            for (step, dt) in steps {
                let input = match step {
                    Step::Input(input) => {
                        now += dt;
                        input
                    }
                    Step::Patch(bytes) => {
                        now += dt;
                        Input::Patched { offset: s.upload.offset + bytes }
                    }
                    Step::AlarmAtDeadline => {
                        now = now.max(s.deadline.map_or(now, |d| d.at));
                        Input::Alarm
                    }
                };
                let before = s.clone();
                let outcome = s.apply(input.clone(), now, &limits);

                // No transition leaves purged.
                if before.status == Status::Purged {
                    prop_assert_eq!(s.status, Status::Purged);
                }
                // Tus offsets never go backwards, nor past the length.
                prop_assert!(s.upload.offset >= before.upload.offset);
                prop_assert!(s.upload.offset <= s.upload.length);
                // The job number on the wire never repeats an older one.
                prop_assert!(s.forwards_sent >= before.forwards_sent);

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
                        Effect::Forward { attempt } => {
                            prop_assert_eq!(*attempt, s.forward_attempts);
                            prop_assert!(*attempt <= limits.max_forward_attempts);
                        }
                        _ => {}
                    }
                }
                prop_assert_eq!(s.seq, seq);

                // Exactly one deadline (none only once forgotten), never in the past after a
                // change caused by anything but the alarm.
                if effects.contains(&Effect::Forget) {
                    prop_assert_eq!(s.deadline, None);
                } else {
                    prop_assert!(s.deadline.is_some());
                }
                if s.deadline != before.deadline && !matches!(input, Input::Alarm) {
                    prop_assert!(s.deadline.unwrap().at >= now);
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
                forwards += fx.iter().filter(|e| matches!(e, Effect::Forward { .. })).count();
            }
            prop_assert_eq!(forwards, usize::from(s.status == Status::Uploaded));
        }
    }
}
