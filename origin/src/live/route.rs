//! The wire side of forwarding while receiving (docs/PROTOCOL.md): `POST /v1/jobs/{id}/stream`
//! carries one range of a recording still being uploaded; the ordinary forward with
//! `dodolens-stream-offset: N` finishes it with the bytes from N.
//!
//! A range is small (≤ [`MAX_RANGE_BYTES`]) and read whole before it is answered (workerd
//! loses an answer sent before the request's body, cloudflare/workerd#1741); a finish that is
//! refused has its body read first for the same reason. What a range does against the bytes
//! held is `dodolens_shared::stream_range`'s rule.

use std::{sync::Arc, time::Instant};

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use bytes::{Bytes, BytesMut};
use dodolens_shared::{
    protocol::{JobMeta, HEADER_STREAM_OFFSET, HEADER_VIDEO_LENGTH},
    signing::Purpose,
    stream_range::{self, Range, MAX_RANGE_BYTES},
    video_digest,
};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::{
    error::IntakeError,
    intake::{self, header, short},
    live::job::LiveJob,
    pipeline,
    store::Claim,
    AppState,
};

/// The extra signed headers of a range and of a finish, in signing order.
const SIGNED: [&str; 2] = [HEADER_STREAM_OFFSET, video_digest::HEADER];

