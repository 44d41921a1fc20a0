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
    let ready: serde_json::Value = reqwest::get(format!("http://{}/readyz", s.origin.ops_addr))
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
    let mut keys = redis.keys("*");
    keys.retain(|k| !k.starts_with("dodolens:spend:"));
    keys.sort();
    assert_eq!(
        keys,
        vec![
            format!("dodolens:final:{id}"),
            format!("dodolens:job:{id}"),
            "dodolens:model-budget".to_string(),
        ]
    );
    assert_eq!(
        redis.keys("dodolens:spend:*").len(),
        2,
        "this hour's and this day's spending"
    );
    assert!(redis
        .cli(&["GET", &format!("dodolens:job:{id}")])
        .starts_with("completed:1"));
    s.finish(&[&id]).await;
}

/// Each replica admits by its own slots: two origins with one slot each run two jobs at once,
/// and a job forwarded to both still runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_origins_share_dedupe_and_add_up_their_slots() {
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
    // Long enough model calls that both jobs still hold their slots when the third job comes.
    sim.control(json!({ "latency_ms": 5000 })).await;
    let body = read(&fixtures::no_audio());
    let meta = |n| {
        let id = session_id(n);
        job_meta(&id, &Callback::url(cb_addr, &id), 1)
    };

    // The same job forwarded to both replicas runs once.
    let a = meta(900);
    assert_eq!(
        forward(one.addr, &a, body.clone(), Signature::Good)
            .await
            .status(),
        202
    );
    let dup = forward(two.addr, &a, body.clone(), Signature::Good).await;
    assert_eq!(dup.status(), 202);
    assert_eq!(
        dup.json::<serde_json::Value>().await.unwrap()["duplicate"],
        true
    );

    // Replica two's own slot takes another job while replica one's is busy: capacity adds up.
    let b = meta(901);
    assert_eq!(
        forward(two.addr, &b, body.clone(), Signature::Good)
            .await
            .status(),
        202
    );
    for origin in [&one, &two] {
        let c = meta(902);
        let busy = forward(origin.addr, &c, body.clone(), Signature::Good).await;
        assert_eq!(busy.status(), 503);
        assert!(busy.headers().contains_key("retry-after"));
        assert_eq!(
            busy.json::<serde_json::Value>().await.unwrap()["busy"],
            "slots"
        );
    }
    completed(&cb.final_event(&a.session_id, Duration::from_secs(60)).await);
    completed(&cb.final_event(&b.session_id, Duration::from_secs(60)).await);
    assert_eq!(
        sim.stats().await["chat_completions"],
        2,
        "one vision call per job"
    );
    assert_eq!(cb.final_posts(&a.session_id), 1);

    assert_no_residue(&[&a.session_id, &b.session_id], Some(&redis)).await;
    assert_eq!(cb.bad_signatures(), 0);
    one.shutdown().await;
    two.shutdown().await;
}

/// The model budget is the cluster's: what one replica reserved, the other cannot use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_budget_is_shared_by_the_replicas() {
    let redis = Redis::start().await;
    let url = redis.url();
    let sim = Sim::start().await;
    let (cb, cb_addr) = Callback::start().await;
    let vars = [("REDIS_URL", url.as_str()), ("DODOLENS_MODEL_RPM", "3")];
    let one = start_origin(config(&sim, &vars)).await;
    let two = start_origin(config(&sim, &vars)).await;
    let body = read(&fixtures::no_audio());
    let (a, b) = (session_id(950), session_id(951));
    let meta = |id: &str| job_meta(id, &Callback::url(cb_addr, id), 1);
    assert_eq!(
        forward(one.addr, &meta(&a), body.clone(), Signature::Good)
            .await
            .status(),
        202
    );
    let busy = forward(two.addr, &meta(&b), body, Signature::Good).await;
    assert_eq!(busy.status(), 503);
    assert_eq!(
        busy.json::<serde_json::Value>().await.unwrap()["busy"],
        "model_budget"
    );
    completed(&cb.final_event(&a, Duration::from_secs(60)).await);
    let ttl: i64 = redis
        .cli(&["PTTL", "dodolens:model-budget"])
        .trim()
        .parse()
        .unwrap();
    assert!((1..=60_000).contains(&ttl), "{ttl}");
    assert_no_residue(&[&a, &b], Some(&redis)).await;
    one.shutdown().await;
    two.shutdown().await;
}

/// A cancel that reaches another replica (behind a load balancer) still stops the job: the
/// store records it, and the running replica sees it within its poll period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_sent_to_another_replica_stops_the_job() {
    let redis = Redis::start().await;
    let url = redis.url();
    let shared = [
        ("REDIS_URL", url.as_str()),
        ("DODOLENS_CANCEL_POLL_MS", "100"),
    ];
    let s = Scenario::start(&shared).await;
    let other = start_origin(config(&s.sim, &shared)).await;
    let id = session_id(950);
    s.job_waiting_on_the_model(&id).await;
    let response = cancel(other.addr, &id, dodolens_shared::signing::Purpose::Cancel).await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        ended(&s.origin, &id).await,
        dodolens_origin::store::JobMark::Ended {
            attempt: 1,
            outcome: dodolens_origin::store::Outcome::Cancelled
        }
    );
    assert!(s.cb.events(&id).iter().all(|e| !is_final(e)));
    assert_no_residue(&[&id], Some(&redis)).await;
    other.shutdown().await;
    s.finish(&[&id]).await;
}
