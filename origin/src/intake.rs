//! `POST /v1/jobs/{id}`: the edge forwards one uploaded video.
//!
//! Everything that can be refused is decided from the headers, before a byte of body is kept:
//! signature (401), size (413), cancelled (410), spending cap (503 + Retry-After until the
//! window resets), duplicate (202 after draining; a finished job's final event is sent again),
//! capacity (503 + Retry-After: this replica's slots and memory budget, the
//! cluster's model budget — see [`crate::admission`] and [`crate::model_budget`]). A busy refusal
//! of an authenticated forward is answered after its body has been read and discarded (see
//! [`drain_refused`]); a queued edge avoids that cost by asking `POST /v1/jobs/{id}/admission`
//! first, which answers from the headers alone. The body then
//! streams chunk by chunk into a memfd — the only copy of the video in the origin — and the 202
//! goes out once all of it has arrived, so the edge can release its side knowing the origin
//! holds the whole file.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use base64::Engine;
use dodolens_shared::{
    protocol::{
        Analyser, JobMeta, HEADER_RUNNING_ATTEMPT, HEADER_STREAM_OFFSET, HEADER_VIDEO_LENGTH,
    },
    signing::Purpose,
    video_digest,
};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

/// How long the body of a refused forward is read before the refusal is sent anyway.
const REFUSED_BODY_DRAIN: Duration = Duration::from_secs(60);

use crate::{
    admission::{Busy, BusyReason, Permit},
    error::IntakeError,
    live,
    metrics::label,
    model_budget, pipeline,
    signed::{self, Expected},
    store::{Claim, FinalRecord, JobMark, Lease, OutboxEntry},
    video::MemFile,
    AppState,
};

