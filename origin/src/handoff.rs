//! `POST /v1/handoffs/{id}`: the edge hands over an inventory the customer confirmed.
//!
//! The origin holds the mover's sinks and their keys, so the edge sends it the confirmed
//! inventory and the contact (signed like its other requests). Everything that can be refused is
//! refused from the headers, before the body is read (length, signature over the declared body
//! digest), then the body against that digest, the id, and the contact (checked again by
//! `shared`). Delivery
//! runs in the background with the sinks' own retries; the edge gets 202 at once. Logs name the
//! session and the revision, never the contact or the lines.

use std::sync::Arc;

use axum::{
    body::{to_bytes, Body},
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use dodolens_shared::{
    handoff,
    protocol::Handoff,
    signing::{self, Purpose, SignatureError},
};
use thiserror::Error;

use crate::{
    intake::{header, is_session_id, short},
    signed::{self, Expected},
    AppState,
};

/// An inventory and a contact: far below this.
pub const MAX_HANDOFF_BYTES: u64 = 1 << 20;

#[derive(Debug, Error)]
pub enum HandoffError {
    #[error("unauthorised: {0}")]
    Unauthorised(#[from] SignatureError),
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("body over {MAX_HANDOFF_BYTES} bytes or without a length")]
    TooLarge,
    #[error("invalid contact")]
    Contact,
}

impl IntoResponse for HandoffError {
    fn into_response(self) -> Response {
        let status = match self {
            HandoffError::Unauthorised(_) => StatusCode::UNAUTHORIZED,
            HandoffError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HandoffError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            HandoffError::Contact => StatusCode::UNPROCESSABLE_ENTITY,
        };
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

pub async fn post_handoff(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, HandoffError> {
    let result = accept(&state, &id, &headers, body).await;
    if let Err(e) = &result {
        tracing::info!(session = %short(&id), error = %e, "hand-off refused");
    }
    result
}

async fn accept(
    state: &Arc<AppState>,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<StatusCode, HandoffError> {
    if !is_session_id(id) {
        return Err(HandoffError::BadRequest("not a session id"));
    }
    let length = header(headers, "content-length")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&n| n <= MAX_HANDOFF_BYTES)
        .ok_or(HandoffError::TooLarge)?;
    let digest = signed::verify(
        &state.cfg.signing,
        headers,
        &Expected {
            purpose: Purpose::Handoff,
            method: "POST",
            path: &format!("/v1/handoffs/{id}"),
            content_length: length,
            extra: &[],
        },
    )?;
    let body = to_bytes(body, length as usize)
        .await
        .map_err(|_| HandoffError::BadRequest("body longer than Content-Length"))?;
    // The signature covers the body through its digest.
    if signing::body_digest(&body) != digest {
        return Err(SignatureError::Mismatch.into());
    }
    let handoff: Handoff = serde_json::from_slice(&body)
        .map_err(|_| HandoffError::BadRequest("body is not a Handoff"))?;
    if handoff.session_id != id {
        return Err(HandoffError::BadRequest("session id and body disagree"));
    }
    // The edge validated it at `confirmed_at`; a delayed hand-off must not fail on the date.
    handoff::validate(&handoff.contact, handoff.confirmed_at).map_err(|_| HandoffError::Contact)?;
    tracing::info!(session = %short(id), revision = handoff.revision, "hand-off accepted");
    let sinks = state.sinks.clone();
    state.tracker.spawn(async move {
        let failed = sinks.deliver_handoff(&handoff).await;
        if !failed.is_empty() {
            tracing::warn!(session = %short(&handoff.session_id), sinks = ?failed, "hand-off not delivered");
        }
    });
    Ok(StatusCode::ACCEPTED)
}
