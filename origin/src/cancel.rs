//! `DELETE /v1/jobs/{id}`: the user deleted the upload (tus `DELETE`, "Annuler") while the
//! origin holds the job, and the edge says so, signed for [`Purpose::Cancel`].
//!
//! The job stops wherever it is: its future is dropped, which kills ffmpeg (`kill_on_drop`),
//! drops the model requests in flight, and closes the memfds. No final event is sent (the edge
//! has purged the session). The cancel is recorded in the store for the job TTL, so the replica
//! that runs the job stops even if the cancel reached another one, and a late forward of the
//! same id is refused (410). The same happens when an event to the edge is answered 404 or 410:
//! the session is gone, nobody will read the result.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
};
use dodolens_shared::signing::{self, Purpose, SignatureError};
use tokio_util::sync::CancellationToken;

use crate::{
    error::IntakeError,
    intake::{header, is_session_id, short},
    signed::{self, Expected},
    AppState,
};

/// The jobs running on this replica, by id, with the token that stops each.
#[derive(Default)]
pub struct Running {
    jobs: Mutex<HashMap<String, CancellationToken>>,
}

impl Running {
    pub fn register(&self, id: &str) -> CancellationToken {
        let token = CancellationToken::new();
        self.jobs
            .lock()
            .unwrap()
            .insert(id.to_string(), token.clone());
        token
    }

    pub fn remove(&self, id: &str) {
        self.jobs.lock().unwrap().remove(id);
    }

    /// Whether a job `id` was running here.
    pub fn cancel(&self, id: &str) -> bool {
        match self.jobs.lock().unwrap().get(id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }
}

pub async fn delete_job(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, IntakeError> {
    verify(&state, &id, &headers)?;
    if !is_session_id(&id) {
        return Err(IntakeError::BadRequest("malformed job id"));
    }
    state.store.cancel_job(&id, state.cfg.job_ttl()).await?;
    state.live.drop_up_to(&id, None).await;
    let here = state.running.cancel(&id);
    tracing::info!(job = %short(&id), here, "job cancelled by the edge");
    Ok(StatusCode::NO_CONTENT)
}

/// A cancel has no body: the signature covers length 0 and the SHA-256 of nothing.
fn verify(state: &AppState, id: &str, headers: &HeaderMap) -> Result<(), IntakeError> {
    let length = header(headers, "content-length").unwrap_or("0");
    if length.trim() != "0" {
        return Err(IntakeError::BadRequest("a cancel has no body"));
    }
    let metadata = signed::verify(
        &state.cfg.signing,
        headers,
        &Expected {
            purpose: Purpose::Cancel,
            method: "DELETE",
            path: &format!("/v1/jobs/{id}"),
            content_length: 0,
            extra: &[],
        },
    )?;
    if metadata != signing::body_digest(b"") {
        return Err(SignatureError::Mismatch.into());
    }
    Ok(())
}

/// Resolves once job `id` is cancelled: by this replica's token (a cancel that reached it, or
/// an event the edge answered 404/410), or by the store's record of a cancel that reached
/// another replica, checked every `poll`.
pub async fn cancelled(state: &AppState, id: &str, token: &CancellationToken, poll: Duration) {
    let elsewhere = async {
        loop {
            tokio::time::sleep(poll).await;
            if matches!(state.store.is_cancelled(id).await, Ok(true)) {
                return;
            }
        }
    };
    tokio::select! {
        _ = token.cancelled() => {}
        _ = elsewhere => {}
    }
}
