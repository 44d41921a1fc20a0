//! Typed errors, and the one place where they become HTTP answers or protocol failures.
//!
//! Intake errors are answered to the edge synchronously; job errors happen after the 202 and
//! travel as a `failed` event, so each maps to an [`ErrorCode`] and a `retryable` flag there.

use std::time::Duration;

use axum::{
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use dodolens_shared::protocol::{ErrorCode, Failure, HEADER_STREAM_OFFSET};
use thiserror::Error;

use crate::{admission::Busy, store::StoreError};

/// Retry-After when the store or the shutdown, not a measured queue, is the reason.
const STORE_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Why a request from the edge (`POST` or `DELETE /v1/jobs/{id}`) was refused.
#[derive(Debug, Error)]
pub enum IntakeError {
    #[error("unauthorised: {0}")]
    Unauthorised(#[from] dodolens_shared::signing::SignatureError),
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("bad request: video digest mismatch (the body is not the video the edge signed)")]
    DigestMismatch,
    #[error("body of {0} bytes exceeds the maximum")]
    TooLarge(u64),
    #[error("busy ({}): come back later", .0.reason.as_str())]
    Busy(Busy),
    /// The spending cap of the current `window` is reached (see `spending.rs`).
    #[error("model spending cap reached for this {window}")]
    SpendingCapReached {
        window: &'static str,
        retry_after: Duration,
    },
    #[error("body ended after {received} of {expected} bytes")]
    Incomplete { received: u64, expected: u64 },
    #[error("in-memory buffer: {0}")]
    Buffer(#[from] std::io::Error),
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("shutting down")]
    ShuttingDown,
    #[error("this job was cancelled")]
    Cancelled,
    /// A range past what the live job holds, or a finish that does not continue it: the edge
    /// resends from `held` (0: no live job for that attempt here).
    #[error("the live job holds {held} bytes")]
    StreamBehind { held: u64 },
    /// The first range of a recording could not be read as a video: no live job (the edge
    /// forwards the whole file at the end).
    #[error("not streamable: {0}")]
    NotStreamable(JobError),
}

impl IntakeError {
    /// A wait, not a fault: the edge queues the session and comes back after Retry-After.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            IntakeError::Busy(_) | IntakeError::SpendingCapReached { .. } | IntakeError::Store(_)
        )
    }
}

impl IntoResponse for IntakeError {
    fn into_response(self) -> Response {
        let status = match &self {
            IntakeError::Unauthorised(_) => StatusCode::UNAUTHORIZED,
            IntakeError::BadRequest(_)
            | IntakeError::DigestMismatch
            | IntakeError::Incomplete { .. } => StatusCode::BAD_REQUEST,
            IntakeError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IntakeError::Cancelled => StatusCode::GONE,
            IntakeError::StreamBehind { .. } => StatusCode::CONFLICT,
            // A store that does not answer (Redis paused, restarting) is a wait, not a fault.
            IntakeError::Busy(_)
            | IntakeError::SpendingCapReached { .. }
            | IntakeError::ShuttingDown
            | IntakeError::NotStreamable(_)
            | IntakeError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            IntakeError::Buffer(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let retry_after = match &self {
            IntakeError::Busy(busy) => Some(busy.retry_after),
            IntakeError::SpendingCapReached { retry_after, .. } => Some(*retry_after),
            IntakeError::ShuttingDown | IntakeError::Store(_) | IntakeError::NotStreamable(_) => {
                Some(STORE_RETRY_AFTER)
            }
            _ => None,
        };
        let mut body = serde_json::json!({ "error": self.to_string() });
        if let IntakeError::Busy(busy) = &self {
            body["busy"] = busy.reason.as_str().into();
        }
        if let IntakeError::SpendingCapReached { .. } = &self {
            body["code"] = "budget_exhausted".into();
        }
        if let IntakeError::StreamBehind { held } = &self {
            body["held"] = (*held).into();
            let offset = [(HEADER_STREAM_OFFSET, held.to_string())];
            return (status, offset, Json(body)).into_response();
        }
        let body = Json(body);
        match retry_after {
            Some(wait) => {
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                (status, [(header::RETRY_AFTER, secs.to_string())], body).into_response()
            }
            None => (status, body).into_response(),
        }
    }
}

/// Why a job that was accepted did not produce an inventory.
#[derive(Debug, Error)]
pub enum JobError {
    #[error("unsupported media: {0}")]
    UnsupportedMedia(String),
    #[error("invalid media: {0}")]
    InvalidMedia(String),
    #[error("{0} timed out")]
    Timeout(&'static str),
    #[error("model unavailable: {0}")]
    ModelUnavailable(String),
    #[error("model answered outside the schema: {0}")]
    ModelInvalidResponse(String),
    #[error("origin shutting down")]
    ShuttingDown,
    #[error("internal: {0}")]
    Internal(String),
}

impl JobError {
    pub fn code(&self) -> ErrorCode {
        match self {
            JobError::UnsupportedMedia(_) => ErrorCode::UnsupportedMedia,
            JobError::InvalidMedia(_) => ErrorCode::InvalidMedia,
            JobError::Timeout(_) => ErrorCode::Timeout,
            JobError::ModelUnavailable(_) => ErrorCode::ModelUnavailable,
            JobError::ModelInvalidResponse(_) => ErrorCode::ModelInvalidResponse,
            JobError::ShuttingDown => ErrorCode::OriginUnavailable,
            JobError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Whether running the same video again may succeed: a broken file stays broken, a busy
    /// model or a restarting origin does not.
    pub fn retryable(&self) -> bool {
        !matches!(
            self,
            JobError::UnsupportedMedia(_) | JobError::InvalidMedia(_)
        )
    }

    /// The failure as the user sees it; messages name the problem, never the content.
    pub fn failure(&self) -> Failure {
        let message = match self {
            JobError::UnsupportedMedia(_) => "Ce fichier n'est pas une vidéo lisible.",
            JobError::InvalidMedia(_) => "La vidéo est endommagée ou incomplète.",
            JobError::Timeout(_) => "L'analyse a pris trop de temps.",
            JobError::ModelUnavailable(_) => "Le service d'analyse est indisponible.",
            JobError::ModelInvalidResponse(_) => {
                "Le service d'analyse a répondu de façon invalide."
            }
            JobError::ShuttingDown => "Le serveur d'analyse redémarre.",
            JobError::Internal(_) => "Erreur interne.",
        };
        Failure {
            code: self.code(),
            message: message.to_string(),
            retryable: self.retryable(),
        }
    }
}
