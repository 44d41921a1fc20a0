//! Forwarding while receiving: one range of a recording still being uploaded,
//! `POST {ORIGIN_URL}/v1/jobs/{id}/stream` (docs/PROTOCOL.md, "Forwarding while receiving").
//!
//! The state machine decides when a range goes and from where ([`Effect::SendRange`]); this
//! reads the committed rows from there into memory (whole rows, at most [`STREAM_RANGE_MAX`], so
//! the range has a known length and a digest before it is signed — unlike the forward, which
//! streams a video too large to hold), signs it for `Purpose::Stream` with the job metadata of
//! the stream's attempt, its offset and its SHA-256, and reports the origin's answer
//! ([`Input::RangeSent`]). The rows stay: whatever the ranges came to, the forward at the end
//! can still send the whole video.
//!
//! [`Effect::SendRange`]: dodolens_shared::lifecycle::Effect::SendRange

use crate::{
    error::EdgeError,
    forward::number,
    object::Object,
    origin_call::{self, Signed},
    store::Store,
};
use dodolens_shared::{
    answer,
    lifecycle::{Input, RangeResponse, STREAM_RANGE_MAX},
    protocol::{HEADER_STREAM_OFFSET, STREAM_SIGNED_HEADERS},
    signing::{self, Purpose},
};
use std::rc::Rc;
use worker::{js_sys::Uint8Array, Method, Request, RequestInit};

impl Object {
    /// Sends the range from `from` of stream `attempt` in the background, then applies its
    /// outcome (which may ask for the next range).
    pub fn start_range(self: &Rc<Self>, attempt: u32, from: u64) {
        let object = Rc::clone(self);
        self.state
            .wait_until(async move { object.stream_range(attempt, from).await });
    }

    async fn stream_range(self: &Rc<Self>, attempt: u32, from: u64) {
        let answer = self.send_range(attempt, from).await.unwrap_or_else(|e| {
            worker::console_warn!("range not sent (attempt {attempt}, from {from}): {e}");
            RangeResponse::default()
        });
        if let Some(status) = answer.status.filter(|s| !(200..300).contains(s)) {
            worker::console_log!(
                "origin answered range (attempt {attempt}, from {from}): {status}"
            );
        }
        if let Err(e) = self
            .apply(Input::from_range_response(attempt, &answer))
            .await
        {
            // The watchdog gave up on this range, or the session was purged meanwhile.
            worker::console_log!("range outcome not applied: {e}");
        }
    }

    async fn send_range(&self, attempt: u32, from: u64) -> Result<RangeResponse, EdgeError> {
        let record = self.active()?;
        let body = read_range(&self.store, from, record.session.upload.offset)?;
        let path = format!("/v1/jobs/{}/stream", record.session.id);
        let metadata = origin_call::job_metadata(&record, attempt)?;
        let offset = from.to_string();
        let digest = signing::body_digest(&body);
        let [offset_header, digest_header] = STREAM_SIGNED_HEADERS;
        let headers = origin_call::signed_headers(
            self.config()?.keys()?,
            &Signed {
                purpose: Purpose::Stream,
                method: "POST",
                path: &path,
                content_length: body.len() as u64,
                metadata: &metadata,
                extra: &[(offset_header, &offset), (digest_header, &digest)],
            },
        )?;
        headers.set("Content-Type", "application/octet-stream")?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(Uint8Array::from(body.as_slice()).into()));
        let request = Request::new_with_init(&self.origin_url(&path)?, &init)?;
        let Some(response) = origin_call::send(request, self.origin_timeout()?).await? else {
            return Ok(RangeResponse::default());
        };
        let headers = response.headers();
        Ok(RangeResponse {
            status: Some(response.status_code()),
            retry_after_ms: answer::retry_after_ms(headers.get("Retry-After")?.as_deref()),
            held: number(headers.get(HEADER_STREAM_OFFSET)?),
        })
    }
}

/// The committed bytes from `from`: whole rows (the first from `from` on) until the next would
/// pass [`STREAM_RANGE_MAX`], never past `committed`.
fn read_range(store: &Store, from: u64, committed: u64) -> Result<Vec<u8>, EdgeError> {
    let mut body = Vec::new();
    let mut offset = from;
    while offset < committed {
        let mut row = store.row_from(offset)?.ok_or_else(|| {
            EdgeError::Runtime(worker::Error::RustError(format!(
                "no chunk row at offset {offset}"
            )))
        })?;
        row.truncate(usize::try_from(committed - offset).unwrap_or(usize::MAX));
        if !body.is_empty() && (body.len() + row.len()) as u64 > STREAM_RANGE_MAX {
            break;
        }
        offset += row.len() as u64;
        body.append(&mut row);
    }
    Ok(body)
}
