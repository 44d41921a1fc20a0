//! Per-call latencies through the control API: vision and directives fixed, transcription
//! proportional to the decoded audio; one `latency_ms` for every call as before; the stats list
//! each latency served.

use std::{process::Stdio, time::Instant};

use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    process::Command,
};

/// One HTTP/1.1 request with `Connection: close`; the status and the JSON body.
async fn request(addr: &str, method: &str, path: &str, kind: &str, body: &[u8]) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: {kind}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn post_json(addr: &str, path: &str, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    request(addr, "POST", path, "application/json", &bytes).await
}

/// ffmpeg's output for lavfi `input` in `format`.
async fn generate(input: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", input])
        .args(args)
        .arg("pipe:1")
        .stderr(Stdio::inherit())
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

fn chat(name: &str, content: Value) -> Value {
    json!({
        "model": "gpt-test",
        "store": false,
        "response_format": { "type": "json_schema", "json_schema": { "name": name, "strict": true,
            "schema": { "type": "object", "additionalProperties": false, "required": [], "properties": {} } } },
        "messages": [{ "role": "user", "content": content }]
    })
}

/// The three calls, each timed: vision, directives, transcription of `audio`.
async fn three_calls(addr: &str, jpeg: &[u8], audio: &[u8]) -> [u128; 3] {
    use base64::Engine;
    let uri = format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(jpeg)
    );
    let vision = chat(
        "vision_inventory",
        json!([{ "type": "image_url", "image_url": { "url": uri } }]),
    );
    let directives = chat("voice_directives", json!("il y a quinze cartons de livres"));
    let mut form = b"--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n\
        --b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\
        Content-Type: audio/wav\r\n\r\n"
        .to_vec();
    form.extend_from_slice(audio);
    form.extend_from_slice(b"\r\n--b--\r\n");
    let mut took = [0; 3];
    for (i, call) in [Some(vision), Some(directives), None]
        .into_iter()
        .enumerate()
    {
        let t = Instant::now();
        let (status, body) = match call {
            Some(body) => post_json(addr, "/v1/chat/completions", &body).await,
            None => {
                let kind = "multipart/form-data; boundary=b";
                request(addr, "POST", "/v1/audio/transcriptions", kind, &form).await
            }
        };
        assert_eq!(status, 200, "{body}");
        took[i] = t.elapsed().as_millis();
    }
    took
}

fn delays(stats: &Value) -> Vec<(String, u64)> {
    stats["delays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert!(d["start_unix_ms"].as_u64().unwrap() > 1_600_000_000_000);
            (
                d["call"].as_str().unwrap().to_string(),
                d["ms"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn named(ms: [u64; 3]) -> Vec<(String, u64)> {
    ["vision", "directives", "transcription"]
        .into_iter()
        .map(String::from)
        .zip(ms)
        .collect()
}

#[tokio::test]
async fn latencies_per_call_and_proportional_to_the_audio() {
    let jpeg = generate(
        "color=c=gray:size=64x48",
        &["-frames:v", "1", "-f", "mjpeg"],
    )
    .await;
    // 12 s of audio: at 500 ms per 30 s, 200 ms.
    let audio = generate("sine=frequency=440:duration=12", &["-f", "wav"]).await;
    let (addr, _server) = openai_sim::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = addr.to_string();

    // Defaults unchanged: no latency.
    three_calls(&addr, &jpeg, &audio).await;
    let (_, stats) = request(&addr, "GET", "/__sim/stats", "text/plain", b"").await;
    assert_eq!(delays(&stats), named([0, 0, 0]));

    // One latency for every call, as before.
    post_json(&addr, "/__sim/control", &json!({ "latency_ms": 150 })).await;
    let took = three_calls(&addr, &jpeg, &audio).await;
    assert!(took.iter().all(|&ms| ms >= 150), "{took:?}");
    let (_, stats) = request(&addr, "GET", "/__sim/stats", "text/plain", b"").await;
    assert_eq!(delays(&stats)[3..], named([150, 150, 150]));

    // Per call: vision and directives fixed, transcription per 30 s of decoded audio.
    let control = json!({ "latency_ms": 5000, "vision_latency_ms": 400,
        "directives_latency_ms": 100, "transcription_ms_per_30s": 500 });
    let (status, echoed) = post_json(&addr, "/__sim/control", &control).await;
    assert_eq!(
        (status, &echoed["transcription_ms_per_30s"]),
        (200, &json!(500))
    );
    let took = three_calls(&addr, &jpeg, &audio).await;
    assert!(
        took[0] >= 400 && took[1] >= 100 && took[2] >= 200,
        "{took:?}"
    );
    assert!(
        took.iter().all(|&ms| ms < 5000),
        "latency_ms is overridden: {took:?}"
    );
    let (_, stats) = request(&addr, "GET", "/__sim/stats", "text/plain", b"").await;
    assert_eq!(delays(&stats)[6..], named([400, 100, 200]));
    assert_eq!(stats["audio_ms"], 3 * 12_000);
}
