//! Forwarding a finished upload to the origin: `POST {ORIGIN_URL}/v1/jobs/{id}`.
//!
//! The body is streamed row by row from SQLite through a `FixedLengthStream`, so the origin gets
//! a Content-Length and the Worker never holds the video (Workers have 128 MB of memory). The
//! request is signed for `Purpose::Forward` over the method, path, timestamp, length, the job
//! metadata (which rides in a header) and the video's SHA-256: a streamed body cannot be hashed
//! before it is sent, so the digest is the one kept with the rows as they were written
//! (`shared::video_digest`). The admission probe signs the same facts under its own path. The state machine
//! decides whether to send at all; the outcome (classified by `shared::answer`) goes back into
//! it, which decides about the queue, backoff, `Retry-After` and the watchdog.
//!
//! A queued session (the origin's last answer was busy) first asks the body-less admission probe
//! `POST /v1/jobs/{id}/admission`: re-sending a whole video every `Retry-After` only to be
//! refused again would cost the edge, the link and the origin the video's size each time. The
//! probe reserves nothing, so the forward after a yes can still be refused; the origin then
//! reads the body before answering so that the refusal arrives (see the origin's intake).
//!
//! The forward that finishes a recording streamed while it was received (`stream.rs`) resumes:
//! `dodolens-stream-offset: N` (the bytes the origin said it holds, signed too), the body and the
//! signed length are the rest `[N, whole)`, `dodolens-video-length` the whole length, and the
//! digest is still the whole video's (the origin hashed the ranges as they came).

