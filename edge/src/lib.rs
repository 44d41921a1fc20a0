//! DodoLens edge: a Cloudflare Worker (Rust → wasm) with one SQLite-backed Durable Object per
//! upload session.
//!
//! Browsers upload with any standard tus client and follow progress over a hibernating
//! WebSocket; the finished upload is streamed, signed, to the origin, whose signed events come
//! back here and are broadcast. Every rule (tus, session lifecycle, signatures) lives in
//! `dodolens-shared`; this crate only does the I/O: storage, sockets, fetch and the alarm.

mod admission;
mod body;
mod cancel;
mod config;
mod error;
mod forward;
mod handoff;
mod http;
mod live;
mod object;
mod origin_call;
mod router;
mod routes;
mod store;
mod stream;
mod upload;

pub use object::Session;

use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    Ok(router::handle(req, &env)
        .await
        .unwrap_or_else(error::EdgeError::into_response))
}
