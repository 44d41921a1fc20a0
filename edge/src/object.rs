//! The session Durable Object: one per upload, addressed by its unique id.
//!
//! It only does I/O. Every request, origin event and alarm becomes a
//! [`lifecycle::Input`](dodolens_shared::lifecycle::Input) applied by the shared state machine;
//! the object persists the resulting session, then performs the returned effects (broadcast,
//! forward, send a range, cancel at the origin, delete chunks, purge, forget) and points its
//! single alarm at the session's one deadline. The handlers live beside this file: `upload`
//! (tus), `live` (WebSocket, snapshot, long-poll), `forward` (streaming to the origin), `stream`
//! (ranges of a recording while it is received).
//!
//! Every browser route presents the session's capability token (in its handle); the object
//! compares it in constant time with the digest it stored at creation, and answers a wrong one
//! exactly like an unknown session (404).

use crate::{
    body,
    config::Config,
    error::EdgeError,
    forward::Order,
    http,
    routes::{method_of, Route},
    store::{Record, Store},
    upload::Writers,
};
use dodolens_shared::{
    capability,
    lifecycle::{Deadline, Effect, Input},
    protocol::{Millis, OriginReport, Status},
};
use std::{
    cell::{Cell, RefCell},
    rc::Rc,
};
use worker::{
    durable_object, js_sys, worker_sys::WebSocketRequestResponsePair, Date, DurableObject, Env,
    Method, Request, Response, Result, ScheduledTime, State, WebSocket, WebSocketIncomingMessage,
};

pub fn now() -> Millis {
    Date::now().as_millis()
}

#[durable_object]
pub struct Session {
    object: Rc<Object>,
}

/// The object's state; shared (`Rc`) with the forward task that outlives a request.
pub struct Object {
    pub state: State,
    pub store: Store,
    config: std::result::Result<Config, &'static str>,
    /// The persisted record, loaded on first use (`None` inside: no session).
    record: RefCell<Option<Option<Record>>>,
    /// The earliest alarm set since the object started (see [`Object::arm`]).
    alarm_at: Cell<Option<Millis>>,
    /// The PATCH streaming rows, if any: a newer one takes over from it (never interleaved).
    pub writers: Writers,
    /// No chunk row lies past the committed offset (known since this object started), so the
    /// next PATCH need not truncate first.
    pub tail_clean: Cell<bool>,
    pub live: crate::live::Live,
}

