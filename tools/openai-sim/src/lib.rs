//! `openai-sim`: an OpenAI-compatible stand-in for DodoLens tests and the offline demo. It is a
//! workspace crate of its own so that nothing of it is compiled into the origin or shipped in
//! its image; the origin's tests use it as a dev-dependency.
//!
//! It is strict where the real API is strict, so the origin cannot pass tests with requests the
//! real service would reject: structured output must be a `json_schema` in strict mode (every
//! object closed and fully required), `store` must be false, every image must be a JPEG data URI
//! that decodes and stays within size bounds, and uploaded audio must decode (checked with
//! ffmpeg). Answers come from a script that reads the schema's catalogue keys. Latency and
//! faults (429 with Retry-After once, 500, hang) are set through `POST /__sim/control`: one
//! latency for every call, or per call as the real API behaves (vision and directives fixed,
//! transcription proportional to the decoded audio), so benchmarks can tell model time from
//! DodoLens' own. `GET /__sim/stats` counts what happened, including requests the client gave
//! up on while the simulator was still answering (`aborted`: a cancelled job drops its model
//! calls), the frame times the last vision request captioned (`frame_times`, to check a timeline
//! is covered) and each latency served (`delays`: call, start, milliseconds). Completion
//! ids start with [`ID_PREFIX`], which the origin recognises, so results are labelled as
//! simulated.

use std::{
    net::SocketAddr,
    process::Stdio,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{
    extract::{DefaultBodyLimit, Multipart, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::{io::AsyncWriteExt, net::TcpListener, process::Command};

/// Prefix of every completion id; the origin's `analysis::SIMULATED_ID_PREFIX` (a test there
/// checks they agree).
pub const ID_PREFIX: &str = "dodolens-sim-";
const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;
const MAX_IMAGE_SIDE: usize = 2048;
const MIN_IMAGE_SIDE: usize = 16;
pub const DEFAULT_TRANSCRIPT: &str =
    "Alors ici le salon. Le frigo reste, il y a quinze cartons de livres dans le placard.";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    #[default]
    None,
    /// The next model request gets 429 with `Retry-After: 1`, then back to normal.
    RateLimitOnce,
    /// Every model request gets 500 until changed.
    ServerError,
    /// Every model request hangs until the client gives up.
    Timeout,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Control {
    #[serde(default)]
    pub fault: Fault,
    /// Every call's latency, unless a per-call one below is set.
    #[serde(default)]
    pub latency_ms: u64,
    /// A vision call's (a chat completion with images) latency, instead of `latency_ms`.
    #[serde(default)]
    pub vision_latency_ms: Option<u64>,
    /// A voice-directives call's latency, instead of `latency_ms`.
    #[serde(default)]
    pub directives_latency_ms: Option<u64>,
    /// A transcription's latency per 30 s of decoded audio (proportional, served once the
    /// audio has been decoded), instead of `latency_ms`.
    #[serde(default)]
    pub transcription_ms_per_30s: Option<u64>,
    /// Overrides the scripted transcript when set.
    #[serde(default)]
    pub transcript: Option<String>,
}

#[derive(Default)]
struct Counters {
    chat_completions: AtomicU64,
    transcriptions: AtomicU64,
    rate_limited: AtomicU64,
    server_errors: AtomicU64,
    timeouts: AtomicU64,
    rejected: AtomicU64,
    images: AtomicU64,
    max_image_side: AtomicU64,
    audio_bytes: AtomicU64,
    /// Decoded duration of every transcribed file, in milliseconds, summed.
    audio_ms: AtomicU64,
    aborted: AtomicU64,
}

/// The kind of a model call, as latencies are set and reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    Vision,
    Directives,
    Transcription,
}

/// One latency served: which call, when it started (Unix ms) and how long it was.
#[derive(Clone, Debug, Serialize)]
struct Delay {
    call: Call,
    start_unix_ms: u64,
    ms: u64,
}

/// The newest delays kept in the stats.
const MAX_DELAYS: usize = 10_000;

#[derive(Default)]
struct Sim {
    control: Mutex<Control>,
    counters: Counters,
    /// The frame times the last vision request captioned (`Image i (t = X s)`), in order.
    frame_times: Mutex<Vec<f64>>,
    delays: Mutex<std::collections::VecDeque<Delay>>,
}

type Shared = Arc<Sim>;

pub fn router() -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/audio/transcriptions", post(transcriptions))
        .route("/__sim/control", post(control))
        .route("/__sim/stats", get(stats))
        .layer(DefaultBodyLimit::max(128 * 1024 * 1024))
        .with_state(Arc::new(Sim::default()))
}

/// Binds `addr` (port 0 picks one) and serves in the background.
pub async fn start(addr: SocketAddr) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router()).await;
    });
    Ok((bound, task))
}

