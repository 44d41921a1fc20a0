//! Requests from the edge to the origin: signed for their purpose, bounded in time.
//!
//! A job (`POST /v1/jobs/{id}`), a range of one still being received
//! (`POST /v1/jobs/{id}/stream`), a cancel (`DELETE /v1/jobs/{id}`) and a hand-off
//! (`POST /v1/handoffs/{id}`) carry the same signed headers (`shared::signing`: timestamp,
//! metadata, any extra signed header, signature) and must not wait for a hung origin forever, so
//! both live here once, with the job metadata a job and its ranges both carry.

use crate::{error::EdgeError, object::now, store::Record};
use base64::{engine::general_purpose::STANDARD, Engine};
use dodolens_shared::{
    protocol::JobMeta,
    signing::{Keyring, Purpose, SignedParts, HEADER_METADATA, HEADER_SIGNATURE, HEADER_TIMESTAMP},
};
use futures_util::future::{select, Either};
use std::time::Duration;
use worker::{AbortController, Delay, Fetch, Headers, Request, Response};

/// What a signed request to the origin covers, besides the time it is signed at.
pub struct Signed<'a> {
    pub purpose: Purpose,
    pub method: &'a str,
    pub path: &'a str,
    pub content_length: u64,
    /// The job metadata, or the SHA-256 hex of a small body.
    pub metadata: &'a str,
    /// Extra signed headers, sent as they are signed.
    pub extra: &'a [(&'a str, &'a str)],
}

/// The signed metadata of job `attempt` of the session in `record`: base64 JSON [`JobMeta`]
/// (where to report, how to read the video).
pub fn job_metadata(record: &Record, attempt: u32) -> Result<String, EdgeError> {
    let session = &record.session;
    let job = JobMeta {
        session_id: session.id.clone(),
        callback_url: format!(
            "{}/internal/sessions/{}/events",
            record.callback_base, session.id
        ),
        meta: session.meta.clone(),
        attempt,
    };
    Ok(STANDARD.encode(serde_json::to_vec(&job)?))
}

/// The headers of `signed`, signed now with the current key.
pub fn signed_headers(keys: &Keyring, signed: &Signed<'_>) -> Result<Headers, EdgeError> {
    let timestamp = now() / 1000;
    let signature = keys.sign(&SignedParts {
        extra: signed.extra,
        ..SignedParts::new(
            signed.purpose,
            signed.method,
            signed.path,
            timestamp,
            signed.content_length,
            signed.metadata,
        )
    })?;
    let headers = Headers::new();
    headers.set(HEADER_TIMESTAMP, &timestamp.to_string())?;
    headers.set(HEADER_METADATA, signed.metadata)?;
    for (name, value) in signed.extra {
        headers.set(name, value)?;
    }
    headers.set(HEADER_SIGNATURE, &signature)?;
    Ok(headers)
}

/// Sends `request`; `None` when no answer came within `timeout` (the request is aborted).
pub async fn send(request: Request, timeout: Duration) -> Result<Option<Response>, EdgeError> {
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let send = fetch.send_with_signal(&signal);
    let timeout = Delay::from(timeout);
    futures_util::pin_mut!(send, timeout);
    match select(send, timeout).await {
        Either::Left((response, _)) => Ok(Some(response?)),
        Either::Right(_) => {
            controller.abort();
            Ok(None)
        }
    }
}
