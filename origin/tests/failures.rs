//! Everything the origin calls fails at some point: the model (429, 500, hanging) and the edge.

mod support;

use std::time::Duration;

use dodolens_shared::protocol::{ErrorCode, OriginEvent, Stage};
use serde_json::json;
use support::{fixtures, *};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_once_then_success() {
    let s = Scenario::start(&[]).await;
    s.sim.control(json!({ "fault": "rate_limit_once" })).await;
    let (id, event) = s.run(read(&fixtures::no_audio())).await;
    completed(&event);
    let stats = s.sim.stats().await;
    assert_eq!(stats["rate_limited"], 1);
    assert_eq!(
        stats["chat_completions"], 2,
        "the 429 and the retry after Retry-After"
    );
    s.finish(&[&id]).await;
}

/// A model call longer than the heartbeat: the job sends heartbeats while it waits, so the
/// edge's watchdog sees a live origin instead of re-forwarding the video, and every event says
/// which forward attempt it belongs to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_model_call_keeps_the_edge_informed() {
    let s = Scenario::start(&[("DODOLENS_HEARTBEAT_MS", "200")]).await;
    s.sim.control(json!({ "latency_ms": 1500 })).await;
    let (id, event) = s.run(read(&fixtures::no_audio())).await;
    completed(&event);
    let events = s.cb.events(&id);
    let heartbeats = events
        .iter()
        .filter(|e| matches!(e, OriginEvent::Heartbeat))
        .count();
    assert!(
        heartbeats >= 3,
        "{heartbeats} heartbeats during a 1.5 s model call"
    );
    let analysing = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                OriginEvent::Stage {
                    stage: Stage::Analysing
                }
            )
        })
        .count();
    assert_eq!(analysing, 1, "the stage is not re-sent as if it were new");
    assert!(
        s.cb.reports(&id).iter().all(|r| r.attempt == 1),
        "every event is stamped with the forward's attempt"
    );
    s.finish(&[&id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_until_retries_are_exhausted_fail_retryable_then_retry_runs_again() {
    let s = Scenario::start(&[]).await;
    s.sim.control(json!({ "fault": "server_error" })).await;
    let (id, event) = s.run(read(&fixtures::moov_at_end())).await;
    let failure = failed(&event);
    assert_eq!(failure.code, ErrorCode::ModelUnavailable);
    assert!(failure.retryable);
    assert!(
        s.sim.stats().await["server_errors"].as_u64().unwrap() >= 4,
        "1 try + 3 retries"
    );

    // "Réessayer": the edge forwards the same session again with the next attempt number.
    s.sim.control(json!({ "fault": "none" })).await;
    let meta = job_meta(&id, &Callback::url(s.cb_addr, &id), 2);
    let body = read(&fixtures::moov_at_end());
    assert_eq!(
        forward(s.origin.addr, &meta, body, Signature::Good)
            .await
            .status(),
        202
    );
    let finals = s.cb.final_events(&id, 2, Duration::from_secs(60)).await;
    completed(&finals[1]);
    let attempts: Vec<u32> =
        s.cb.reports(&id)
            .iter()
            .filter(|r| r.event.is_final())
            .map(|r| r.attempt)
            .collect();
    assert_eq!(
        attempts,
        [1, 2],
        "each run's result carries its own attempt"
    );
    s.finish(&[&id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_model_times_out_retryable() {
    let s = Scenario::start(&[
        ("DODOLENS_MODEL_TIMEOUT_S", "1"),
        ("DODOLENS_MODEL_TIMEOUT_RETRIES", "1"),
    ])
    .await;
    s.sim.control(json!({ "fault": "timeout" })).await;
    let (id, event) = s.run(read(&fixtures::no_audio())).await;
    let failure = failed(&event);
    assert_eq!(failure.code, ErrorCode::Timeout);
    assert!(failure.retryable);
    assert_eq!(s.sim.stats().await["timeouts"], 2, "one try and one retry");
    s.finish(&[&id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_delivers_once_the_edge_is_back() {
    let sim = Sim::start().await;
    // Reserve a port, then leave it closed: the edge is down.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cb_addr = listener.local_addr().unwrap();
    drop(listener);
    let (origin, store) = start_origin_in_memory(config(&sim, &[])).await;
    let id = session_id(700);
    let meta = job_meta(&id, &Callback::url(cb_addr, &id), 1);
    let body = read(&fixtures::no_audio());
    assert_eq!(
        forward(origin.addr, &meta, body, Signature::Good)
            .await
            .status(),
        202
    );

    // Wait until the job ended and the outbox has failed at least once more after that.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let metric = |text: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with("dodolens_event_deliveries_total{result=\"retry\"}"))
            .and_then(|l| l.split_whitespace().last()?.parse().ok())
            .unwrap_or(0)
    };
    let metrics_url = format!("http://{}/metrics", origin.ops_addr);
    while origin
        .state
        .store
        .job_mark(&id)
        .await
        .unwrap()
        .is_none_or(|m| matches!(m, dodolens_origin::store::JobMark::Running { .. }))
    {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after_end = metric(
        &reqwest::get(&metrics_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    while metric(
        &reqwest::get(&metrics_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    ) <= after_end
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outbox never retried"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        origin.state.outbox.held(),
        1,
        "final event kept in the outbox"
    );

    // The edge comes back on the same address.
    let cb = Callback::default();
    cb.serve(tokio::net::TcpListener::bind(cb_addr).await.unwrap());
    completed(&cb.final_event(&id, Duration::from_secs(30)).await);
    assert_no_residue(&[&id], None).await;
    assert_only_finished_markers(&origin, &store).await;
    assert_eq!(cb.bad_signatures(), 0);
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_raw_results_on_sinks_get_the_result_and_a_failing_sink_is_only_a_warning() {
    use axum::{extract::State, http::HeaderMap, routing::post, Json, Router};
    use std::sync::{Arc, Mutex};

    type Seen = Arc<Mutex<Vec<(String, serde_json::Value)>>>;
    async fn airtable(
        State(seen): State<Seen>,
        headers: HeaderMap,
        Json(body): Json<serde_json::Value>,
    ) -> Json<serde_json::Value> {
        let auth = headers["authorization"].to_str().unwrap().to_string();
        seen.lock().unwrap().push((auth, body));
        Json(json!({ "records": [{ "id": "rec1" }] }))
    }
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let air = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/v0/{base}/{table}", post(airtable))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();

    let air_url = format!("http://{air}/v0");
    let hook_url = format!("http://{dead}/hook");
    let s = Scenario::start(&[
        ("DODOLENS_AIRTABLE_TOKEN", "pat-test"),
        ("DODOLENS_AIRTABLE_BASE", "appBase"),
        ("DODOLENS_AIRTABLE_TABLE", "Inventaires"),
        ("DODOLENS_AIRTABLE_URL", &air_url),
        ("DODOLENS_WEBHOOK_URL", &hook_url),
        ("DODOLENS_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("DODOLENS_SINK_ATTEMPTS", "2"),
        ("DODOLENS_SINK_RAW_RESULT", "1"),
    ])
    .await;
    let (id, event) = s.run(read(&fixtures::no_audio())).await;
    let result = completed(&event);
    let sink_warnings: Vec<_> = result
        .inventory
        .warnings
        .iter()
        .filter(|w| w.code == dodolens_shared::protocol::WarningCode::SinkFailed)
        .collect();
    assert_eq!(sink_warnings.len(), 1, "{:?}", result.inventory.warnings);
    assert!(sink_warnings[0].message.contains("webhook"));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "Bearer pat-test");
    let fields = &seen[0].1["records"][0]["fields"];
    assert_eq!(fields["Session"], id.as_str());
    assert_eq!(fields["Total m3"], json!(result.inventory.total_m3));
    assert!(s
        .metrics()
        .await
        .contains("dodolens_sink_failures_total{sink=\"webhook\"} 1"));
    s.finish(&[&id]).await;
}

/// While a shutdown waits for running jobs, the listeners stay open: a new forward gets 503 +
/// Retry-After (so the edge tries again, elsewhere or later) and readiness says not accepting.
/// At the end of the grace the running job fails retryable; then the listeners close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_refuses_new_jobs_and_fails_running_ones_retryable() {
    let s = Scenario::start(&[("DODOLENS_SHUTDOWN_GRACE_S", "5")]).await;
    s.sim.control(json!({ "latency_ms": 60_000 })).await;
    let id = session_id(800);
    let body = read(&fixtures::no_audio());
    let response = forward(s.origin.addr, &s.meta(&id), body.clone(), Signature::Good).await;
    assert_eq!(response.status(), 202);
    // Wait until the job is at the model, then stop the origin.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while s.sim.stats().await["chat_completions"] == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "job never reached the model"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let state = s.origin.state.clone();
    let (addr, ops) = (s.origin.addr, s.origin.ops_addr);
    let Scenario {
        origin, cb, sim, ..
    } = s;
    let stopping = tokio::spawn(origin.shutdown());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !state.shutdown.is_cancelled() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
    let late = job_meta(&session_id(801), &Callback::url(addr, "x"), 1);
    let refused = forward(addr, &late, body.clone(), Signature::Good).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let ready = reqwest::get(format!("http://{ops}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["accepting"],
        false
    );

    stopping.await.unwrap();
    let failure = failed(&cb.final_event(&id, Duration::from_secs(10)).await).clone();
    assert_eq!(failure.code, ErrorCode::OriginUnavailable);
    assert!(failure.retryable);
    let closed = reqwest::Client::new()
        .post(format!("http://{addr}/v1/jobs/{}", late.session_id))
        .body(body)
        .send()
        .await
        .expect_err("the listener is closed once the origin has stopped");
    assert!(closed.is_connect(), "{closed:?}");
    assert_no_residue(&[&id], None).await;
    drop(sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_runs_under_a_memory_limit() {
    let s = Scenario::start(&[("DODOLENS_FFMPEG_MAX_MEMORY_MB", "24")]).await;
    let (id, event) = s.run(read(&fixtures::no_audio())).await;
    let failure = failed(&event);
    assert_eq!(failure.code, ErrorCode::Internal, "{failure:?}");
    assert!(failure.retryable, "our limit, not the user's file");
    s.finish(&[&id]).await;
}
