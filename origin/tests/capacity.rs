//! Admission beyond the slots: this replica's memory budget, decided from `Content-Length`
//! before a byte of body is kept, and the cluster's model budget. Both answer 503 +
//! Retry-After, which the edge treats as "queued": after reading the refused body (workerd loses
//! an answer sent before its body is through), or at once to the body-less admission probe.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{fixtures, *};
use tokio::io::AsyncWriteExt;

/// Waits until this replica holds `bytes` of video in memory.
async fn held_bytes(s: &Scenario, bytes: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.origin.state.admission.usage().bytes != bytes {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} bytes held, expected {bytes}",
            s.origin.state.admission.usage().bytes
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_budget_refuses_a_forward_from_its_head_and_keeps_none_of_its_body() {
    let s = Scenario::start(&[
        ("DODOLENS_MEMORY_BUDGET_BYTES", "4000000"),
        ("DODOLENS_MAX_VIDEO_BYTES", "4000000"),
        ("DODOLENS_MAX_CONCURRENT_JOBS", "4"),
    ])
    .await;
    let (a, b, c) = (
        s.meta(&session_id(1100)),
        s.meta(&session_id(1101)),
        s.meta(&session_id(1102)),
    );
    // A holds 2.4 MB of the budget while its body is still on the way.
    let mut slow = open_forward(s.origin.addr, &a, 2_400_000).await;
    slow.write_all(&[0u8; 1000]).await.unwrap();
    held_bytes(&s, 2_400_000).await;

    // B declares 2 MB: the probe says so from the head alone, and takes nothing.
    let asked = probe(s.origin.addr, &b, 2_000_000).await;
    assert_eq!(asked.status(), 503);
    assert!(asked.headers().contains_key("retry-after"));
    held_bytes(&s, 2_400_000).await;
    // B's forward is refused too; its whole body is read (and discarded) before the refusal,
    // so a client that sends its body before reading the answer gets the 503, not a reset.
    let mut refused = open_forward(s.origin.addr, &b, 2_000_000).await;
    refused.write_all(&vec![0u8; 2_000_000]).await.unwrap();
    let (status, headers) = read_head(&mut refused, Duration::from_secs(10)).await;
    assert_eq!(status, 503);
    let retry_after: u64 = headers["retry-after"].parse().unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    assert!(s.metrics().await.contains("reason=\"memory\""));
    held_bytes(&s, 2_400_000).await;
    drop(refused);

    // C fits in the 1.6 MB left; abandoning it gives them back, as does A's abandoned upload.
    let fits = open_forward(s.origin.addr, &c, 1_600_000).await;
    held_bytes(&s, 4_000_000).await;
    drop(fits);
    held_bytes(&s, 2_400_000).await;
    drop(slow);
    held_bytes(&s, 0).await;

    // B comes back and runs; its video's bytes are released once extracted.
    let body = read(&fixtures::no_audio());
    let response = forward(s.origin.addr, &b, body, Signature::Good).await;
    assert_eq!(response.status(), 202);
    completed(
        &s.cb
            .final_event(&b.session_id, Duration::from_secs(60))
            .await,
    );
    held_bytes(&s, 0).await;
    s.finish(&[&a.session_id, &b.session_id, &c.session_id])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_model_budget_is_a_wait_until_the_minute_slides() {
    // One job draws three requests: the budget holds one job a minute.
    let s = Scenario::start(&[("DODOLENS_MODEL_RPM", "3")]).await;
    let body = read(&fixtures::no_audio());
    let (id, event) = s.run(body.clone()).await;
    completed(&event);
    let late = session_id(1200);
    let busy = forward(s.origin.addr, &s.meta(&late), body, Signature::Good).await;
    assert_eq!(busy.status(), 503);
    let retry_after: u64 = busy.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        busy.json::<serde_json::Value>().await.unwrap()["busy"],
        json!("model_budget")
    );
    assert_eq!(s.sim.stats().await["chat_completions"], 1);
    s.finish(&[&id, &late]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admission_probe_answers_like_a_forward_and_takes_nothing() {
    let s = Scenario::start(&[("DODOLENS_MAX_CONCURRENT_JOBS", "1")]).await;
    let (a, b) = (s.meta(&session_id(1300)), s.meta(&session_id(1301)));
    let free = probe(s.origin.addr, &b, 1_000).await;
    assert_eq!(free.status(), 204);
    assert_eq!(
        s.origin.state.admission.usage().jobs,
        0,
        "a probe takes no slot"
    );
    let too_big = probe(s.origin.addr, &b, u64::MAX / 2).await;
    assert_eq!(too_big.status(), 413);
    let unsigned = reqwest::Client::new()
        .post(format!(
            "http://{}/v1/jobs/{}/admission",
            s.origin.addr, b.session_id
        ))
        .header(dodolens_shared::protocol::HEADER_VIDEO_LENGTH, "1000")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    // A takes the only slot: B's probe is busy, with the forward's Retry-After and reason.
    let slow = open_forward(s.origin.addr, &a, 1_000).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.origin.state.admission.usage().jobs != 1 {
        assert!(tokio::time::Instant::now() < deadline, "A never admitted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let busy = probe(s.origin.addr, &b, 1_000).await;
    assert_eq!(busy.status(), 503);
    assert!(busy.headers().contains_key("retry-after"));
    assert_eq!(
        busy.json::<serde_json::Value>().await.unwrap()["busy"],
        json!("slots")
    );
    drop(slow);
    s.finish(&[&a.session_id, &b.session_id]).await;
}
