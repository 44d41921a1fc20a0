//! Every way an edge request fails, mapped to an HTTP response in one place.
//!
//! The status codes are part of the contract (tus clients branch on 409/410/412/460, the origin's
//! outbox on 401/404/409/410), so they are decided here and nowhere else.

use crate::http;
use dodolens_shared::{lifecycle::LifecycleError, signing::SignatureError, tus::TusError};
use thiserror::Error;
use worker::Response;

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
    #[error("another request is writing to this upload")]
    Busy,
    #[error("expected a WebSocket upgrade")]
    UpgradeRequired,
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
            EdgeError::Lifecycle(
                LifecycleError::NotAllowed { .. }
                | LifecycleError::BadOffset { .. }
                | LifecycleError::StaleAttempt { .. },
            ) => 409,
            EdgeError::Signature(_) => 401,
            EdgeError::NotFound => 404,
            EdgeError::Gone => 410,
            EdgeError::BadRequest(_) => 400,
            EdgeError::Busy => 409,
            EdgeError::UpgradeRequired => 426,
            EdgeError::Config(_) | EdgeError::Runtime(_) => 500,
        }
    }

    /// A plain-text response; internal details are logged, not returned.
    pub fn into_response(self) -> Response {
        let status = self.status();
        let body = if status >= 500 {
            worker::console_error!("edge error: {self}");
            "internal error".to_string()
        } else {
            self.to_string()
        };
        http::text(status, &body)
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