pub async fn post_job(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IntakeError> {
    if headers.contains_key(HEADER_STREAM_OFFSET) {
        let result = live::finish(&state, &id, &headers, body).await;
        if let Err(e) = &result {
            count_refusal(&state, &id, e);
        }
        return result;
    }
    let result = match admit_forward(&state, &id, &headers).await {
        Ok(Admitted::New(job)) => take(&state, job, body).await,
        Ok(Admitted::Duplicate { meta, mark, length }) => {
            duplicate(&state, &meta, mark, body, length).await
        }
        Err(e) => {
            if e.is_busy() {
                drain_refused(body).await;
            }
            Err(e)
        }
    };
    if let Err(e) = &result {
        count_refusal(&state, &id, e);
    }
    result
}

/// `POST /v1/jobs/{id}/admission`: would this replica take the forward now? Signed like the
/// forward (the video's length rides in [`HEADER_VIDEO_LENGTH`]), answered from the headers,
/// taking nothing: 204, or 503 + Retry-After exactly as the forward itself would be refused. A
/// queued session asks this before streaming its video again.
pub async fn post_admission(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, IntakeError> {
    if state.shutdown.is_cancelled() {
        return Err(IntakeError::ShuttingDown);
    }
    let length = header(&headers, HEADER_VIDEO_LENGTH)
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or(IntakeError::BadRequest("the video's length is required"))?;
    let (meta, _) = verify(
        &state,
        &format!("/v1/jobs/{id}/admission"),
        &headers,
        length,
    )?;
    check_job(&state, &id, &meta, length)?;
    check_spending(&state, &id).await?;
    let answer = state.admission.check(length);
    let label_value = answer.err().map_or("free", |busy| busy.reason.as_str());
    state
        .metrics
        .admission_probes
        .get_or_create(&label("answer", label_value))
        .inc();
    answer.map_err(IntakeError::Busy)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A forward the headers admitted: it holds its slot, memory and lease from here on.
struct NewJob {
    meta: JobMeta,
    length: u64,
    /// The signed SHA-256 the body must hash to.
    digest: [u8; 32],
    permit: Permit,
    lease: Lease,
}

enum Admitted {
    New(NewJob),
    Duplicate {
        meta: JobMeta,
        mark: Option<JobMark>,
        length: u64,
    },
}

/// Everything decided from the headers: who sent it, its size, whether the job exists, capacity.
async fn admit_forward(
    state: &Arc<AppState>,
    id: &str,
    headers: &HeaderMap,
) -> Result<Admitted, IntakeError> {
    if state.shutdown.is_cancelled() {
        return Err(IntakeError::ShuttingDown);
    }
    let length = content_length(headers)?;
    let (meta, digest) = verify(state, &format!("/v1/jobs/{id}"), headers, length)?;
    check_job(state, id, &meta, length)?;
    check_spending(state, id).await?;
    // A whole-file forward takes over from a live job of its attempt or an older one.
    state.live.drop_up_to(id, Some(meta.attempt)).await;
    match state
        .store
        .claim_job(id, meta.attempt, state.cfg.running_lease)
        .await?
    {
        Claim::Won => {}
        Claim::Taken(mark) => return Ok(Admitted::Duplicate { meta, mark, length }),
    }
    match admit(state, &meta, length).await {
        Ok((permit, lease)) => Ok(Admitted::New(NewJob {
            meta,
            length,
            digest,
            permit,
            lease,
        })),
        Err(e) => {
            let _ = state.store.release_job(id).await;
            Err(e)
        }
    }
}

pub(crate) fn content_length(headers: &HeaderMap) -> Result<u64, IntakeError> {
    header(headers, "content-length")
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or(IntakeError::BadRequest(
            "a fixed Content-Length is required",
        ))
}

pub(crate) fn check_job(
    state: &AppState,
    id: &str,
    meta: &JobMeta,
    length: u64,
) -> Result<(), IntakeError> {
    if length > state.cfg.max_video_bytes {
        return Err(IntakeError::TooLarge(length));
    }
    if length == 0 {
        return Err(IntakeError::BadRequest("empty video"));
    }
    if !is_session_id(id) || meta.session_id != id {
        return Err(IntakeError::BadRequest("job id and metadata disagree"));
    }
    url_ok(&meta.callback_url)
}

/// A cancelled job (410) and the spending cap (503 until its window resets), from the store.
pub(crate) async fn check_spending(state: &AppState, id: &str) -> Result<(), IntakeError> {
    if state.store.is_cancelled(id).await? {
        return Err(IntakeError::Cancelled);
    }
    if let Err(full) = state.spending.check(std::time::SystemTime::now()).await? {
        return Err(IntakeError::SpendingCapReached {
            window: full.window,
            retry_after: full.retry_after,
        });
    }
    Ok(())
}

/// Receives the admitted job's video and starts its pipeline.
async fn take(state: &Arc<AppState>, job: NewJob, body: Body) -> Result<Response, IntakeError> {
    let NewJob {
        meta,
        length,
        digest,
        permit,
        lease,
    } = job;
    let id = meta.session_id.clone();
    let started = Instant::now();
    let video = match receive(state, &id, body, length, digest).await {
        Ok(video) => video,
        Err(e) => {
            drop((permit, lease));
            let _ = state.store.release_job(&id).await;
            return Err(e);
        }
    };
    tracing::info!(
        job = %short(&id),
        bytes = length,
        attempt = meta.attempt,
        ms = started.elapsed().as_millis() as u64,
        "video received"
    );
    let job = pipeline::Job {
        id: id.clone(),
        meta,
        source: pipeline::Source::Whole(video),
        permit,
        lease,
        received_at: Instant::now(),
    };
    state.tracker.spawn(pipeline::run(Arc::clone(state), job));
    Ok(accepted(&id, None))
}

pub(crate) fn count_refusal(state: &AppState, id: &str, e: &IntakeError) {
    let reason = match e {
        IntakeError::Unauthorised(_) => "unauthorised",
        IntakeError::BadRequest(_) | IntakeError::Incomplete { .. } => "bad_request",
        IntakeError::DigestMismatch => "digest_mismatch",
        IntakeError::TooLarge(_) => "too_large",
        IntakeError::Busy(busy) => busy.reason.as_str(),
        IntakeError::SpendingCapReached { .. } => "budget_exhausted",
        IntakeError::ShuttingDown => "shutting_down",
        IntakeError::Cancelled => "cancelled",
        IntakeError::StreamBehind { .. } => "stream_behind",
        IntakeError::NotStreamable(_) => "not_streamable",
        IntakeError::Buffer(_) | IntakeError::Store(_) => "internal",
    };
    state
        .metrics
        .intake_rejections
        .get_or_create(&label("reason", reason))
        .inc();
    tracing::info!(job = %short(id), reason, "forward refused");
}

/// A forward of a job this origin already has (here or on another replica). Running:
/// acknowledged, the running job reports. Ended: acknowledged and its kept final event sent
/// again to this forward's callback, so a re-forward (the edge never got the result) always ends
/// the session. Either way the answer names the attempt whose events the edge must apply.
pub(crate) async fn duplicate(
    state: &Arc<AppState>,
    meta: &JobMeta,
    mark: Option<JobMark>,
    body: Body,
    length: u64,
) -> Result<Response, IntakeError> {
    drain(body, length).await?;
    let id = &meta.session_id;
    let kept = match mark {
        Some(mark @ JobMark::Ended { .. }) => state.store.final_event(id).await?.map(|e| (mark, e)),
        _ => None,
    };
    let resent = kept.is_some();
    if let Some((mark, event)) = kept {
        let record = FinalRecord {
            job_id: id.clone(),
            mark,
            entry: OutboxEntry {
                id: OutboxEntry::id_for(id, meta.attempt),
                session_id: id.clone(),
                callback_url: meta.callback_url.clone(),
                body: event,
                attempts: 0,
            },
        };
        state.outbox.finish(record).await;
    }
    let running = mark.map(JobMark::attempt);
    tracing::info!(job = %short(id), attempt = meta.attempt, ?running, resent, "duplicate forward acknowledged");
    // Naming the attempt that runs or ran, so the edge applies that job's events.
    Ok(accepted(id, running))
}

/// This replica's slot and memory, then the cluster's model budget, then the job's lease.
async fn admit(
    state: &Arc<AppState>,
    meta: &JobMeta,
    length: u64,
) -> Result<(Permit, Lease), IntakeError> {
    let permit = reserve(state, meta, length).await?;
    Ok((permit, start_lease(state, meta)))
}

/// This replica's slot and `length` bytes of its memory, then the cluster's model budget; all
/// or nothing.
pub(crate) async fn reserve(
    state: &Arc<AppState>,
    meta: &JobMeta,
    length: u64,
) -> Result<Permit, IntakeError> {
    let permit = state.admission.admit(length).map_err(IntakeError::Busy)?;
    // The local backend calls no provider, so it draws nothing from the model budget.
    if state.cfg.analyser == Analyser::Openai {
        let draw = model_budget::expected_draw(&state.cfg.ffmpeg);
        let member = OutboxEntry::id_for(&meta.session_id, meta.attempt);
        state
            .store
            .take_model_budget(&member, draw, state.cfg.model_budget)
            .await?
            .map_err(|wait| {
                IntakeError::Busy(Busy {
                    reason: BusyReason::ModelBudget,
                    retry_after: wait,
                })
            })?;
    }
    Ok(permit)
}

/// Keeps the job's claim alive until its end is recorded.
pub(crate) fn start_lease(state: &Arc<AppState>, meta: &JobMeta) -> Lease {
    Lease::start(
        Arc::clone(&state.store),
        meta.session_id.clone(),
        meta.attempt,
        state.cfg.running_lease,
    )
}

fn verify(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
    length: u64,
) -> Result<(JobMeta, [u8; 32]), IntakeError> {
    verify_signed(
        state,
        Purpose::Forward,
        path,
        headers,
        length,
        &[video_digest::HEADER],
    )
}

/// A signed `POST` carrying job metadata and a digest among its `extra` signed headers: the
/// metadata and the digest.
pub(crate) fn verify_signed(
    state: &AppState,
    purpose: Purpose,
    path: &str,
    headers: &HeaderMap,
    length: u64,
    extra: &[&str],
) -> Result<(JobMeta, [u8; 32]), IntakeError> {
    // The video's digest is a signed header: without it the signature cannot verify.
    let metadata = signed::verify(
        &state.cfg.signing,
        headers,
        &Expected {
            purpose,
            method: "POST",
            path,
            content_length: length,
            extra,
        },
    )?;
    let digest = video_digest::parse_hex(header(headers, video_digest::HEADER).unwrap_or_default())
        .ok_or(IntakeError::BadRequest(
            "x-dodolens-video-sha256 is not a SHA-256",
        ))?;
    let json = base64::engine::general_purpose::STANDARD
        .decode(metadata)
        .map_err(|_| IntakeError::BadRequest("metadata is not base64"))?;
    let meta = serde_json::from_slice(&json)
        .map_err(|_| IntakeError::BadRequest("metadata is not a JobMeta"))?;
    Ok((meta, digest))
}

/// Streams the body into a memfd, hashing it on the way: a body whose SHA-256 is not the signed
/// one is refused (400) and its memfd dropped, so what ffmpeg reads is exactly what the edge
/// stored.
async fn receive(
    state: &AppState,
    id: &str,
    body: Body,
    length: u64,
    digest: [u8; 32],
) -> Result<MemFile, IntakeError> {
    let mut video = MemFile::create(&format!("dodolens-video-{id}"))?;
    let mut stream = body.into_data_stream();
    let mut hasher = Sha256::new();
    let read = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| IntakeError::Incomplete {
                received: video.len(),
                expected: length,
            })?;
            if video.len() + chunk.len() as u64 > length {
                return Err(IntakeError::BadRequest("body longer than Content-Length"));
            }
            video.write(&chunk)?;
            hasher.update(&chunk);
            state.metrics.received_bytes.inc_by(chunk.len() as u64);
        }
        Ok(())
    };
    tokio::time::timeout(state.cfg.job_timeout, read)
        .await
        .map_err(|_| IntakeError::Incomplete {
            received: 0,
            expected: length,
        })??;
    if video.len() != length {
        return Err(IntakeError::Incomplete {
            received: video.len(),
            expected: length,
        });
    }
    if hasher.finalize().as_slice() != digest {
        return Err(IntakeError::DigestMismatch);
    }
    video.seal()?;
    Ok(video)
}

