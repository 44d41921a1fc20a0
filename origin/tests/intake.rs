//! `POST /v1/jobs/{id}`: what is refused before a byte is processed, duplicates, capacity.

mod support;

use serde_json::json;
use support::{fixtures, *};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_missing_and_stale_signatures_are_401() {
    let s = Scenario::start(&[]).await;
    let body = read(&fixtures::no_audio());
    let mut ids = Vec::new();
    for (n, signature) in [Signature::Missing, Signature::WrongSecret, Signature::Stale]
        .into_iter()
        .enumerate()
    {
        let id = session_id(100 + n as u64);
        let response = forward(s.origin.addr, &s.meta(&id), body.clone(), signature).await;
        assert_eq!(response.status(), 401);
        ids.push(id);
    }
    // A signature over another length (the body was tampered with) fails too.
    let id = session_id(110);
    let mut meta = s.meta(&id);
    meta.attempt = 1;
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/jobs/{id}", s.origin.addr))
        .header("x-dodolens-timestamp", "1")
        .header("x-dodolens-metadata", "e30=")
        .header("x-dodolens-signature", "00")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(s.sim.stats().await["chat_completions"], 0);
    for id in &ids {
        assert!(s.cb.events(id).is_empty());
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    s.finish(&refs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_is_413_and_zero_length_is_400() {
    let s = Scenario::start(&[("DODOLENS_MAX_VIDEO_BYTES", "100000")]).await;
    let (big, empty) = (session_id(200), session_id(201));
    let response = forward(
        s.origin.addr,
        &s.meta(&big),
        vec![0u8; 100_001],
        Signature::Good,
    )
    .await;
    assert_eq!(response.status(), 413);
    let response = forward(s.origin.addr, &s.meta(&empty), Vec::new(), Signature::Good).await;
    assert_eq!(response.status(), 400);
    let metrics = s.metrics().await;
    assert!(metrics.contains("reason=\"too_large\""), "{metrics}");
    s.finish(&[&big, &empty]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_fails_as_unsupported_and_malformed_ids_are_400() {
    let s = Scenario::start(&[]).await;
    let meta = s.meta(&session_id(300));
    let response = forward(s.origin.addr, &meta, b"x".to_vec(), Signature::Good).await;
    assert_eq!(
        response.status(),
        202,
        "a correctly signed forward is accepted"
    );
    let event =
        s.cb.final_event(&meta.session_id, std::time::Duration::from_secs(30))
            .await;
    assert!(!failed(&event).retryable);
    let mut bad = s.meta("NOT-A-SESSION");
    bad.session_id = "NOT-A-SESSION".into();
    let response = forward(s.origin.addr, &bad, b"x".to_vec(), Signature::Good).await;
    assert_eq!(response.status(), 400);
    s.finish(&[&meta.session_id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_forwards_run_once() {
    let s = Scenario::start(&[]).await;
    s.sim.control(json!({ "latency_ms": 300 })).await;
    let body = read(&fixtures::no_audio());
    let id = session_id(400);
    let meta = s.meta(&id);
    let first = forward(s.origin.addr, &meta, body.clone(), Signature::Good).await;
    assert_eq!(first.status(), 202);
    assert_eq!(first.headers().get("dodolens-attempt"), None, "a fresh job");
    // A re-forward (the edge's watchdog) while attempt 1 runs: the answer names attempt 1, whose
    // events the edge must then apply.
    let mut again = meta.clone();
    again.attempt += 1;
    let while_running = forward(s.origin.addr, &again, body.clone(), Signature::Good).await;
    assert_eq!(while_running.status(), 202);
    assert_eq!(
        while_running.headers()["dodolens-attempt"]
            .to_str()
            .unwrap(),
        meta.attempt.to_string()
    );
    assert_eq!(
        while_running.json::<serde_json::Value>().await.unwrap()["duplicate"],
        true
    );
    completed(
        &s.cb
            .final_event(&id, std::time::Duration::from_secs(60))
            .await,
    );
    let after_end = forward(s.origin.addr, &meta, body, Signature::Good).await;
    assert_eq!(after_end.status(), 202);
    // A re-forward of a finished job means the edge lacks the result: it is sent again.
    s.cb.wait_final_posts(&id, 2, std::time::Duration::from_secs(30))
        .await;
    assert_eq!(
        s.sim.stats().await["chat_completions"],
        1,
        "vision ran once"
    );
    assert_eq!(s.cb.events(&id).iter().filter(|e| is_final(e)).count(), 1);
    s.finish(&[&id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_capacity_answers_503_with_retry_after() {
    let s = Scenario::start(&[
        ("DODOLENS_MAX_CONCURRENT_JOBS", "1"),
        ("DODOLENS_RETRY_AFTER_S", "7"),
    ])
    .await;
    s.sim.control(json!({ "latency_ms": 1500 })).await;
    let body = read(&fixtures::no_audio());
    let (a, b) = (session_id(500), session_id(501));
    assert_eq!(
        forward(s.origin.addr, &s.meta(&a), body.clone(), Signature::Good)
            .await
            .status(),
        202
    );
    let busy = forward(s.origin.addr, &s.meta(&b), body.clone(), Signature::Good).await;
    assert_eq!(busy.status(), 503);
    assert_eq!(
        busy.headers()["retry-after"],
        "7",
        "nothing measured yet: the configured prior"
    );
    assert_eq!(
        busy.json::<serde_json::Value>().await.unwrap()["busy"],
        "slots"
    );
    completed(
        &s.cb
            .final_event(&a, std::time::Duration::from_secs(60))
            .await,
    );
    s.sim.control(json!({ "latency_ms": 0 })).await;
    // The refused forward left no claim behind: the same id is accepted once a slot is free.
    assert_eq!(
        forward(s.origin.addr, &s.meta(&b), body, Signature::Good)
            .await
            .status(),
        202
    );
    completed(
        &s.cb
            .final_event(&b, std::time::Duration::from_secs(60))
            .await,
    );
    s.finish(&[&a, &b]).await;
}

/// The video's SHA-256 is signed with the forward: a body that does not hash to it (altered
/// between the edge's rows and the origin) is refused with 400 once received, nothing runs and
/// its memfd is gone; a forward without the digest header does not verify (401).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_the_signed_video_is_refused() {
    let s = Scenario::start(&[]).await;
    let video = read(&fixtures::no_audio());
    let id = session_id(160);
    let response = forward(
        s.origin.addr,
        &s.meta(&id),
        video.clone(),
        Signature::WrongDigest,
    )
    .await;
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(text.contains("video digest mismatch"), "{text}");
    assert!(
        open_memfds(&id).is_empty(),
        "the refused video's memfd is gone"
    );
    assert!(s
        .metrics()
        .await
        .contains("dodolens_intake_rejections_total{reason=\"digest_mismatch\"} 1"));

    let unsigned = session_id(161);
    use base64::Engine as _;
    let meta = base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(&s.meta(&unsigned)).unwrap());
    let path = format!("/v1/jobs/{unsigned}");
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let parts = dodolens_shared::signing::SignedParts::new(
        dodolens_shared::signing::Purpose::Forward,
        "POST",
        &path,
        timestamp,
        video.len() as u64,
        &meta,
    );
    let signature = dodolens_shared::signing::sign(SECRET.as_bytes(), &parts).unwrap();
    let response = reqwest::Client::new()
        .post(format!("http://{}{path}", s.origin.addr))
        .header(
            dodolens_shared::signing::HEADER_TIMESTAMP,
            timestamp.to_string(),
        )
        .header(dodolens_shared::signing::HEADER_METADATA, meta)
        .header(dodolens_shared::signing::HEADER_SIGNATURE, signature)
        .body(video.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "the digest is part of what is signed"
    );

    // The same video with its true digest is accepted and analysed.
    let good = session_id(162);
    let response = forward(s.origin.addr, &s.meta(&good), video, Signature::Good).await;
    assert_eq!(response.status(), 202);
    completed(
        &s.cb
            .final_event(&good, std::time::Duration::from_secs(60))
            .await,
    );
    assert_eq!(
        s.sim.stats().await["chat_completions"],
        1,
        "only the good job reached the model"
    );
    assert!(s.cb.events(&id).is_empty() && s.cb.events(&unsigned).is_empty());
    s.finish(&[&id, &unsigned, &good]).await;
}

/// The mover's webhook receiver holds the webhook key and sees signed deliveries. Neither lets
/// it sign a forward: a forward signed with the webhook key (for either purpose) is 401, and so
/// is a delivery's own signature replayed onto the job route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_key_signs_nothing_the_origin_accepts() {
    use axum::{body::Bytes, extract::State, http::HeaderMap, routing::post, Router};
    use dodolens_shared::signing::{self, Purpose, SignedParts};
    use std::sync::{Arc, Mutex};

    type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;
    async fn hook(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) {
        seen.lock().unwrap().push((headers, body));
    }
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let s = Scenario::start(&[
        ("DODOLENS_WEBHOOK_URL", &hook_url),
        ("DODOLENS_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("DODOLENS_SINK_RAW_RESULT", "1"),
    ])
    .await;
    let (delivered, event) = s.run(read(&fixtures::no_audio())).await;
    completed(&event);
    let (headers, body) = seen.lock().unwrap()[0].clone();
    let get = |name: &str| headers[name].to_str().unwrap().to_string();
    // What the receiver can check: the webhook purpose, with its key.
    let metadata = get(signing::HEADER_METADATA);
    let parts = SignedParts::new(
        Purpose::Webhook,
        "POST",
        "/hook",
        get(signing::HEADER_TIMESTAMP).parse().unwrap(),
        body.len() as u64,
        &metadata,
    );
    let now = parts.timestamp;
    signing::verify(
        WEBHOOK_SECRET.as_bytes(),
        &parts,
        &get(signing::HEADER_SIGNATURE),
        now,
    )
    .expect("the webhook verifies with the webhook key");
    assert!(
        signing::verify(
            SECRET.as_bytes(),
            &parts,
            &get(signing::HEADER_SIGNATURE),
            now
        )
        .is_err(),
        "the webhook is not signed with the edge ↔ origin key"
    );

    let video = read(&fixtures::no_audio());
    let mut ids = vec![delivered.clone()];
    for (n, signature) in [Signature::WebhookKey, Signature::WrongPurpose]
        .into_iter()
        .enumerate()
    {
        let id = session_id(150 + n as u64);
        let response = forward(s.origin.addr, &s.meta(&id), video.clone(), signature).await;
        assert_eq!(response.status(), 401, "{}", response.text().await.unwrap());
        ids.push(id);
    }
    // The delivery's headers replayed onto a job route.
    let replayed = reqwest::Client::new()
        .post(format!("http://{}/v1/jobs/{delivered}", s.origin.addr))
        .header(signing::HEADER_TIMESTAMP, get(signing::HEADER_TIMESTAMP))
        .header(signing::HEADER_METADATA, get(signing::HEADER_METADATA))
        .header(signing::HEADER_SIGNATURE, get(signing::HEADER_SIGNATURE))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 401);
    assert!(s
        .metrics()
        .await
        .contains("dodolens_intake_rejections_total{reason=\"unauthorised\"} 3"));
    assert_eq!(
        s.sim.stats().await["chat_completions"],
        1,
        "only the real job"
    );
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    s.finish(&refs).await;
}

#[test]
fn a_webhook_needs_its_own_key() {
    let vars = |extra: &[(&str, &str)]| {
        let mut vars: std::collections::HashMap<String, String> = [
            ("DODOLENS_SIGNING_SECRET", SECRET),
            (
                "DODOLENS_SIGNING_SECRET_PREVIOUS",
                "the-old-edge-origin-key",
            ),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
            ("DODOLENS_WEBHOOK_URL", "http://127.0.0.1:9/hook"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        dodolens_origin::config::Config::from_vars(|k| vars.get(k).cloned())
    };
    let missing = vars(&[]).unwrap_err().to_string();
    assert!(missing.contains("DODOLENS_WEBHOOK_SECRET"), "{missing}");
    for reused in [SECRET, "the-old-edge-origin-key"] {
        let error = vars(&[("DODOLENS_WEBHOOK_SECRET", reused)]).unwrap_err();
        assert!(error.to_string().contains("must differ"), "{error}");
    }
    assert!(vars(&[("DODOLENS_WEBHOOK_SECRET", WEBHOOK_SECRET)]).is_ok());
}

/// Rotation: while `DODOLENS_SIGNING_SECRET_PREVIOUS` is set, a forward signed with it is
/// accepted (the edge may not have switched yet); without it, the same forward is 401. Events
/// are always signed with the current key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_key_is_accepted_only_during_a_rotation() {
    let s = Scenario::start(&[("DODOLENS_SIGNING_SECRET_PREVIOUS", PREVIOUS_SECRET)]).await;
    let id = session_id(160);
    let response = forward(
        s.origin.addr,
        &s.meta(&id),
        read(&fixtures::no_audio()),
        Signature::PreviousKey,
    )
    .await;
    assert_eq!(response.status(), 202);
    completed(
        &s.cb
            .final_event(&id, std::time::Duration::from_secs(60))
            .await,
    );
    s.finish(&[&id]).await;

    let s = Scenario::start(&[]).await;
    let id = session_id(161);
    let response = forward(
        s.origin.addr,
        &s.meta(&id),
        read(&fixtures::no_audio()),
        Signature::PreviousKey,
    )
    .await;
    assert_eq!(response.status(), 401);
    s.finish(&[&id]).await;
}