async fn control(State(sim): State<Shared>, Json(next): Json<Control>) -> Json<Control> {
    *sim.control.lock().unwrap() = next.clone();
    Json(next)
}

async fn stats(State(sim): State<Shared>) -> Json<Value> {
    let c = &sim.counters;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Json(json!({
        "chat_completions": get(&c.chat_completions),
        "transcriptions": get(&c.transcriptions),
        "rate_limited": get(&c.rate_limited),
        "server_errors": get(&c.server_errors),
        "timeouts": get(&c.timeouts),
        "rejected": get(&c.rejected),
        "images": get(&c.images),
        "max_image_side": get(&c.max_image_side),
        "audio_bytes": get(&c.audio_bytes),
        "audio_ms": get(&c.audio_ms),
        "aborted": get(&c.aborted),
        "frame_times": sim.frame_times.lock().unwrap().clone(),
        "delays": *sim.delays.lock().unwrap(),
    }))
}

/// Counts a request as aborted if its handler is dropped (the client went away) before it
/// answered.
struct Answering<'a> {
    sim: &'a Sim,
    done: bool,
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.sim.counters.aborted.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Applies the call's fixed latency and the configured fault; `Some` is the response to send
/// instead.
async fn misbehave(sim: &Sim, call: Call) -> Option<Response> {
    let mut answering = Answering { sim, done: false };
    let response = delay_or_fault(sim, call).await;
    answering.done = true;
    response
}

/// Sleeps `ms` (noted in the stats) and counts the request as aborted if dropped meanwhile.
async fn delay(sim: &Sim, call: Call, ms: u64) {
    let mut answering = Answering { sim, done: false };
    let start_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    {
        let mut delays = sim.delays.lock().unwrap();
        if delays.len() == MAX_DELAYS {
            delays.pop_front();
        }
        delays.push_back(Delay {
            call,
            start_unix_ms,
            ms,
        });
    }
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    answering.done = true;
}

/// A transcription of `seconds` of audio waits its proportional latency, when one is set.
async fn transcription_delay(sim: &Sim, seconds: f64) {
    let per_30s = sim.control.lock().unwrap().transcription_ms_per_30s;
    if let Some(per_30s) = per_30s {
        let ms = (seconds / 30.0 * per_30s as f64).round() as u64;
        delay(sim, Call::Transcription, ms).await;
    }
}

async fn delay_or_fault(sim: &Sim, call: Call) -> Option<Response> {
    let (fault, latency) = {
        let mut control = sim.control.lock().unwrap();
        let fault = control.fault;
        if fault == Fault::RateLimitOnce {
            control.fault = Fault::None;
        }
        let fixed = |ms: Option<u64>| Some(ms.unwrap_or(control.latency_ms));
        let latency = match call {
            Call::Vision => fixed(control.vision_latency_ms),
            Call::Directives => fixed(control.directives_latency_ms),
            // Proportional: served once the audio is decoded (`transcription_delay`).
            Call::Transcription if control.transcription_ms_per_30s.is_some() => None,
            Call::Transcription => fixed(None),
        };
        (fault, latency)
    };
    if let Some(ms) = latency {
        delay(sim, call, ms).await;
    }
    match fault {
        Fault::None => None,
        Fault::RateLimitOnce => {
            sim.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            Some(
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "1")],
                    Json(api_error(
                        "Rate limit reached (simulated)",
                        "rate_limit_error",
                    )),
                )
                    .into_response(),
            )
        }
        Fault::ServerError => {
            sim.counters.server_errors.fetch_add(1, Ordering::Relaxed);
            Some(
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(api_error(
                        "The server had an error (simulated)",
                        "server_error",
                    )),
                )
                    .into_response(),
            )
        }
        Fault::Timeout => {
            sim.counters.timeouts.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(3600)).await;
            None
        }
    }
}

