//! The customer's confirmation: `POST` / `DELETE /api/dodo-lens/sessions/{id}/confirm`.
//!
//! The browser sends its edit list and the contact; `shared::handoff` validates the contact and
//! recomputes the inventory from the stored result (the browser's totals are never read). The
//! hand-off then goes to the origin, signed (`POST {ORIGIN_URL}/v1/handoffs/{id}`), because the
//! origin holds the mover's sinks and their keys; only once the origin has accepted it is the
//! confirmation stored in the session record (until retention, like the result) and broadcast.
//! If the origin cannot take it, nothing is stored and the browser is told to try again.

use crate::{
    error::EdgeError,
    http,
    object::{now, Object},
    origin_call::{self, Signed},
    store::Record,
};
use dodolens_shared::{
    lifecycle::Effect,
    protocol::{ConfirmRequest, Handoff, Millis},
    signing::{self, Purpose},
};
use std::{rc::Rc, time::Duration};
use worker::{Method, Request, RequestInit, Response};

/// An edit list and a contact: 2000 edits of ~100 bytes at most.
pub const MAX_CONFIRM_BYTES: u64 = 256 << 10;
/// How long the browser's confirmation waits for the origin.
const ORIGIN_TIMEOUT: Duration = Duration::from_secs(10);

impl Object {
    pub async fn confirm(self: &Rc<Self>, mut req: Request) -> Result<Response, EdgeError> {
        let declared = req
            .headers()
            .get("Content-Length")?
            .and_then(|v| v.trim().parse::<u64>().ok());
        match declared {
            None => return Err(EdgeError::LengthRequired),
            Some(n) if n > MAX_CONFIRM_BYTES => return Err(EdgeError::TooLarge("confirmation")),
            Some(_) => {}
        }
        self.active()?;
        let body = req.bytes().await?;
        if body.len() as u64 > MAX_CONFIRM_BYTES {
            return Err(EdgeError::TooLarge("confirmation"));
        }
        let request: ConfirmRequest =
            serde_json::from_slice(&body).map_err(|e| EdgeError::BadRequest(e.to_string()))?;
        let at = now();
        let (handoff, _, _) = self.confirmed(&request, at)?;
        self.send_handoff(&handoff).await?;
        // The session may have moved on while the origin answered (purged at retention, edited
        // and confirmed again): the confirmation is decided again on the record as it is now.
        let (_, record, effects) = self.confirmed(&request, at)?;
        let confirmed = record.review.confirmation.clone().map(|c| c.confirmed);
        self.save_and_broadcast(record, effects)?;
        Ok(http::json(200, &confirmed)?)
    }

    /// The hand-off, and the current record with `request` confirmed in it (not saved yet).
    fn confirmed(
        &self,
        request: &ConfirmRequest,
        at: Millis,
    ) -> Result<(Handoff, Record, Vec<Effect>), EdgeError> {
        let mut record = self.active()?;
        let (handoff, effects) = record.review.confirm(&mut record.session, request, at)?;
        Ok((handoff, record, effects))
    }

    /// Withdraws the confirmation (an edit after confirming); idempotent.
    pub fn unconfirm(self: &Rc<Self>) -> Result<Response, EdgeError> {
        let mut record = self.active()?;
        let effects = record.review.withdraw(&mut record.session);
        if !effects.is_empty() {
            self.save_and_broadcast(record, effects)?;
        }
        Ok(http::empty(204, &[]))
    }

    async fn send_handoff(&self, handoff: &Handoff) -> Result<(), EdgeError> {
        let config = self.config()?;
        let body = serde_json::to_vec(handoff)?;
        let path = format!("/v1/handoffs/{}", handoff.session_id);
        let headers = origin_call::signed_headers(
            config.keys()?,
            &Signed {
                purpose: Purpose::Handoff,
                method: "POST",
                path: &path,
                content_length: body.len() as u64,
                metadata: &signing::body_digest(&body),
                extra: &[],
            },
        )?;
        headers.set("Content-Type", "application/json")?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(
                worker::js_sys::Uint8Array::from(body.as_slice()).into(),
            ));
        let request = Request::new_with_init(&format!("{}{path}", config.origin_url), &init)?;
        let status = match origin_call::send(request, ORIGIN_TIMEOUT).await {
            Ok(Some(response)) => response.status_code(),
            Ok(None) => 0,
            Err(e) => {
                worker::console_warn!("hand-off not delivered: {e}");
                0
            }
        };
        if (200..300).contains(&status) {
            Ok(())
        } else {
            worker::console_warn!("origin refused the hand-off: status {status}");
            Err(EdgeError::OriginUnavailable)
        }
    }

    fn save_and_broadcast(
        self: &Rc<Self>,
        record: Record,
        effects: Vec<Effect>,
    ) -> Result<(), EdgeError> {
        self.store.save(&record)?;
        self.cache(record);
        for effect in effects {
            if let Effect::Broadcast { seq, event } = effect {
                self.live
                    .broadcast(&self.state, &self.store, seq, event, true)?;
            }
        }
        Ok(())
    }
}