async fn drain(body: Body, length: u64) -> Result<(), IntakeError> {
    let mut received = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        received += chunk
            .map_err(|_| IntakeError::Incomplete {
                received,
                expected: length,
            })?
            .len() as u64;
    }
    if received != length {
        return Err(IntakeError::Incomplete {
            received,
            expected: length,
        });
    }
    Ok(())
}

/// Reads and discards the body of a forward refused as busy, so the refusal reaches the edge:
/// workerd reports "Network connection lost" instead of an answer that comes before it has sent
/// its whole body (cloudflare/workerd#1741), and a lost 503 would count as a fault, not a queue.
/// Only authenticated forwards within the size limit get here; a body that does not come within
/// [`REFUSED_BODY_DRAIN`] is abandoned.
pub(crate) async fn drain_refused(body: Body) {
    let mut stream = body.into_data_stream();
    let read = async { while let Some(Ok(_)) = stream.next().await {} };
    let _ = tokio::time::timeout(REFUSED_BODY_DRAIN, read).await;
}

/// 202; for a duplicate, with the attempt that runs (or ran) in [`HEADER_RUNNING_ATTEMPT`].
pub(crate) fn accepted(id: &str, running: Option<u32>) -> Response {
    let body = Json(serde_json::json!({ "job": id, "duplicate": running.is_some() }));
    match running {
        Some(attempt) => (
            StatusCode::ACCEPTED,
            [(HEADER_RUNNING_ATTEMPT, attempt.to_string())],
            body,
        )
            .into_response(),
        None => (StatusCode::ACCEPTED, body).into_response(),
    }
}

pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn url_ok(url: &str) -> Result<(), IntakeError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(IntakeError::BadRequest(
            "callback_url must be an http(s) URL",
        )),
    }
}

/// Session ids are Durable Object ids: 64 lowercase hex characters.
pub fn is_session_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Enough of an id to correlate logs; the full id is the upload capability.
pub fn short(id: &str) -> &str {
    id.char_indices().nth(12).map_or(id, |(end, _)| &id[..end])
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_64_lowercase_hex() {
        assert!(is_session_id(&"a1".repeat(32)));
        assert!(!is_session_id(&"A1".repeat(32)));
        assert!(!is_session_id(&"a1".repeat(31)));
        assert!(!is_session_id("../../etc/passwd"));
    }

    #[test]
    fn short_ids_never_split_a_character() {
        assert_eq!(short(&"ab".repeat(32)), "abababababab");
        assert_eq!(short("éééééééééééééé"), "éééééééééééé");
        assert_eq!(short("abc"), "abc");
    }
}