fn api_error(message: &str, kind: &str) -> Value {
    json!({ "error": { "message": message, "type": kind, "param": null, "code": null } })
}

fn reject(sim: &Sim, message: String) -> Response {
    sim.counters.rejected.fetch_add(1, Ordering::Relaxed);
    (
        StatusCode::BAD_REQUEST,
        Json(api_error(&message, "invalid_request_error")),
    )
        .into_response()
}

async fn chat(State(sim): State<Shared>, Json(request): Json<Value>) -> Response {
    sim.counters
        .chat_completions
        .fetch_add(1, Ordering::Relaxed);
    let call = if request["response_format"]["json_schema"]["name"] == "voice_directives" {
        Call::Directives
    } else {
        Call::Vision
    };
    if let Some(response) = misbehave(&sim, call).await {
        return response;
    }
    match answer_chat(&sim, &request) {
        Ok(body) => Json(body).into_response(),
        Err(message) => reject(&sim, message),
    }
}

fn answer_chat(sim: &Sim, request: &Value) -> Result<Value, String> {
    let model = request["model"]
        .as_str()
        .filter(|m| !m.is_empty())
        .ok_or("model is required")?;
    if request["store"] != json!(false) {
        return Err("store must be false".into());
    }
    let format = &request["response_format"];
    if format["type"] != "json_schema" || format["json_schema"]["strict"] != json!(true) {
        return Err("response_format must be a strict json_schema".into());
    }
    let schema = &format["json_schema"]["schema"];
    check_strict(schema, "$")?;
    let messages = request["messages"]
        .as_array()
        .ok_or("messages must be an array")?;
    let mut text = String::new();
    let mut frame_times = Vec::new();
    let mut image_tokens = 0u64;
    let mut images = 0usize;
    for message in messages {
        match &message["content"] {
            Value::String(s) => text.push_str(s),
            Value::Array(parts) => {
                for part in parts {
                    match part["type"].as_str() {
                        Some("text") => {
                            let part = part["text"].as_str().unwrap_or("");
                            frame_times.extend(caption_time(part));
                            text.push_str(part);
                        }
                        Some("image_url") => {
                            let url = part["image_url"]["url"].as_str().unwrap_or("");
                            let (w, h) = check_image(url)?;
                            sim.counters.images.fetch_add(1, Ordering::Relaxed);
                            sim.counters
                                .max_image_side
                                .fetch_max(w.max(h) as u64, Ordering::Relaxed);
                            image_tokens += image_token_estimate(w, h);
                            images += 1;
                        }
                        other => return Err(format!("unsupported content part {other:?}")),
                    }
                }
            }
            _ => return Err("message content missing".into()),
        }
    }
    let name = format["json_schema"]["name"].as_str().unwrap_or("");
    let answer = match name {
        "vision_inventory" => {
            if images == 0 {
                return Err("vision request without images".into());
            }
            *sim.frame_times.lock().unwrap() = frame_times;
            scripted_vision(schema, images)
        }
        "voice_directives" => scripted_directives(schema, &text),
        other => return Err(format!("no script for schema {other:?}")),
    };
    let content = answer.to_string();
    let id = sim.counters.chat_completions.load(Ordering::Relaxed);
    let prompt_tokens = text.chars().count() as u64 / 4 + image_tokens;
    let completion_tokens = content.len() as u64 / 4;
    Ok(json!({
        "id": format!("{ID_PREFIX}chatcmpl-{id}"),
        "object": "chat.completion",
        "created": 1_700_000_000u32,
        "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content, "refusal": null },
            "finish_reason": "stop",
            "logprobs": null
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens
        }
    }))
}

