//! Request bodies the edge does not store: small ones read whole under a cap, refused ones
//! cancelled (or, under `wrangler dev`, read through and dropped).
//!
//! Nothing here buffers more than its cap: an origin event is refused at the cap whatever its
//! `Content-Length` claimed, and a refused upload body is never read in production.

use crate::error::EdgeError;
use worker::{
    js_sys::{self, Uint8Array},
    wasm_bindgen::{JsCast, JsValue},
    wasm_bindgen_futures::JsFuture,
    web_sys::{ReadableStream, ReadableStreamDefaultReader},
};

/// One read: the next piece of the stream, or `None` at its end.
async fn next(reader: &ReadableStreamDefaultReader) -> Result<Option<Uint8Array>, JsValue> {
    let step = JsFuture::from(reader.read()).await?;
    let done = js_sys::Reflect::get(&step, &"done".into())?
        .as_bool()
        .unwrap_or(true);
    if done {
        return Ok(None);
    }
    Ok(Some(
        js_sys::Reflect::get(&step, &"value".into())?.unchecked_into(),
    ))
}

/// Reads `body` whole, refusing it (413) as soon as it passes `cap` bytes.
pub async fn read_capped(body: Option<ReadableStream>, cap: u64) -> Result<Vec<u8>, EdgeError> {
    let Some(body) = body else {
        return Ok(Vec::new());
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut out = Vec::new();
    while let Some(piece) = next(&reader).await? {
        if out.len() as u64 + u64::from(piece.length()) > cap {
            let _ = reader.cancel();
            return Err(EdgeError::TooLarge("over the event size limit"));
        }
        out.extend_from_slice(&piece.to_vec());
    }
    Ok(out)
}

/// Reads `body` to its end and drops it, or cancels it after `limit` bytes (dev only).
pub async fn drain(body: ReadableStream, limit: u64) -> Result<(), JsValue> {
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut seen = 0u64;
    while let Some(piece) = next(&reader).await? {
        seen += u64::from(piece.length());
        if seen > limit {
            JsFuture::from(reader.cancel()).await?;
            return Ok(());
        }
    }
    Ok(())
}

/// Tells the sender we will read no more of `body`.
pub async fn cancel(body: ReadableStream) -> Result<(), JsValue> {
    JsFuture::from(body.cancel()).await.map(drop)
}
