//! Everything the origin calls fails at some point: the model (429, 500, hanging) and the edge.

mod support;

use std::time::Duration;

use dodolens_shared::protocol::{ErrorCode, OriginEvent};
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
    assert_eq!(stats["chat_completions"], 2, "the 429 and the retry after Retry-After");
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
    assert!(s.sim.stats().await["server_errors"].as_u64().unwrap() >= 4, "1 try + 3 retries");

    // "Réessayer": the edge forwards the same session again with the next attempt number.
    s.sim.control(json!({ "fault": "none" })).await;
    let meta = job_meta(&id, &Callback::url(s.cb_addr, &id), 2);
    let body = read(&fixtures::moov_at_end());
    assert_eq!(forward(s.origin.addr, &meta, body, Signature::Good).await.status(), 202);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let finals: Vec<OriginEvent> = s.cb.events(&id).into_iter().filter(is_final).collect();
        if finals.len() == 2 {
            completed(&finals[1]);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "retry did not complete");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.finish(&[&id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_model_times_out_retryable() {
    let s = Scenario::start(&[("DODOLENS_MODEL_TIMEOUT_S", "1"), ("DODOLENS_MODEL_TIMEOUT_RETRIES", "1")])
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
    let origin = start_origin(config(&sim, &[])).await;
    let id = session_id(700);
    let meta = job_meta(&id, &Callback::url(cb_addr, &id), 1);
    let body = read(&fixtures::no_audio());
    assert_eq!(forward(origin.addr, &meta, body, Signature::Good).await.status(), 202);

    // Wait until the job ended and the outbox has failed at least once more after that.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let metric = |text: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with("dodolens_event_deliveries_total{result=\"retry\"}"))
            .and_then(|l| l.split_whitespace().last()?.parse().ok())
            .unwrap_or(0)
    };
    let metrics_url = format!("http://{}/metrics", origin.addr);
    while origin.state.store.job_mark(&id).await.unwrap().is_none_or(|m| {
        matches!(m, dodolens_origin::store::JobMark::Running { .. })
    }) {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after_end = metric(&reqwest::get(&metrics_url).await.unwrap().text().await.unwrap());
    while metric(&reqwest::get(&metrics_url).await.unwrap().text().await.unwrap()) <= after_end {
        assert!(tokio::time::Instant::now() < deadline, "the outbox never retried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(origin.memory_store.as_ref().unwrap().len() >= 2, "final event kept in the outbox");

    // The edge comes back on the same address.
    let cb = Callback::default();
    cb.serve(tokio::net::TcpListener::bind(cb_addr).await.unwrap());
    completed(&cb.final_event(&id, Duration::from_secs(30)).await);
    assert_no_residue(&[&id], None).await;
    let store = origin.memory_store.clone().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.len() > 1 {
        assert!(tokio::time::Instant::now() < deadline, "outbox entry not removed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cb.bad_signatures(), 0);
    origin.shutdown().await;
}