/// Structured-output strict mode: objects closed, every property required, recursively.
fn check_strict(schema: &Value, path: &str) -> Result<(), String> {
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Err(format!("{path}: missing type")),
    };
    if types.contains(&"object") {
        if schema["additionalProperties"] != json!(false) {
            return Err(format!("{path}: additionalProperties must be false"));
        }
        let props = schema["properties"]
            .as_object()
            .ok_or(format!("{path}: no properties"))?;
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (key, sub) in props {
            if !required.contains(&key.as_str()) {
                return Err(format!("{path}.{key}: not in required"));
            }
            check_strict(sub, &format!("{path}.{key}"))?;
        }
    }
    if types.contains(&"array") {
        check_strict(&schema["items"], &format!("{path}[]"))?;
    }
    Ok(())
}

fn check_image(url: &str) -> Result<(usize, usize), String> {
    let data = url
        .strip_prefix("data:image/jpeg;base64,")
        .ok_or("image is not a JPEG data URI")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| format!("image base64: {e}"))?;
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err("image too large".into());
    }
    let mut decoder = jpeg_decoder::Decoder::new(&bytes[..]);
    decoder
        .decode()
        .map_err(|e| format!("image is not a decodable JPEG: {e}"))?;
    let info = decoder.info().ok_or("image without header")?;
    let (w, h) = (info.width as usize, info.height as usize);
    if w.max(h) > MAX_IMAGE_SIDE || w.min(h) < MIN_IMAGE_SIDE {
        return Err(format!("image size {w}x{h} out of bounds"));
    }
    Ok((w, h))
}

/// Patch-based image tokens as billed for the gpt-4.1-mini family (32 px patches, ×1.62).
fn image_token_estimate(w: usize, h: usize) -> u64 {
    let patches = w.div_ceil(32) * h.div_ceil(32);
    (patches.min(1536) as f64 * 1.62).ceil() as u64
}

fn schema_keys(schema: &Value, pointer: &str) -> Vec<String> {
    schema
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The first schema key equal to, then starting with, then containing a candidate.
fn pick(keys: &[String], candidates: &[&str]) -> String {
    let usable = || keys.iter().filter(|k| !k.is_empty() && *k != "other");
    for matches in [
        (|k: &str, c: &str| k == c) as fn(&str, &str) -> bool,
        |k, c| k.starts_with(c),
        |k, c| k.contains(c),
    ] {
        for c in candidates {
            if let Some(k) = usable().find(|k| matches(k, c)) {
                return k.clone();
            }
        }
    }
    "other".to_string()
}

fn scripted_vision(schema: &Value, frames: usize) -> Value {
    let keys = schema_keys(
        schema,
        "/properties/rooms/items/properties/items/items/properties/key/enum",
    );
    let last = frames.saturating_sub(1) as u32;
    let item = |cands: &[&str], label: &str, qty: u32, seen: Vec<u32>| {
        let key = pick(&keys, cands);
        let volume = if key == "other" {
            json!(0.5)
        } else {
            Value::Null
        };
        json!({ "key": key, "label": label, "quantity": qty, "estimated_volume_m3": volume,
                "confidence": 0.9, "frames": seen })
    };
    json!({ "rooms": [
        { "name": "salon", "items": [
            item(&["sofa_3_seats", "canape_3_places", "sofa", "canape"], "canapé 3 places", 1, vec![0, 1.min(last)]),
            item(&["coffee_table", "table_basse", "coffee"], "table basse", 1, vec![1.min(last)]),
            item(&["box_standard", "carton_standard", "box", "carton"], "carton", 3, vec![2.min(last), 3.min(last)]),
        ]},
        { "name": "cuisine", "items": [
            item(&["fridge", "refrigerateur", "frigo"], "réfrigérateur", 1, vec![(last / 2).max(1.min(last))]),
        ]},
        { "name": "chambre", "items": [
            item(&["double_bed", "lit_double", "bed", "lit"], "lit double", 1, vec![last]),
        ]}
    ]})
}

fn scripted_directives(schema: &Value, text: &str) -> Value {
    let keys = schema_keys(schema, "/properties/directives/items/properties/key/enum");
    let text = text.to_lowercase();
    let mut directives = Vec::new();
    if text.contains("frigo") {
        directives.push(json!({ "action": "exclude", "key": pick(&keys, &["fridge", "refrigerateur", "frigo"]),
            "label": "réfrigérateur", "quantity": null, "room": null, "estimated_volume_m3": null, "note": null }));
    }
    if text.contains("cartons de livres") {
        directives.push(json!({ "action": "add", "key": pick(&keys, &["box_books", "carton_livres", "books"]),
            "label": "carton de livres", "quantity": 15, "room": "salon", "estimated_volume_m3": null,
            "note": null }));
    }
    json!({ "directives": directives })
}

async fn transcriptions(State(sim): State<Shared>, mut form: Multipart) -> Response {
    sim.counters.transcriptions.fetch_add(1, Ordering::Relaxed);
    if let Some(response) = misbehave(&sim, Call::Transcription).await {
        return response;
    }
    let mut audio = None;
    let mut model = None;
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_string();
                let Ok(data) = field.bytes().await else {
                    return reject(&sim, "unreadable multipart field".into());
                };
                match name.as_str() {
                    "file" => audio = Some(data),
                    "model" => model = Some(String::from_utf8_lossy(&data).into_owned()),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(e) => return reject(&sim, format!("multipart: {e}")),
        }
    }
    let (Some(audio), Some(_model)) = (audio, model) else {
        return reject(&sim, "file and model are required".into());
    };
    sim.counters
        .audio_bytes
        .fetch_add(audio.len() as u64, Ordering::Relaxed);
    let seconds = match decoded_seconds(&audio).await {
        Some(s) => s,
        None => return reject(&sim, "audio does not decode".into()),
    };
    sim.counters
        .audio_ms
        .fetch_add((seconds * 1000.0).round() as u64, Ordering::Relaxed);
    transcription_delay(&sim, seconds).await;
    let text = sim
        .control
        .lock()
        .unwrap()
        .transcript
        .clone()
        .unwrap_or_else(|| DEFAULT_TRANSCRIPT.to_string());
    Json(json!({ "text": text, "usage": { "type": "duration", "seconds": seconds } }))
        .into_response()
}

