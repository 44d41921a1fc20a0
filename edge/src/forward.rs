//! Forwarding a finished upload to the origin: `POST {ORIGIN_URL}/v1/jobs/{id}`.
//!
//! The body is streamed row by row from SQLite through a `FixedLengthStream`, so the origin gets
//! a Content-Length and the Worker never holds the video (Workers have 128 MB of memory). The
//! request is signed over the method, path, timestamp, length and the job metadata (which rides
//! in a header, because a streamed body cannot be hashed before it is sent). The state machine
//! decides whether to send at all; the outcome (classified by `shared::answer`) goes back into
//! it, which decides about the queue, backoff, `Retry-After` and the watchdog.

use crate::{
    error::EdgeError,
    object::{now, Object},
    store::Store,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use dodolens_shared::{
    answer,
    lifecycle::{ForwardResponse, Input},
    protocol::{JobMeta, HEADER_QUEUE_POSITION, HEADER_RUNNING_ATTEMPT},
    signing::{self, SignedParts, HEADER_METADATA, HEADER_SIGNATURE, HEADER_TIMESTAMP},
};
use futures_util::{
    future::{select, Either},
    pin_mut, Stream,
};
use std::{rc::Rc, time::Duration};
use worker::{
    worker_sys, AbortController, Delay, Fetch, FixedLengthStream, Headers, Method, Request,
    RequestInit,
};

impl Object {
    /// Runs a forward in the background. Whether it really sends is the state machine's
    /// decision ([`Input::ForwardStarted`]): not when that forward is no longer wanted, nor
    /// while another is in flight (the state machine asks again when that one ends). The job
    /// carries the session-wide attempt the state machine assigned.
    pub fn start_forward(self: &Rc<Self>) {
        let object = Rc::clone(self);
        self.state.wait_until(async move { object.forward().await });
    }

    async fn forward(self: &Rc<Self>) {
        let attempt = match self.decide(Input::ForwardStarted).await {
            Ok((_, Some(attempt))) => attempt,
            Ok((_, None)) => return,
            Err(e) => {
                worker::console_warn!("forward not started: {e}");
                return;
            }
        };
        let answer = self.send_job(attempt).await.unwrap_or_else(|e| {
            worker::console_warn!("origin unreachable (attempt {attempt}): {e}");
            ForwardResponse::default()
        });
        if let Some(status) = answer.status.filter(|s| !(200..300).contains(s)) {
            worker::console_warn!("origin refused job (attempt {attempt}): status {status}");
        }
        let input = Input::from_forward_response(attempt, &answer);
        if let Err(e) = self.apply(input).await {
            // The watchdog gave up on this forward, or the session was purged meanwhile.
            worker::console_log!("forward outcome not applied: {e}");
        }
    }

    async fn send_job(&self, attempt: u32) -> Result<ForwardResponse, EdgeError> {
        let config = self.config()?;
        let secret = config.secret()?;
        let record = self.active()?;
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
        let metadata = STANDARD.encode(serde_json::to_vec(&job)?);
        let path = format!("/v1/jobs/{}", session.id);
        let timestamp = now() / 1000;
        // A forward is only asked for once the upload is complete: its length is its offset.
        let length = session.upload.length.unwrap_or(session.upload.offset);
        let signature = signing::sign(
            secret,
            &SignedParts {
                method: "POST",
                path: &path,
                timestamp,
                content_length: length,
                metadata: &metadata,
            },
        )?;

        let headers = Headers::new();
        headers.set("Content-Type", "application/octet-stream")?;
        headers.set(HEADER_TIMESTAMP, &timestamp.to_string())?;
        headers.set(HEADER_METADATA, &metadata)?;
        headers.set(HEADER_SIGNATURE, &signature)?;
        let body: worker_sys::FixedLengthStream =
            FixedLengthStream::wrap(rows(self.store.clone(), length), length).into();
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(body.readable().into()));
        let request = Request::new_with_init(&format!("{}{path}", config.origin_url), &init)?;

        // A hung origin must not hold the forward forever. The timeout comes a little before the
        // watchdog, so a slow forward ends as a transient answer (backoff) rather than racing
        // the watchdog's re-forward.
        let controller = AbortController::default();
        let signal = controller.signal();
        let fetch = Fetch::Request(request);
        let send = fetch.send_with_signal(&signal);
        let watchdog = config.limits.watchdog_ms;
        let timeout = Delay::from(Duration::from_millis(watchdog - watchdog / 10));
        pin_mut!(send, timeout);
        let response = match select(send, timeout).await {
            Either::Left((response, _)) => response?,
            Either::Right(_) => {
                controller.abort();
                return Ok(ForwardResponse::default());
            }
        };
        let headers = response.headers();
        Ok(ForwardResponse {
            status: Some(response.status_code()),
            retry_after_ms: answer::retry_after_ms(headers.get("Retry-After")?.as_deref()),
            running_attempt: number(headers.get(HEADER_RUNNING_ATTEMPT)?),
            queue_position: number(headers.get(HEADER_QUEUE_POSITION)?),
        })
    }
}

fn number(header: Option<String>) -> Option<u32> {
    header?.trim().parse().ok()
}

/// The stored rows from offset 0 to `length`, each looked up where the previous one ended.
fn rows(store: Store, length: u64) -> impl Stream<Item = worker::Result<Vec<u8>>> + 'static {
    futures_util::stream::unfold(0u64, move |offset| {
        let store = store.clone();
        async move {
            if offset >= length {
                return None;
            }
            match store.row(offset) {
                Ok(Some(row)) if !row.is_empty() => {
                    let next = offset + row.len() as u64;
                    Some((Ok(row), next))
                }
                Ok(_) => Some((
                    Err(worker::Error::RustError(format!(
                        "no chunk row at offset {offset}"
                    ))),
                    length,
                )),
                Err(e) => Some((Err(e), length)),
            }
        }
    })
}
