//! No open wallet, no public operator routes: readiness and metrics only on the operator
//! listener, readiness checked at most once per cache period, and the spending cap refusing
//! forwards (503 + Retry-After until the window resets), shared by replicas through Redis.

mod support;

use support::{fixtures, *};

async fn get(url: String) -> reqwest::Response {
    reqwest::get(url).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_routes_are_only_on_the_operator_listener_and_readiness_is_cached() {
    let s = Scenario::start(&[("DODOLENS_READY_CACHE_S", "3600")]).await;
    let (public, ops) = (s.origin.addr, s.origin.ops_addr);
    assert_ne!(public, ops);
    for route in ["/readyz", "/metrics"] {
        assert_eq!(
            get(format!("http://{public}{route}")).await.status(),
            404,
            "{route}"
        );
        assert_eq!(
            get(format!("http://{ops}{route}")).await.status(),
            200,
            "{route}"
        );
    }
    assert_eq!(get(format!("http://{public}/healthz")).await.status(), 200);
    for _ in 0..5 {
        let ready: serde_json::Value = get(format!("http://{ops}/readyz"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(ready["ready"], true);
    }
    let checks = metric(&s.metrics().await, "dodolens_readiness_checks_total");
    assert_eq!(checks, 1.0, "six readiness answers, one ffmpeg check");
    s.finish(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spending_cap_refuses_forwards_until_its_window_resets() {
    // One micro-euro an hour: the first analysis spends it.
    let s = Scenario::start(&[("DODOLENS_SPENDING_CAP_EUR_PER_HOUR", "0.000001")]).await;
    let (id, event) = s.run(read(&fixtures::no_audio())).await;
    assert!(completed(&event).cost.eur > 0.0);

    let refused = session_id(1100);
    let response = forward(
        s.origin.addr,
        &s.meta(&refused),
        read(&fixtures::no_audio()),
        Signature::Good,
    )
    .await;
    assert_eq!(response.status(), 503);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "budget_exhausted");
    let metrics = s.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "dodolens_intake_rejections_total{reason=\"budget_exhausted\"}"
        ),
        1.0
    );
    assert_eq!(
        s.sim.stats().await["chat_completions"],
        1,
        "no model call after the cap"
    );
    assert!(s.cb.events(&refused).is_empty());
    assert_no_residue(&[&refused], None).await;
    s.finish(&[&id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_redis_share_the_spending_cap() {
    let redis = Redis::start().await;
    let url = redis.url();
    let cap = [
        ("REDIS_URL", url.as_str()),
        ("DODOLENS_SPENDING_CAP_EUR_PER_DAY", "0.000001"),
    ];
    let s = Scenario::start(&cap).await;
    let other = start_origin(config(&s.sim, &cap)).await;
    let (id, event) = s.run(read(&fixtures::no_audio())).await;
    completed(&event);
    let day = redis.keys("dodolens:spend:day:*");
    assert_eq!(day.len(), 1, "{:?}", redis.keys("*"));
    let refused = session_id(1200);
    let response = forward(
        other.addr,
        &s.meta(&refused),
        read(&fixtures::no_audio()),
        Signature::Good,
    )
    .await;
    assert_eq!(
        response.status(),
        503,
        "the other replica sees the spending"
    );
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["code"],
        "budget_exhausted"
    );
    assert_no_residue(&[&id, &refused], Some(&redis)).await;
    other.shutdown().await;
    s.finish(&[&id]).await;
}
