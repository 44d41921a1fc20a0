//! Response builders. Every API response carries the CORS headers (so a browser can read the tus
//! headers), `Tus-Resumable` (tus clients expect it on every answer, errors included) and
//! `Cache-Control: no-store` (session state must never be cached by a proxy).

use dodolens_shared::tus;
use serde::Serialize;
use worker::{Headers, Response};

pub fn headers(extra: &[(&str, String)]) -> Headers {
    let h = Headers::new();
    let common = tus::cors_headers().into_iter().chain([
        ("Tus-Resumable", tus::TUS_VERSION.to_string()),
        ("Cache-Control", "no-store".to_string()),
    ]);
    for (name, value) in common {
        let _ = h.set(name, &value);
    }
    for (name, value) in extra {
        let _ = h.set(name, value);
    }
    h
}

pub fn empty(status: u16, extra: &[(&str, String)]) -> Response {
    Response::builder()
        .with_status(status)
        .with_headers(headers(extra))
        .empty()
}

pub fn text(status: u16, body: &str, extra: &[(&str, String)]) -> Response {
    let h = headers(&[("Content-Type", "text/plain; charset=utf-8".to_string())]);
    for (name, value) in extra {
        let _ = h.set(name, value);
    }
    Response::builder()
        .with_status(status)
        .with_headers(h)
        .fixed(body.as_bytes().to_vec())
}

pub fn json<T: Serialize>(status: u16, value: &T) -> Result<Response, serde_json::Error> {
    let body = serde_json::to_vec(value)?;
    let h = headers(&[("Content-Type", "application/json".to_string())]);
    Ok(Response::builder()
        .with_status(status)
        .with_headers(h)
        .fixed(body))
}
