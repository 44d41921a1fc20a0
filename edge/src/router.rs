//! The stateless Worker in front of the session objects.
//!
//! It answers what needs no session (preflight, health), refuses malformed ids and unsigned
//! origin callbacks before any object wakes up, creates a fresh object for each tus creation
//! (its unique id is the session id, so the upload URL is an unguessable capability), and
//! otherwise hands the request, body still streaming, to the session's object.

use crate::{config::Config, config::SESSION_BINDING, error::EdgeError, http, object::now, routes::Route};
use dodolens_shared::{
    signing::{self, SignedParts, HEADER_SIGNATURE, HEADER_TIMESTAMP},
    tus,
};
use web_sys::{AbortController, StreamPipeOptions, TransformStream};
use worker::{
    js_sys::Uint8Array, wasm_bindgen_futures::JsFuture, Env, Method, Request, RequestInit, Response, Stub,
};

/// Origin events are small JSON documents (an inventory at most).
const MAX_EVENT_BYTES: u64 = 1 << 20;

pub async fn handle(mut req: Request, env: &Env) -> Result<Response, EdgeError> {
    let config = Config::from_env(env)?;
    let method = req.method();
    let path = req.path();
    let route = Route::parse(&method, &path).ok_or(EdgeError::NotFound)?;
    match route {
        Route::Options => Ok(http::empty(204, &tus::options_headers(config.max_upload_bytes))),
        Route::Health => Ok(http::json(200, &serde_json::json!({ "ok": true, "service": "dodolens-edge" }))?),
        Route::Create => {
            let namespace = env.durable_object(SESSION_BINDING)?;
            let stub = namespace.unique_id()?.get_stub()?;
            hand_over(&stub, req).await
        }
        Route::Introspect(_) if !config.dev_introspection => Err(EdgeError::NotFound),
        Route::OriginEvents(id) => {
            let body = verified_event(&mut req, &config, &path).await?;
            let mut init = RequestInit::new();
            init.with_method(Method::Post).with_body(Some(Uint8Array::from(body.as_slice()).into()));
            let inner = Request::new_with_init(req.url()?.as_str(), &init)?;
            Ok(stub(env, id)?.fetch_with_request(inner).await?)
        }
        Route::Upload(id) => hand_over(&stub(env, id)?, req).await,
        Route::Snapshot(id) | Route::Socket(id) | Route::Retry(id) | Route::Introspect(id) => {
            Ok(stub(env, id)?.fetch_with_request(req).await?)
        }
    }
}

/// Passes a request with a body to its object through a pipe this Worker controls. The object
/// may answer before reading the whole body (a refused PATCH); the rest of the client's body is
/// then cancelled here, before the answer goes out, instead of being read by the runtime after
/// the response was sent (which fails the Worker).
async fn hand_over(stub: &Stub, req: Request) -> Result<Response, EdgeError> {
    let Some(body) = req.inner().body() else { return Ok(stub.fetch_with_request(req).await?) };
    let channel = TransformStream::new()?;
    let controller = AbortController::new()?;
    let options = StreamPipeOptions::new();
    options.set_signal(&controller.signal());
    let piped = JsFuture::from(body.pipe_to_with_options(&channel.writable(), &options));
    let mut init = RequestInit::new();
    init.with_method(req.method())
        .with_headers(req.headers().clone())
        .with_body(Some(channel.readable().into()));
    let inner = Request::new_with_init(req.url()?.as_str(), &init)?;
    let response = stub.fetch_with_request(inner).await;
    controller.abort();
    // Settles at once: completed, or aborted just above (an expected rejection).
    let _ = piped.await;
    Ok(response?)
}

/// The object for a session id; an id this namespace did not issue is unknown (404).
fn stub(env: &Env, id: &str) -> Result<Stub, EdgeError> {
    let namespace = env.durable_object(SESSION_BINDING)?;
    let object_id = namespace.id_from_string(id).map_err(|_| EdgeError::NotFound)?;
    Ok(object_id.get_stub()?)
}

/// Reads an origin event and checks its signature (metadata = SHA-256 of the body).
async fn verified_event(req: &mut Request, config: &Config, path: &str) -> Result<Vec<u8>, EdgeError> {
    let secret = config.secret()?;
    let declared = req.headers().get("Content-Length")?.and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_EVENT_BYTES) {
        return Err(EdgeError::BadRequest("event too large".into()));
    }
    let timestamp = signing::parse_timestamp(req.headers().get(HEADER_TIMESTAMP)?.as_deref())?;
    let signature = req.headers().get(HEADER_SIGNATURE)?.ok_or(signing::SignatureError::Missing)?;
    let body = req.bytes().await?;
    if body.len() as u64 > MAX_EVENT_BYTES {
        return Err(EdgeError::BadRequest("event too large".into()));
    }
    let digest = signing::body_digest(&body);
    let parts = SignedParts {
        method: "POST",
        path,
        timestamp,
        content_length: body.len() as u64,
        metadata: &digest,
    };
    signing::verify(secret, &parts, &signature, now() / 1000)?;
    Ok(body)
}
