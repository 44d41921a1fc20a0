//! Telling the origin to stop a job: `DELETE {ORIGIN_URL}/v1/jobs/{id}`, signed for
//! `Purpose::Cancel`, when a session is terminated (tus `DELETE`, "Annuler") while the origin
//! has or is being sent its video (`Effect::CancelOrigin`).
//!
//! It runs in the background and is not retried: the session is already purged here, so if the
//! cancel is lost the origin still stops at its next event, which the tombstone answers 410.

use crate::{
    config::Config,
    error::EdgeError,
    object::Object,
    origin_call::{self, Signed},
};
use dodolens_shared::signing::{self, Purpose};
use std::time::Duration;
use worker::{Method, Request, RequestInit};

/// A cancel that gets no answer within this long is abandoned (see the module doc).
const CANCEL_TIMEOUT: Duration = Duration::from_secs(10);

impl Object {
    pub fn start_cancel(&self, session_id: String) {
        let config = match self.config() {
            Ok(config) => config.clone(),
            Err(e) => {
                worker::console_warn!("cancel not sent: {e}");
                return;
            }
        };
        self.state.wait_until(async move {
            match send_cancel(&config, &session_id).await {
                Ok(204) => {}
                Ok(status) => worker::console_warn!("origin answered the cancel {status}"),
                Err(e) => worker::console_warn!("cancel not delivered: {e}"),
            }
        });
    }
}

async fn send_cancel(config: &Config, session_id: &str) -> Result<u16, EdgeError> {
    let path = format!("/v1/jobs/{session_id}");
    let headers = origin_call::signed_headers(
        config.keys()?,
        &Signed {
            purpose: Purpose::Cancel,
            method: "DELETE",
            path: &path,
            content_length: 0,
            metadata: &signing::body_digest(b""),
            extra: &[],
        },
    )?;
    let mut init = RequestInit::new();
    init.with_method(Method::Delete).with_headers(headers);
    let request = Request::new_with_init(&format!("{}{path}", config.origin_url), &init)?;
    match origin_call::send(request, CANCEL_TIMEOUT).await? {
        Some(response) => Ok(response.status_code()),
        None => Err(EdgeError::Runtime(worker::Error::RustError(
            "cancel timed out".into(),
        ))),
    }
}