/// The time in a frame caption `Image i (t = X s)`.
fn caption_time(text: &str) -> Option<f64> {
    let rest = text.strip_prefix("Image ")?.split("(t = ").nth(1)?;
    rest.split(" s)").next()?.trim().parse().ok()
}

/// Decodes the audio with ffmpeg; its duration when it decodes.
async fn decoded_seconds(audio: &[u8]) -> Option<f64> {
    let mut child = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-hide_banner",
            "-v",
            "error",
            "-i",
            "pipe:0",
            "-f",
            "null",
        ])
        .args(["-progress", "pipe:1", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let input = audio.to_vec();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&input).await;
    });
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .ok()?
        .ok()?;
    let _ = writer.await;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .rev()
        .filter_map(|l| l.strip_prefix("out_time_us="))
        .find_map(|us| us.trim().parse::<f64>().ok())
        .map(|us| us / 1e6)
        .filter(|s| *s > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_schema_check_catches_open_objects() {
        let ok = json!({"type":"object","additionalProperties":false,"required":["a"],
            "properties":{"a":{"type":["string","null"]}}});
        assert!(check_strict(&ok, "$").is_ok());
        let open = json!({"type":"object","required":["a"],"properties":{"a":{"type":"string"}}});
        assert!(check_strict(&open, "$").is_err());
        let optional = json!({"type":"object","additionalProperties":false,"required":[],
            "properties":{"a":{"type":"string"}}});
        assert!(check_strict(&optional, "$").is_err());
    }

    #[test]
    fn picks_catalogue_keys() {
        let keys: Vec<String> = ["canape_2_places", "canape_3_places", "table_basse", "other"]
            .map(String::from)
            .into();
        assert_eq!(
            pick(&keys, &["canape_3_places", "canape"]),
            "canape_3_places"
        );
        assert_eq!(pick(&keys, &["sofa"]), "other");
    }
}
