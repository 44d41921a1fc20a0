//! Live updates: the hibernating WebSocket, the JSON snapshot and its long-poll variant.
//!
//! Every (re)connect gets a full snapshot first, then the events that follow it, each with its
//! `seq`, so a client that reconnects (or polls with `?after=SEQ`) never misses the result. The
//! sockets are accepted with the hibernation API: an idle session costs nothing while a browser
//! waits, and a bare `ping` is answered `pong` by the runtime without waking the object. Upload
//! progress is throttled: a fast upload would otherwise send one event per chunk.
//!
//! Both are bounded: a session keeps at most `MAX_SOCKETS_PER_SESSION` sockets (a further one is
//! accepted only to be closed with 1008 and the reason), and a long-poll that times out takes
//! its waiter with it instead of leaving it listed until the next event.

use crate::{
    error::EdgeError,
    http,
    object::{now, Object},
    store::Store,
};
use dodolens_shared::{
    lifecycle::{self, Input},
    protocol::{ClientMessage, Millis, ServerMessage, SessionEvent},
};
use futures_channel::oneshot;
use futures_util::future::select;
use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    time::Duration,
};
use worker::{Delay, Request, Response, State, WebSocketIncomingMessage, WebSocketPair};

/// WebSocket close code for a refused socket: policy violation (RFC 6455 §7.4.1).
const CLOSE_POLICY: u16 = 1008;

#[derive(Default)]
pub struct Live {
    /// Long-polls waiting for the next event.
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
    /// Offset and time of the last upload progress sent.
    last_upload: Cell<Option<(u64, Millis)>>,
}

impl Live {
    /// Logs the event for long-polls and sends it to every socket, unless it is upload progress
    /// arriving too soon after the previous one. `keep` is false once the session is purged.
    pub fn broadcast(
        &self,
        state: &State,
        store: &Store,
        seq: u64,
        event: SessionEvent,
        keep: bool,
    ) -> Result<(), EdgeError> {
        if let SessionEvent::Upload { offset, length } = event {
            if !self.upload_due(offset, length, now()) {
                return Ok(());
            }
        }
        let text = serde_json::to_string(&ServerMessage::Event { seq, event })?;
        if keep {
            store.append_event(seq, &text)?;
        }
        for ws in state.get_websockets() {
            let _ = ws.send_with_str(&text);
        }
        for waiter in self.waiters.borrow_mut().drain(..) {
            let _ = waiter.send(());
        }
        Ok(())
    }

    fn upload_due(&self, offset: u64, length: Option<u64>, at: Millis) -> bool {
        let (last_offset, last_at) = self.last_upload.get().unwrap_or((0, 0));
        let due = lifecycle::should_broadcast_progress(last_offset, last_at, offset, at, length);
        if due {
            self.last_upload.set(Some((offset, at)));
        }
        due
    }

    pub fn close_all(&self, state: &State, reason: &str) {
        for ws in state.get_websockets() {
            let _ = ws.close(Some(1000), Some(reason));
        }
        for waiter in self.waiters.borrow_mut().drain(..) {
            let _ = waiter.send(());
        }
    }

    fn wait(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiters.borrow_mut().push(tx);
        rx
    }

    /// Forgets the waiters whose long-poll ended (their receiver is gone).
    fn prune(&self) {
        self.waiters.borrow_mut().retain(|w| !w.is_canceled());
    }

    /// Long-polls waiting now.
    pub fn waiting(&self) -> usize {
        self.waiters.borrow().len()
    }
}

impl Object {
    /// `GET /sessions/{id}`: the snapshot; with `?after=SEQ`, waits until an event past `SEQ`
    /// exists (or the long-poll times out) and returns the snapshot with the events after `SEQ`.
    pub async fn snapshot(&self, req: &Request) -> Result<Response, EdgeError> {
        let url = req.url()?;
        let after = match url.query_pairs().find(|(k, _)| k == "after") {
            None => return Ok(http::json(200, &self.active()?.session.snapshot())?),
            Some((_, v)) => v
                .parse::<u64>()
                .map_err(|_| EdgeError::BadRequest("after must be a number".into()))?,
        };
        if self.active()?.session.seq <= after {
            let waited = self.live.wait();
            let timeout = Delay::from(Duration::from_millis(self.config()?.long_poll_ms));
            futures_util::pin_mut!(timeout);
            // Whichever ends first, the receiver is dropped here and its waiter pruned.
            let _ = select(waited, timeout).await;
            self.live.prune();
        }
        let record = self.active()?;
        let events = self
            .store
            .events_after(after)?
            .iter()
            .map(|e| serde_json::from_str::<serde_json::Value>(e))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(http::json(
            200,
            &serde_json::json!({ "snapshot": record.session.snapshot(), "events": events }),
        )?)
    }

    /// `GET /sessions/{id}/ws`: accepts a hibernating socket and sends the snapshot first. Past
    /// the per-session cap the socket is closed at once with the reason: a browser cannot read
    /// the status of a refused upgrade, but it can read a close frame.
    pub fn connect(&self, req: &Request) -> Result<Response, EdgeError> {
        let upgrade = req.headers().get("Upgrade")?.unwrap_or_default();
        if !upgrade.eq_ignore_ascii_case("websocket") {
            return Err(EdgeError::UpgradeRequired);
        }
        let record = self.active()?;
        let cap = self.config()?.max_sockets_per_session;
        let pair = WebSocketPair::new()?;
        if self.state.get_websockets().len() >= cap {
            pair.server.accept()?;
            pair.server.close(
                Some(CLOSE_POLICY),
                Some(format!(
                    "too many live connections to this session (max {cap})"
                )),
            )?;
            return Ok(Response::from_websocket(pair.client)?);
        }
        self.state.accept_web_socket(&pair.server);
        let first = ServerMessage::Snapshot {
            snapshot: Box::new(record.session.snapshot()),
        };
        pair.server.send_with_str(serde_json::to_string(&first)?)?;
        Ok(Response::from_websocket(pair.client)?)
    }

    /// A client message: only `{"type":"retry"}` is understood; anything else is ignored.
    pub async fn on_message(
        self: &Rc<Self>,
        ws: &worker::WebSocket,
        message: WebSocketIncomingMessage,
    ) {
        let WebSocketIncomingMessage::String(text) = message else {
            return;
        };
        let Ok(ClientMessage::Retry) = serde_json::from_str(&text) else {
            return;
        };
        if let Err(e) = self.apply(Input::Retry).await {
            // The client learns the state from the snapshot it is sent back.
            worker::console_warn!("retry refused: {e}");
            if let Ok(Some(record)) = self.current() {
                let snapshot = ServerMessage::Snapshot {
                    snapshot: Box::new(record.session.snapshot()),
                };
                if let Ok(text) = serde_json::to_string(&snapshot) {
                    let _ = ws.send_with_str(text);
                }
            }
        }
    }
}