pub async fn post_stream(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IntakeError> {
    let result = range(&state, &id, &headers, body).await;
    if let Err(e) = &result {
        intake::count_refusal(&state, &id, e);
    }
    result
}

async fn range(
    state: &Arc<AppState>,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, IntakeError> {
    if state.shutdown.is_cancelled() {
        return Err(IntakeError::ShuttingDown);
    }
    let len = intake::content_length(headers)?;
    let path = format!("/v1/jobs/{id}/stream");
    let (meta, digest) =
        intake::verify_signed(state, Purpose::Stream, &path, headers, len, &SIGNED)?;
    if len > MAX_RANGE_BYTES {
        return Err(IntakeError::TooLarge(len));
    }
    let start = offset(headers)?;
    intake::check_job(state, id, &meta, start.saturating_add(len))?;
    if state.store.is_cancelled(id).await? {
        return Err(IntakeError::Cancelled);
    }
    let bytes = read_range(body, len).await?;
    if Sha256::digest(&bytes).as_slice() != digest {
        return Err(IntakeError::DigestMismatch);
    }
    let held = apply(state, meta, start, bytes).await?;
    Ok(holding(held))
}

/// Appends the range to the session's live job — creating it at offset 0 — and returns what
/// it holds now.
async fn apply(
    state: &Arc<AppState>,
    meta: JobMeta,
    start: u64,
    bytes: Bytes,
) -> Result<u64, IntakeError> {
    let id = meta.session_id.clone();
    if let Some(entry) = state.live.get(&id) {
        if entry.attempt == meta.attempt {
            entry.touch();
            let mut guard = entry.job.lock().await;
            let Some(job) = guard.as_mut() else {
                return Err(IntakeError::StreamBehind { held: 0 });
            };
            let held = job.held();
            let len = bytes.len() as u64;
            return match stream_range::decide(held, start, len) {
                Range::Gap => Err(IntakeError::StreamBehind { held }),
                Range::Duplicate => Ok(held),
                Range::Append { skip } => {
                    if let Err(e) = job.append(bytes.slice(skip as usize..)) {
                        guard.take();
                        state.live.remove(&id, &entry);
                        return Err(e);
                    }
                    entry.touch();
                    Ok(job.held())
                }
            };
        }
        if entry.attempt > meta.attempt {
            return Err(IntakeError::StreamBehind { held: 0 });
        }
        state.live.drop_up_to(&id, Some(meta.attempt)).await;
    }
    if start != 0 {
        return Err(IntakeError::StreamBehind { held: 0 });
    }
    create(state, meta, bytes).await
}

/// A new live job from its first range, admitted like a forward of the largest video.
async fn create(state: &Arc<AppState>, meta: JobMeta, bytes: Bytes) -> Result<u64, IntakeError> {
    let id = &meta.session_id;
    // This attempt (or a newer one) already runs or ran as a whole-file forward.
    if let Some(mark) = state.store.job_mark(id).await? {
        if mark.attempt() >= meta.attempt {
            return Err(IntakeError::StreamBehind { held: 0 });
        }
    }
    intake::check_spending(state, id).await?;
    let permit = intake::reserve(state, &meta, state.cfg.max_video_bytes).await?;
    let job = LiveJob::start(state, meta, permit, bytes).await?;
    let held = job.held();
    state.live.insert(job);
    Ok(held)
}

/// The finishing forward: the live job of this attempt holding exactly the offset it names
/// gets the rest, is checked against the whole video's digest and runs as a job.
pub(crate) async fn finish(
    state: &Arc<AppState>,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, IntakeError> {
    match admit_finish(state, id, headers).await {
        Ok(Finish::Live { job, len, digest }) => take(state, *job, body, len, digest).await,
        Ok(Finish::Duplicate { meta, mark, len }) => {
            intake::duplicate(state, &meta, mark, body, len).await
        }
        Err(e) => {
            if e.is_busy() || matches!(e, IntakeError::StreamBehind { .. }) {
                intake::drain_refused(body).await;
            }
            Err(e)
        }
    }
}

enum Finish {
    Live {
        job: Box<LiveJob>,
        len: u64,
        digest: [u8; 32],
    },
    Duplicate {
        meta: JobMeta,
        mark: Option<crate::store::JobMark>,
        len: u64,
    },
}

/// Everything decided from the headers, and the live job taken out of the registry.
async fn admit_finish(
    state: &Arc<AppState>,
    id: &str,
    headers: &HeaderMap,
) -> Result<Finish, IntakeError> {
    if state.shutdown.is_cancelled() {
        return Err(IntakeError::ShuttingDown);
    }
    let len = intake::content_length(headers)?;
    let path = format!("/v1/jobs/{id}");
    let (meta, digest) =
        intake::verify_signed(state, Purpose::Forward, &path, headers, len, &SIGNED)?;
    let start = offset(headers)?;
    let whole = start.saturating_add(len);
    if header(headers, HEADER_VIDEO_LENGTH).is_some_and(|v| v.trim() != whole.to_string()) {
        return Err(IntakeError::BadRequest(
            "dodolens-video-length is not the offset plus the body",
        ));
    }
    intake::check_job(state, id, &meta, whole)?;
    intake::check_spending(state, id).await?;
    let job = take_live(state, &meta, start).await?;
    match state
        .store
        .claim_job(id, meta.attempt, state.cfg.running_lease)
        .await?
    {
        Claim::Won => Ok(Finish::Live {
            job: Box::new(job),
            len,
            digest,
        }),
        Claim::Taken(mark) => Ok(Finish::Duplicate { meta, mark, len }),
    }
}

/// The session's live job of `meta`'s attempt if it holds exactly `start` bytes; else 409 with
/// what it holds.
async fn take_live(state: &AppState, meta: &JobMeta, start: u64) -> Result<LiveJob, IntakeError> {
    let id = &meta.session_id;
    let Some(entry) = state.live.get(id).filter(|e| e.attempt == meta.attempt) else {
        return Err(IntakeError::StreamBehind { held: 0 });
    };
    let mut guard = entry.job.lock().await;
    let held = guard.as_ref().map_or(0, LiveJob::held);
    if held != start || guard.is_none() {
        return Err(IntakeError::StreamBehind { held });
    }
    state.live.remove(id, &entry);
    Ok(guard.take().expect("checked above"))
}

/// Receives the rest, checks the whole digest and starts the pipeline.
async fn take(
    state: &Arc<AppState>,
    job: LiveJob,
    body: Body,
    len: u64,
    digest: [u8; 32],
) -> Result<Response, IntakeError> {
    let meta = job.meta.clone();
    let id = meta.session_id.clone();
    let started = Instant::now();
    let completed = receive_rest(state, job, body, len)
        .await
        .and_then(|job| job.complete(digest));
    let (recording, permit) = match completed {
        Ok(done) => done,
        Err(e) => {
            let _ = state.store.release_job(&id).await;
            return Err(e);
        }
    };
    tracing::info!(
        job = %short(&id),
        rest = len,
        attempt = meta.attempt,
        ms = started.elapsed().as_millis() as u64,
        "live recording finished"
    );
    let job = pipeline::Job {
        id: id.clone(),
        lease: intake::start_lease(state, &meta),
        meta,
        source: pipeline::Source::Live(Box::new(recording)),
        permit,
        received_at: Instant::now(),
    };
    state.tracker.spawn(pipeline::run(Arc::clone(state), job));
    Ok(intake::accepted(&id, None))
}

/// Appends the finishing forward's body (exactly `len` bytes) to the live job.
async fn receive_rest(
    state: &AppState,
    mut job: LiveJob,
    body: Body,
    len: u64,
) -> Result<LiveJob, IntakeError> {
    let expected = job.held() + len;
    let mut stream = body.into_data_stream();
    let read = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| IntakeError::Incomplete {
                received: job.held(),
                expected,
            })?;
            if job.held() + chunk.len() as u64 > expected {
                return Err(IntakeError::BadRequest("body longer than Content-Length"));
            }
            state.metrics.received_bytes.inc_by(chunk.len() as u64);
            job.append(chunk)?;
        }
        Ok(())
    };
    tokio::time::timeout(state.cfg.job_timeout, read)
        .await
        .map_err(|_| IntakeError::Incomplete {
            received: 0,
            expected,
        })??;
    if job.held() != expected {
        return Err(IntakeError::Incomplete {
            received: job.held(),
            expected,
        });
    }
    Ok(job)
}

/// A range's whole body (it was checked to be at most [`MAX_RANGE_BYTES`]).
async fn read_range(body: Body, len: u64) -> Result<Bytes, IntakeError> {
    let mut bytes = BytesMut::with_capacity(len as usize);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| IntakeError::Incomplete {
            received: bytes.len() as u64,
            expected: len,
        })?;
        if bytes.len() + chunk.len() > len as usize {
            return Err(IntakeError::BadRequest("body longer than Content-Length"));
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.len() as u64 != len {
        return Err(IntakeError::Incomplete {
            received: bytes.len() as u64,
            expected: len,
        });
    }
    Ok(bytes.freeze())
}

fn offset(headers: &HeaderMap) -> Result<u64, IntakeError> {
    header(headers, HEADER_STREAM_OFFSET)
        .and_then(|v| v.trim().parse().ok())
        .ok_or(IntakeError::BadRequest(
            "dodolens-stream-offset is not a number",
        ))
}

/// 202 with the bytes held.
fn holding(held: u64) -> Response {
    (
        StatusCode::ACCEPTED,
        [(HEADER_STREAM_OFFSET, held.to_string())],
        Json(serde_json::json!({ "held": held })),
    )
        .into_response()
}