use crate::{
    error::EdgeError,
    object::Object,
    origin_call::{self, Signed},
    store::{Record, Store},
};
use dodolens_shared::{
    answer,
    lifecycle::{ForwardResponse, Input},
    protocol::{
        HEADER_QUEUE_POSITION, HEADER_RUNNING_ATTEMPT, HEADER_VIDEO_LENGTH, STREAM_SIGNED_HEADERS,
    },
    signing::Purpose,
};
use futures_util::Stream;
use std::{rc::Rc, time::Duration};
use worker::{worker_sys, FixedLengthStream, Headers, Method, Request, RequestInit};

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
        let order = match self.decide(Input::ForwardStarted).await {
            Ok((_, Some(order))) => order,
            Ok((_, None)) => return,
            Err(e) => {
                worker::console_warn!("forward not started: {e}");
                return;
            }
        };
        let attempt = order.attempt;
        let answer = self.send(order).await.unwrap_or_else(|e| {
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

    /// The probe first when the state machine asks for it: a busy probe is the forward's
    /// answer; any other lets the video go (the forward's own answer then decides).
    async fn send(&self, order: Order) -> Result<ForwardResponse, EdgeError> {
        if order.probe {
            let probe = self.probe(order.attempt).await;
            match &probe {
                Ok(answer) if is_busy(answer) => return probe,
                Ok(_) => {}
                Err(e) => worker::console_warn!("admission probe failed: {e}"),
            }
        }
        self.send_job(order).await
    }

    /// `POST /v1/jobs/{id}/admission`: the forward's signed headers, no body.
    async fn probe(&self, attempt: u32) -> Result<ForwardResponse, EdgeError> {
        let record = self.active()?;
        let path = format!("/v1/jobs/{}/admission", record.session.id);
        let headers = self.signed_headers(&record, &path, attempt, 0)?;
        headers.set(HEADER_VIDEO_LENGTH, &video_length(&record).to_string())?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_headers(headers);
        let request = Request::new_with_init(&self.origin_url(&path)?, &init)?;
        self.answer(request).await
    }

    /// The video (from `resume_from` when the origin holds its start) as job `attempt`.
    async fn send_job(&self, order: Order) -> Result<ForwardResponse, EdgeError> {
        let record = self.active()?;
        let whole = video_length(&record);
        let from = order.resume_from.min(whole);
        let path = format!("/v1/jobs/{}", record.session.id);
        let headers = self.signed_headers(&record, &path, order.attempt, from)?;
        headers.set("Content-Type", "application/octet-stream")?;
        if from > 0 {
            headers.set(HEADER_VIDEO_LENGTH, &whole.to_string())?;
        }
        let body: worker_sys::FixedLengthStream =
            FixedLengthStream::wrap(rows(self.store.clone(), from, whole), whole - from).into();
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(body.readable().into()));
        let request = Request::new_with_init(&self.origin_url(&path)?, &init)?;
        self.answer(request).await
    }

    /// The job metadata and the signature over `POST {path}` with the length sent (the video's
    /// from `resume_from`); the probe and the forward sign the same facts, each under its own
    /// path. A resumed forward also signs where it resumes.
    fn signed_headers(
        &self,
        record: &Record,
        path: &str,
        attempt: u32,
        resume_from: u64,
    ) -> Result<Headers, EdgeError> {
        let metadata = origin_call::job_metadata(record, attempt)?;
        // The rows' SHA-256, kept with the offset as they were written: the origin checks the
        // body it receives against it, and it is signed with the rest.
        let digest = record.digest.hex();
        let offset = resume_from.to_string();
        let [offset_header, digest_header] = STREAM_SIGNED_HEADERS;
        let resumed = [
            (offset_header, offset.as_str()),
            (digest_header, digest.as_str()),
        ];
        let whole = [(digest_header, digest.as_str())];
        origin_call::signed_headers(
            self.config()?.keys()?,
            &Signed {
                purpose: Purpose::Forward,
                method: "POST",
                path,
                content_length: video_length(record) - resume_from,
                metadata: &metadata,
                extra: if resume_from > 0 {
                    &resumed[..]
                } else {
                    &whole[..]
                },
            },
        )
    }

    pub(crate) fn origin_url(&self, path: &str) -> Result<String, EdgeError> {
        Ok(format!("{}{path}", self.config()?.origin_url))
    }

    /// How long a request to the origin may wait for its answer: a little less than the
    /// watchdog, so a slow forward ends as a transient answer (backoff) rather than racing the
    /// watchdog's re-forward, and a range's answer comes before the watchdog gives up on it.
    pub(crate) fn origin_timeout(&self) -> Result<Duration, EdgeError> {
        let watchdog = self.config()?.limits.watchdog_ms;
        Ok(Duration::from_millis(watchdog - watchdog / 10))
    }

    /// Sends `request`, read as the state machine needs it; a hung origin must not hold the
    /// forward forever ([`Object::origin_timeout`]).
    async fn answer(&self, request: Request) -> Result<ForwardResponse, EdgeError> {
        let timeout = self.origin_timeout()?;
        let Some(response) = origin_call::send(request, timeout).await? else {
            return Ok(ForwardResponse::default());
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

/// What [`Effect::Send`](dodolens_shared::lifecycle::Effect::Send) asks of the forward task.
#[derive(Clone, Copy, Debug)]
pub struct Order {
    pub attempt: u32,
    pub probe: bool,
    /// The bytes the origin already holds (0: the whole video).
    pub resume_from: u64,
}

/// A forward is only asked for once the upload is complete: its length is its offset.
fn video_length(record: &Record) -> u64 {
    let upload = &record.session.upload;
    upload.length.unwrap_or(upload.offset)
}

fn is_busy(answer: &ForwardResponse) -> bool {
    matches!(
        answer::classify(answer.status, answer.retry_after_ms),
        answer::Answer::Busy { .. }
    )
}

pub(crate) fn number<T: std::str::FromStr>(header: Option<String>) -> Option<T> {
    header?.trim().parse().ok()
}

/// The stored bytes from `from` to `length`, each row looked up where the previous one ended.
fn rows(
    store: Store,
    from: u64,
    length: u64,
) -> impl Stream<Item = worker::Result<Vec<u8>>> + 'static {
    futures_util::stream::unfold(from, move |offset| {
        let store = store.clone();
        async move {
            if offset >= length {
                return None;
            }
            match store.row_from(offset) {
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
