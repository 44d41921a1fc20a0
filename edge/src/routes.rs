//! The edge's routes, parsed once and shared by the Worker (which picks the Durable Object) and
//! the object (which picks the handler), so the two can never disagree about a path.
//!
//! Browser routes name a session by its handle `{id}.{token}` (`shared::capability`); the origin's
//! callback, which is signed instead, by the bare id. A path whose handle or id is malformed
//! matches nothing: it is answered 404 before any Durable Object, and so any storage, is touched.

use dodolens_shared::{capability::Handle, tus::is_valid_session_id};
use worker::{Method, Request};

pub const UPLOADS: &str = "/api/dodo-lens/uploads";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// CORS preflight or tus capability discovery (OPTIONS on any API path).
    Options,
    Health,
    /// tus creation (POST), on a fresh object.
    Create,
    /// tus HEAD, PATCH or DELETE on an upload.
    Upload(Handle<'a>),
    /// The JSON snapshot, or a long-poll with `?after=SEQ`.
    Snapshot(Handle<'a>),
    /// The live WebSocket.
    Socket(Handle<'a>),
    Retry(Handle<'a>),
    /// The customer's confirmation (POST) or its withdrawal (DELETE).
    Confirm(Handle<'a>),
    /// Signed events from the origin, by session id.
    OriginEvents(&'a str),
    /// Dev-only chunk-row counts, enabled by `DEV_INTROSPECTION=1`.
    Introspect(Handle<'a>),
}

impl<'a> Route<'a> {
    /// The capability a browser route presents; `None` for routes that need none.
    pub fn handle(&self) -> Option<Handle<'a>> {
        match *self {
            Route::Upload(h)
            | Route::Snapshot(h)
            | Route::Socket(h)
            | Route::Retry(h)
            | Route::Confirm(h)
            | Route::Introspect(h) => Some(h),
            Route::Options | Route::Health | Route::Create | Route::OriginEvents(_) => None,
        }
    }
}

/// The request's method, honouring `X-HTTP-Method-Override` on POST: tus clients behind proxies
/// that drop PATCH or DELETE send those as POST (tus-js-client's `overridePatchMethod`).
pub fn method_of(req: &Request) -> Method {
    let method = req.method();
    if method != Method::Post {
        return method;
    }
    let overridden = req.headers().get("X-HTTP-Method-Override").ok().flatten();
    match overridden.map(|m| m.trim().to_ascii_uppercase()).as_deref() {
        Some("PATCH") => Method::Patch,
        Some("DELETE") => Method::Delete,
        Some("HEAD") => Method::Head,
        _ => method,
    }
}

impl<'a> Route<'a> {
    pub fn parse(method: &Method, path: &'a str) -> Option<Route<'a>> {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        if *method == Method::Options {
            return matches!(parts.first(), Some(&"api" | &"internal")).then_some(Route::Options);
        }
        let id = |i: usize| parts.get(i).copied().filter(|id| is_valid_session_id(id));
        let handle = |i: usize| parts.get(i).copied().and_then(Handle::parse);
        let route = match (method, parts.as_slice()) {
            (Method::Get, ["api", "dodo-lens", "health"]) => Route::Health,
            (Method::Post, ["api", "dodo-lens", "uploads"]) => Route::Create,
            (Method::Head | Method::Patch | Method::Delete, ["api", "dodo-lens", "uploads", _]) => {
                Route::Upload(handle(3)?)
            }
            (Method::Get, ["api", "dodo-lens", "sessions", _]) => Route::Snapshot(handle(3)?),
            (Method::Get, ["api", "dodo-lens", "sessions", _, "ws"]) => Route::Socket(handle(3)?),
            (Method::Post, ["api", "dodo-lens", "sessions", _, "retry"]) => {
                Route::Retry(handle(3)?)
            }
            (Method::Post | Method::Delete, ["api", "dodo-lens", "sessions", _, "confirm"]) => {
                Route::Confirm(handle(3)?)
            }
            (Method::Post, ["internal", "sessions", _, "events"]) => Route::OriginEvents(id(2)?),
            (Method::Get, ["api", "dodo-lens", "dev", "sessions", _]) => {
                Route::Introspect(handle(4)?)
            }
            _ => return None,
        };
        Some(route)
    }
}