impl DurableObject for Session {
    fn new(state: State, env: Env) -> Self {
        if let Ok(pair) = WebSocketRequestResponsePair::new("ping", "pong") {
            state.set_websocket_auto_response(&pair);
        }
        let config = Config::from_env(&env).map_err(|e| match e {
            EdgeError::Config(name) => name,
            _ => "configuration",
        });
        let store = Store::new(state.storage().sql());
        Session {
            object: Rc::new(Object {
                state,
                store,
                config,
                record: RefCell::new(None),
                alarm_at: Cell::new(None),
                writers: Default::default(),
                tail_clean: Cell::new(false),
                live: Default::default(),
            }),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        Ok(self
            .object
            .route(req)
            .await
            .unwrap_or_else(EdgeError::into_response))
    }

    async fn alarm(&self) -> Result<Response> {
        self.object
            .on_alarm()
            .await
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        Response::empty()
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        self.object.on_message(&ws, message).await;
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        // Completes the closing handshake; the runtime forgets the socket afterwards.
        let _ = ws.close(Some(1000), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, _ws: WebSocket, _error: worker::Error) -> Result<()> {
        Ok(())
    }
}

impl Object {
    /// Dispatches, then releases what the handler left of the request body (a refused PATCH):
    /// cancelled, so a refusal costs no upload. Under `wrangler dev`, which fails the Worker when
    /// the body is left behind, `DEV_DRAIN_REFUSED_BODIES=1` reads it through instead (up to the
    /// request size limit).
    async fn route(self: &Rc<Self>, req: Request) -> std::result::Result<Response, EdgeError> {
        let body = req.inner().body();
        let response = self.dispatch(req).await;
        if let Some(body) = body.filter(|b| !b.locked()) {
            let released = match self.config() {
                Ok(c) if c.dev_drain_refused_bodies => body::drain(body, c.max_request_bytes).await,
                _ => body::cancel(body).await,
            };
            if let Err(e) = released {
                worker::console_warn!("request body not released: {e:?}");
            }
        }
        response
    }

    async fn dispatch(self: &Rc<Self>, req: Request) -> std::result::Result<Response, EdgeError> {
        let method = method_of(&req);
        let path = req.path();
        let route = Route::parse(&method, &path).ok_or(EdgeError::NotFound)?;
        // The dev-only introspection of an object holding no session (e.g. forgotten) shows its
        // empty storage to anyone: there is nothing to protect, and residue checks need it.
        let empty_introspection =
            matches!(route, Route::Introspect(_)) && self.current()?.is_none();
        if let Some(handle) = route.handle().filter(|_| !empty_introspection) {
            self.authorise(handle.token)?;
        }
        match route {
            Route::Create => self.create(req).await,
            Route::Upload(_) => match method {
                Method::Head => self.head(&req),
                Method::Patch => self.patch(req).await,
                _ => self.terminate(&req).await,
            },
            Route::Snapshot(_) => self.snapshot(&req).await,
            Route::Socket(_) => self.connect(&req),
            Route::Retry(_) => self.retry().await,
            Route::Confirm(_) if method == Method::Delete => self.unconfirm(),
            Route::Confirm(_) => self.confirm(req).await,
            Route::OriginEvents(_) => self.origin_event(req).await,
            // The router checks the flag too; the object does not trust that it did.
            Route::Introspect(_) if self.config()?.dev_introspection => {
                Ok(http::json(200, &self.introspect()?)?)
            }
            Route::Introspect(_) => Err(EdgeError::NotFound),
            Route::Options | Route::Health => Err(EdgeError::NotFound),
        }
    }

    pub fn config(&self) -> std::result::Result<&Config, EdgeError> {
        self.config.as_ref().map_err(|name| EdgeError::Config(name))
    }

    /// The session record, if one exists (purged tombstones included).
    pub fn current(&self) -> std::result::Result<Option<Record>, EdgeError> {
        if let Some(cached) = self.record.borrow().as_ref() {
            return Ok(cached.clone());
        }
        let loaded = self.store.load()?;
        *self.record.borrow_mut() = Some(loaded.clone());
        Ok(loaded)
    }

    /// Checks the capability `token` against the stored digest: a wrong token, like an unknown
    /// session, is 404 (a purged session keeps its digest, so its owner still learns 410).
    fn authorise(&self, token: &str) -> std::result::Result<(), EdgeError> {
        match self.current()? {
            Some(r) if capability::token_matches(token, &r.token_digest) => Ok(()),
            _ => Err(EdgeError::NotFound),
        }
    }

    /// Replaces the cached record (after the caller saved it).
    pub fn cache(&self, record: Record) {
        *self.record.borrow_mut() = Some(Some(record));
    }

    /// The record of a session that still answers: 404 unknown, 410 purged.
    pub fn active(&self) -> std::result::Result<Record, EdgeError> {
        match self.current()? {
            None => Err(EdgeError::NotFound),
            Some(r) if r.session.status == Status::Purged => Err(EdgeError::Gone),
            Some(r) => Ok(r),
        }
    }

    /// Stores a new session (tus creation) and arms its first deadline.
    pub async fn start(&self, record: Record) -> std::result::Result<(), EdgeError> {
        self.store.create(&record)?;
        let deadline = record.session.deadline;
        *self.record.borrow_mut() = Some(Some(record));
        self.arm(deadline).await
    }

    /// Applies `input` through the shared state machine, persists, then performs the effects.
    pub async fn apply(self: &Rc<Self>, input: Input) -> std::result::Result<Record, EdgeError> {
        self.apply_with(input, |_| {}).await
    }

    /// [`Object::apply`], with `also` changing the edge's own part of the record in the same
    /// commit once the state machine accepted `input` (e.g. the video digest with the offset).
    pub async fn apply_with(
        self: &Rc<Self>,
        input: Input,
        also: impl FnOnce(&mut Record),
    ) -> std::result::Result<Record, EdgeError> {
        Ok(self.decide_with(input, also).await?.0)
    }

    /// [`Object::apply`], also returning what to send when the state machine answers
    /// [`Input::ForwardStarted`] with [`Effect::Send`].
    pub async fn decide(
        self: &Rc<Self>,
        input: Input,
    ) -> std::result::Result<(Record, Option<Order>), EdgeError> {
        self.decide_with(input, |_| {}).await
    }

    /// A request whose input found the session past its lifetime (so it was purged instead) is
    /// answered 410.
    async fn decide_with(
        self: &Rc<Self>,
        input: Input,
        also: impl FnOnce(&mut Record),
    ) -> std::result::Result<(Record, Option<Order>), EdgeError> {
        let limits = self.config()?.limits.clone();
        let mut record = self.current()?.ok_or(EdgeError::NotFound)?;
        let request = !matches!(
            input,
            Input::Alarm
                | Input::Terminate
                | Input::ForwardStarted
                | Input::Forwarded { .. }
                | Input::RangeSent { .. }
        );
        let effects = record.session.apply(input, now(), &limits)?;
        also(&mut record);
        let send = self.commit(record.clone(), effects).await?;
        if request && record.session.status == Status::Purged {
            return Err(EdgeError::Gone);
        }
        Ok((record, send))
    }

    /// Persists `record`, then performs `effects`; returns what an [`Effect::Send`] asks.
    async fn commit(
        self: &Rc<Self>,
        mut record: Record,
        effects: Vec<Effect>,
    ) -> std::result::Result<Option<Order>, EdgeError> {
        let (mut delete_chunks, mut purge, mut forget) = (false, false, false);
        let mut broadcasts = Vec::new();
        let (mut forward, mut send, mut cancel, mut range) = (false, None, false, None);
        for effect in effects {
            match effect {
                Effect::Broadcast { seq, event } => broadcasts.push((seq, event)),
                Effect::Forward => forward = true,
                Effect::Send {
                    attempt,
                    probe,
                    resume_from,
                } => {
                    send = Some(Order {
                        attempt,
                        probe,
                        resume_from,
                    })
                }
                Effect::SendRange { attempt, from } => range = Some((attempt, from)),
                Effect::DeleteChunks => delete_chunks = true,
                Effect::Purge => purge = true,
                Effect::Forget => forget = true,
                Effect::CancelOrigin => cancel = true,
            }
        }
        if cancel {
            self.start_cancel(record.session.id.clone());
        }
        if forget {
            let storage = self.state.storage();
            storage.delete_alarm().await?;
            storage.delete_all().await?;
            self.alarm_at.set(None);
            *self.record.borrow_mut() = Some(None);
            self.live.close_all(&self.state, "forgotten");
            return Ok(None);
        }
        if delete_chunks || purge {
            self.store.delete_rows()?;
        }
        if purge {
            // The state machine already stripped the session down to a tombstone; the
            // confirmation (contact, confirmed inventory) goes with it.
            self.store.delete_events()?;
            record.review.clear();
        }
        self.store.save(&record)?;
        let deadline = record.session.deadline;
        *self.record.borrow_mut() = Some(Some(record));
        for (seq, event) in broadcasts {
            self.live
                .broadcast(&self.state, &self.store, seq, event, !purge)?;
        }
        if purge {
            self.live.close_all(&self.state, "purged");
        }
        self.arm(deadline).await?;
        if forward {
            self.start_forward();
        }
        if let Some((attempt, from)) = range {
            self.start_range(attempt, from);
        }
        Ok(send)
    }

    /// Makes sure the single alarm fires no later than the session's deadline. The alarm is
    /// only ever moved earlier: a sliding deadline (every PATCH, every origin event) then costs
    /// no storage write, and an alarm that fires before the deadline does nothing but re-arm.
    async fn arm(&self, deadline: Option<Deadline>) -> std::result::Result<(), EdgeError> {
        let Some(at) = deadline.map(|d| d.at) else {
            return Ok(());
        };
        if self.alarm_at.get().is_some_and(|set| set <= at) {
            return Ok(());
        }
        let date = js_sys::Date::new(&(at as f64).into());
        self.state
            .storage()
            .set_alarm(ScheduledTime::new(date))
            .await?;
        self.alarm_at.set(Some(at));
        Ok(())
    }

    /// Dev-only: what the session holds in storage and in memory, for residue checks.
    fn introspect(&self) -> std::result::Result<serde_json::Value, EdgeError> {
        let mut counts = serde_json::to_value(self.store.counts()?)?;
        counts["sockets"] = self.state.get_websockets().len().into();
        counts["long_polls"] = self.live.waiting().into();
        // Whether a result or a confirmation (contact, confirmed inventory) is still held.
        let record = self.current()?;
        counts["has_result"] = record
            .as_ref()
            .is_some_and(|r| r.session.result.is_some())
            .into();
        counts["has_confirmation"] = record
            .as_ref()
            .is_some_and(|r| r.review.confirmation.is_some())
            .into();
        // A recording's stream to the origin (attempt, bytes it holds, range in flight), if any.
        counts["stream"] = serde_json::to_value(record.and_then(|r| r.session.stream))?;
        Ok(counts)
    }

    async fn on_alarm(self: &Rc<Self>) -> std::result::Result<(), EdgeError> {
        // The runtime cleared the alarm by firing it.
        self.alarm_at.set(None);
        let Some(record) = self.current()? else {
            return Ok(());
        };
        match self.apply(Input::Alarm).await {
            Err(EdgeError::Lifecycle(e)) => {
                worker::console_warn!("alarm ignored: {e}");
                self.arm(record.session.deadline).await
            }
            other => other.map(drop),
        }
    }

    async fn origin_event(
        self: &Rc<Self>,
        mut req: Request,
    ) -> std::result::Result<Response, EdgeError> {
        // The Worker verified the signature before forwarding the body here.
        let OriginReport { attempt, event } = serde_json::from_slice(&req.bytes().await?)
            .map_err(|e| EdgeError::BadRequest(e.to_string()))?;
        // `apply` answers an unknown session 404 and a purged one 410 (the state machine refuses
        // every input but the tombstone's alarm) and an event of another attempt 409; a repeated
        // final event is a no-op, hence 204.
        self.apply(Input::Origin { attempt, event }).await?;
        Ok(http::empty(204, &[]))
    }

    async fn retry(self: &Rc<Self>) -> std::result::Result<Response, EdgeError> {
        self.active()?;
        let record = self.apply(Input::Retry).await?;
        Ok(http::json(202, &record.session.snapshot())?)
    }
}
