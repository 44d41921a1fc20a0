//! The stateless Worker in front of the session objects.
//!
//! It answers what needs no session (preflight, health), refuses malformed ids and unsigned
//! origin callbacks before any object wakes up, creates a fresh object for each tus creation
//! (its unique id is the session id, so the upload URL is an unguessable capability), and
//! otherwise hands the request, body still streaming, to the session's object.

use crate::{
    config::Config,
    config::SESSION_BINDING,
    error::EdgeError,
    http,
    object::now,
    routes::{method_of, Route},
};
use dodolens_shared::{
    signing::{self, SignedParts, HEADER_SIGNATURE, HEADER_TIMESTAMP},
    tus,
};
use worker::{js_sys::Uint8Array, Env, Method, Request, RequestInit, Response, Stub};

/// Origin events are small JSON documents (an inventory at most).
const MAX_EVENT_BYTES: u64 = 1 << 20;

pub async fn handle(mut req: Request, env: &Env) -> Result<Response, EdgeError> {
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
            let namespace = env.durable_object(SESSION_BINDING)?;
            let stub = namespace.unique_id()?.get_stub()?;
            Ok(stub.fetch_with_request(req).await?)
        }
        Route::Introspect(_) if !config.dev_introspection => Err(EdgeError::NotFound),
        Route::OriginEvents(id) => {
            let body = verified_event(&mut req, &config, &path).await?;
            let mut init = RequestInit::new();
            init.with_method(Method::Post)
                .with_body(Some(Uint8Array::from(body.as_slice()).into()));
            let inner = Request::new_with_init(req.url()?.as_str(), &init)?;
            Ok(stub(env, id)?.fetch_with_request(inner).await?)
        }
        Route::Upload(id)
        | Route::Snapshot(id)
        | Route::Socket(id)
        | Route::Retry(id)
        | Route::Introspect(id) => Ok(stub(env, id)?.fetch_with_request(req).await?),
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

/// Reads an origin event and checks its signature (metadata = SHA-256 of the body).
async fn verified_event(
    req: &mut Request,
    config: &Config,
    path: &str,
) -> Result<Vec<u8>, EdgeError> {
    let secret = config.secret()?;
    let declared = req
        .headers()
        .get("Content-Length")?
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_EVENT_BYTES) {
        return Err(EdgeError::BadRequest("event too large".into()));
    }
    let timestamp = signing::parse_timestamp(req.headers().get(HEADER_TIMESTAMP)?.as_deref())?;
    let signature = req
        .headers()
        .get(HEADER_SIGNATURE)?
        .ok_or(signing::SignatureError::Missing)?;
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
