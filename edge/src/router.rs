//! The stateless Worker in front of the session objects.
//!
//! It answers what needs no session (preflight, health) and refuses, before any object wakes up:
//! malformed handles and ids (404), creations with bad headers, over the per-client rate limit
//! or without a valid challenge (400/413/415/429/403), and unsigned or oversized origin
//! callbacks (401/411/413). A valid creation gets a fresh object; everything else goes, body
//! still streaming, to the session's object, which checks the capability token.

use crate::{
    admission, body,
    config::Config,
    config::SESSION_BINDING,
    error::EdgeError,
    http,
    object::now,
    routes::{method_of, Route},
    upload,
};
use dodolens_shared::{
    signing::{self, Purpose, SignedParts, HEADER_SIGNATURE, HEADER_TIMESTAMP},
    tus,
};
use worker::{js_sys::Uint8Array, Env, Method, Request, RequestInit, Response, Stub};

/// Origin events are small JSON documents (an inventory at most).
const MAX_EVENT_BYTES: u64 = 1 << 20;

pub async fn handle(req: Request, env: &Env) -> Result<Response, EdgeError> {
    let config = Config::cached(env)?;
    let method = method_of(&req);
    let path = req.path();
    let route = Route::parse(&method, &path).ok_or(EdgeError::NotFound)?;
    match route {
        Route::Options => Ok(http::empty(
            204,
            &tus::options_headers(config.max_upload_bytes),
        )),
        Route::Health => Ok(http::json(
            200,
            &serde_json::json!({ "ok": true, "service": "dodolens-edge" }),
        )?),
        Route::Create => {
            upload::creation_headers(&req, config.max_upload_bytes)?;
            admission::admit(&req, env, &config).await?;
            let namespace = env.durable_object(SESSION_BINDING)?;
            let stub = namespace.unique_id()?.get_stub()?;
            Ok(stub.fetch_with_request(req).await?)
        }
        Route::Introspect(_) if !config.dev_introspection => Err(EdgeError::NotFound),
        Route::OriginEvents(id) => {
            let body = verified_event(&req, &config, &path).await?;
            let mut init = RequestInit::new();
            init.with_method(Method::Post)
                .with_body(Some(Uint8Array::from(body.as_slice()).into()));
            let inner = Request::new_with_init(req.url()?.as_str(), &init)?;
            Ok(stub(env, id)?.fetch_with_request(inner).await?)
        }
        Route::Upload(h)
        | Route::Snapshot(h)
        | Route::Socket(h)
        | Route::Retry(h)
        | Route::Confirm(h)
        | Route::Introspect(h) => Ok(stub(env, h.id)?.fetch_with_request(req).await?),
    }
}

/// The object for a session id; an id this namespace did not issue is unknown (404).
fn stub(env: &Env, id: &str) -> Result<Stub, EdgeError> {
    let namespace = env.durable_object(SESSION_BINDING)?;
    let object_id = namespace
        .id_from_string(id)
        .map_err(|_| EdgeError::NotFound)?;
    Ok(object_id.get_stub()?)
}

/// Reads an origin event and checks its signature (metadata = SHA-256 of the body). The
/// timestamp is checked and the length declared before a byte of body is read, and the body is
/// read through a cap, so an unsigned or stale sender costs nothing but its headers.
async fn verified_event(req: &Request, config: &Config, path: &str) -> Result<Vec<u8>, EdgeError> {
    let keys = config.keys()?;
    let timestamp = signing::parse_timestamp(req.headers().get(HEADER_TIMESTAMP)?.as_deref())?;
    signing::check_fresh(timestamp, now() / 1000)?;
    let signature = req
        .headers()
        .get(HEADER_SIGNATURE)?
        .ok_or(signing::SignatureError::Missing)?;
    let declared = req
        .headers()
        .get("Content-Length")?
        .map(|v| v.trim().parse::<u64>())
        .transpose()
        .map_err(|_| EdgeError::BadRequest("Content-Length is not a number".into()))?
        .ok_or(EdgeError::LengthRequired)?;
    if declared > MAX_EVENT_BYTES {
        return Err(EdgeError::TooLarge("over the event size limit"));
    }
    let body = body::read_capped(req.inner().body(), declared).await?;
    let digest = signing::body_digest(&body);
    let parts = SignedParts::new(
        Purpose::OriginEvent,
        "POST",
        path,
        timestamp,
        body.len() as u64,
        &digest,
    );
    keys.verify(&parts, &signature, now() / 1000)?;
    Ok(body)
}
