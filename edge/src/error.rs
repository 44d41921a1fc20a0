//! Every way an edge request fails, mapped to an HTTP response in one place.
//!
//! The status codes are part of the contract (tus clients branch on 409/410/412/460, the origin's
//! outbox on 401/404/409/410), so they are decided here and nowhere else.

use crate::http;
use dodolens_shared::{
    handoff::ConfirmError, lifecycle::LifecycleError, protocol::ContactField,
    signing::SignatureError, tus::TusError,
};
use thiserror::Error;
use worker::Response;

/// `Retry-After` when siteverify could not be asked.
const CHALLENGE_RETRY_SECS: u64 = 5;

#[derive(Debug, Error)]
pub enum EdgeError {
    #[error(transparent)]
    Tus(#[from] TusError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error("signature rejected: {0}")]
    Signature(#[from] SignatureError),
    #[error("not found")]
    NotFound,
    #[error("session expired or purged")]
    Gone,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("Content-Length is required")]
    LengthRequired,
    #[error("request body too large: {0}")]
    TooLarge(&'static str),
    /// A newer PATCH on the same upload took over (the client reconnected); this one stopped.
    #[error("a newer request took over this upload")]
    Superseded,
    #[error("too many uploads created from this address; retry in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0}")]
    ChallengeFailed(String),
    #[error("the anti-abuse check is unavailable; retry shortly")]
    ChallengeUnavailable,
    #[error("expected a WebSocket upgrade")]
    UpgradeRequired,
    #[error(transparent)]
    Confirm(#[from] ConfirmError),
    #[error("the analysis service did not take the confirmation; try again")]
    OriginUnavailable,
    #[error("configuration value {0} is missing or invalid")]
    Config(&'static str),
    #[error("runtime error: {0}")]
    Runtime(#[from] worker::Error),
}

impl EdgeError {
    pub fn status(&self) -> u16 {
        match self {
            EdgeError::Tus(e) => e.status(),
            EdgeError::Lifecycle(LifecycleError::Purged) => 410,
            EdgeError::Lifecycle(LifecycleError::BadLength { .. }) => 400,
            EdgeError::Lifecycle(
                LifecycleError::NotAllowed { .. }
                | LifecycleError::BadOffset { .. }
                | LifecycleError::StaleAttempt { .. }
                | LifecycleError::RetriesExhausted { .. },
            ) => 409,
            EdgeError::Signature(_) => 401,
            EdgeError::NotFound => 404,
            EdgeError::Gone => 410,
            EdgeError::BadRequest(_) => 400,
            EdgeError::LengthRequired => 411,
            EdgeError::TooLarge(_) => 413,
            EdgeError::Superseded => 409,
            EdgeError::TooManyRequests { .. } => 429,
            EdgeError::ChallengeFailed(_) => 403,
            EdgeError::ChallengeUnavailable => 503,
            EdgeError::UpgradeRequired => 426,
            EdgeError::Confirm(ConfirmError::NotCompleted) => 409,
            EdgeError::Confirm(_) => 422,
            EdgeError::OriginUnavailable => 503,
            EdgeError::Config(_) | EdgeError::Runtime(_) => 500,
        }
    }

    /// Seconds a client should wait before trying again, when the refusal is temporary.
    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            EdgeError::TooManyRequests { retry_after_secs } => Some(*retry_after_secs),
            EdgeError::ChallengeUnavailable => Some(CHALLENGE_RETRY_SECS),
            _ => None,
        }
    }

    /// A plain-text response; internal details are logged, not returned. A refused confirmation
    /// is JSON, so the page can mark the wrong fields.
    pub fn into_response(self) -> Response {
        let status = self.status();
        if let EdgeError::Confirm(e) = &self {
            let (error, fields): (&str, &[ContactField]) = match e {
                ConfirmError::Contact(fields) => ("contact", fields),
                ConfirmError::Edits(_) => ("edits", &[]),
                ConfirmError::NotCompleted => ("not_completed", &[]),
            };
            let body =
                serde_json::json!({ "error": error, "fields": fields, "message": e.to_string() });
            return http::json(status, &body).unwrap_or_else(|_| http::text(status, error, &[]));
        }
        let body = match self {
            EdgeError::Config(_) | EdgeError::Runtime(_) => {
                worker::console_error!("edge error: {self}");
                "internal error".to_string()
            }
            _ => self.to_string(),
        };
        let retry_after = self
            .retry_after_secs()
            .map(|s| ("Retry-After", s.to_string()));
        http::text(status, &body, retry_after.as_slice())
    }
}

impl From<worker::wasm_bindgen::JsValue> for EdgeError {
    fn from(e: worker::wasm_bindgen::JsValue) -> Self {
        EdgeError::Runtime(worker::Error::from(e))
    }
}

impl From<serde_json::Error> for EdgeError {
    fn from(e: serde_json::Error) -> Self {
        EdgeError::Runtime(worker::Error::from(e))
    }
}
