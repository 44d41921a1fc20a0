//! The Redis store with a real redis-server: a job end to end, and two origins sharing it.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{fixtures, *};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_mode_runs_a_job_and_keeps_only_expiring_markers() {
    let redis = Redis::start().await;
    let url = redis.url();
    let s = Scenario::start(&[("REDIS_URL", &url)]).await;
    assert!(s.origin.memory_store.is_none());
    let ready: serde_json::Value = reqwest::get(format!("http://{}/readyz", s.origin.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["store"], "redis");
    let (id, event) = s.run(read(&fixtures::moov_at_end())).await;
    completed(&event);
    assert_no_residue(&[&id], Some(&redis)).await;
    assert_eq!(redis.keys("*"), vec![format!("dodolens:job:{id}")]);
    assert!(redis
        .cli(&["GET", &format!("dodolens:job:{id}")])
        .starts_with("completed:1"));
    s.finish(&[&id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_origins_share_dedupe_and_slots() {
    let redis = Redis::start().await;
    let url = redis.url();
    let sim = Sim::start().await;
    let (cb, cb_addr) = Callback::start().await;
    let limits = [
        ("REDIS_URL", url.as_str()),
        ("DODOLENS_MAX_CONCURRENT_JOBS", "1"),
    ];
    let one = start_origin(config(
        &sim,
        &[&limits[..], &[("DODOLENS_INSTANCE_ID", "one")]].concat(),
    ))
    .await;
    let two = start_origin(config(
        &sim,
        &[&limits[..], &[("DODOLENS_INSTANCE_ID", "two")]].concat(),
    ))
    .await;
    sim.control(json!({ "latency_ms": 1500 })).await;
    let body = read(&fixtures::no_audio());

    // The same job forwarded to both replicas runs once.
    let a = session_id(900);
    let meta = job_meta(&a, &Callback::url(cb_addr, &a), 1);
    assert_eq!(
        forward(one.addr, &meta, body.clone(), Signature::Good)
            .await
            .status(),
        202
    );
    let dup = forward(two.addr, &meta, body.clone(), Signature::Good).await;
    assert_eq!(dup.status(), 202);
    assert_eq!(
        dup.json::<serde_json::Value>().await.unwrap()["duplicate"],
        true
    );

    // The only slot is taken by replica one, so replica two is at capacity too.
    let b = session_id(901);
    let meta_b = job_meta(&b, &Callback::url(cb_addr, &b), 1);
    assert_eq!(
        forward(two.addr, &meta_b, body.clone(), Signature::Good)
            .await
            .status(),
        503
    );
    let slots = redis.cli(&["ZRANGE", "dodolens:slots", "0", "-1"]);
    assert!(slots.contains(&format!("one:{a}")), "{slots}");

    completed(&cb.final_event(&a, Duration::from_secs(60)).await);
    sim.control(json!({ "latency_ms": 0 })).await;
    assert_eq!(
        forward(two.addr, &meta_b, body, Signature::Good)
            .await
            .status(),
        202
    );
    completed(&cb.final_event(&b, Duration::from_secs(60)).await);
    assert_eq!(
        sim.stats().await["chat_completions"],
        2,
        "one vision call per job"
    );
    assert_eq!(cb.events(&a).iter().filter(|e| is_final(e)).count(), 1);

    assert_no_residue(&[&a, &b], Some(&redis)).await;
    assert_eq!(redis.cli(&["ZCARD", "dodolens:slots"]).trim(), "0");
    assert_eq!(cb.bad_signatures(), 0);
    one.shutdown().await;
    two.shutdown().await;
}
