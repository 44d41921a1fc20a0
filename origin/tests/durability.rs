//! Nothing lost: every final event reaches the edge through real faults — redis-server paused
//! (SIGSTOP) while jobs wait on the model, redis-server killed (SIGKILL) and restarted empty,
//! the edge refusing for a while, a re-forward of a job that already ended.
//!
//! Redis operations time out after `DODOLENS_REDIS_TIMEOUT_MS` (short here, so the faults stay
//! short); the origin keeps each final event in its process until the edge has it and the store
//! has recorded it.

mod support;

use std::time::Duration;

use dodolens_origin::store::{JobMark, Outcome};
use serde_json::json;
use support::{fixtures, *};

const FAST_REDIS: (&str, &str) = ("DODOLENS_REDIS_TIMEOUT_MS", "200");

/// Waits until `check` holds, re-checking every 20 ms, failing after `within`.
async fn until<F: std::future::Future<Output = bool>>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the simulator has received `n` vision calls (the jobs wait on the model).
async fn at_the_model(sim: &Sim, n: u64) {
    until(
        "jobs never reached the model",
        Duration::from_secs(60),
        || async { sim.stats().await["chat_completions"].as_u64().unwrap() >= n },
    )
    .await;
}

fn completed_mark(redis: &Redis, id: &str) -> bool {
    redis
        .cli(&["GET", &format!("dodolens:job:{id}")])
        .starts_with("completed:")
}

async fn forward_new(s: &Scenario, n: u64) -> String {
    let id = session_id(n);
    let body = read(&fixtures::no_audio());
    let response = forward(s.origin.addr, &s.meta(&id), body, Signature::Good).await;
    assert_eq!(response.status(), 202);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_holds_back_no_result() {
    let redis = Redis::start().await;
    let url = redis.url();
    let s = Scenario::start(&[("REDIS_URL", &url), FAST_REDIS]).await;
    s.sim.control(json!({ "latency_ms": 1500 })).await;
    let ids = [forward_new(&s, 1300).await, forward_new(&s, 1301).await];
    at_the_model(&s.sim, 2).await;

    redis.pause();
    // Both jobs end while Redis answers nothing: their results go out from the process.
    for id in &ids {
        completed(&s.cb.final_event(id, Duration::from_secs(60)).await);
    }
    assert!(
        s.origin.state.outbox.held() > 0,
        "the records wait in the process for the store"
    );
    redis.resume();

    // Once Redis answers again, each job's end is recorded and nothing is left to send.
    until(
        "records not written after resume",
        Duration::from_secs(30),
        || async { s.origin.state.outbox.held() == 0 },
    )
    .await;
    for id in &ids {
        assert!(completed_mark(&redis, id), "{id}");
        assert_eq!(s.cb.final_posts(id), 1);
    }
    assert_no_residue(&[&ids[0], &ids[1]], Some(&redis)).await;
    s.finish(&[&ids[0], &ids[1]]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_killed_and_restarted_empty_loses_no_result() {
    let mut redis = Redis::start().await;
    let url = redis.url();
    let sim = Sim::start().await;
    // The edge is down at first: the final event must wait, recorded in Redis.
    let cb_addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let origin = start_origin(config(&sim, &[("REDIS_URL", &url), FAST_REDIS])).await;
    sim.control(json!({ "latency_ms": 1500 })).await;
    let id = session_id(1400);
    let meta = job_meta(&id, &Callback::url(cb_addr, &id), 1);
    let body = read(&fixtures::no_audio());
    assert_eq!(
        forward(origin.addr, &meta, body, Signature::Good)
            .await
            .status(),
        202
    );

    // Killed mid-job: the job's claim is lost; the job goes on and records its end in the new one.
    at_the_model(&sim, 1).await;
    redis.kill_and_restart().await;
    let outbox_key = format!("dodolens:outbox:{id}-1");
    until(
        "end not recorded in the new Redis",
        Duration::from_secs(60),
        || async { completed_mark(&redis, &id) && redis.keys(&outbox_key).len() == 1 },
    )
    .await;

    // Killed again with the event undelivered: the origin writes its record once more.
    redis.kill_and_restart().await;
    until("record not re-written", Duration::from_secs(30), || async {
        completed_mark(&redis, &id) && redis.keys(&outbox_key).len() == 1
    })
    .await;

    // The edge comes back: delivered, and the outbox entry is gone.
    let cb = Callback::default();
    cb.serve(tokio::net::TcpListener::bind(cb_addr).await.unwrap());
    completed(&cb.final_event(&id, Duration::from_secs(30)).await);
    until("outbox not emptied", Duration::from_secs(30), || async {
        origin.state.outbox.held() == 0
    })
    .await;
    assert_eq!(
        origin.state.store.job_mark(&id).await.unwrap(),
        Some(JobMark::Ended {
            attempt: 1,
            outcome: Outcome::Completed
        })
    );
    assert_no_residue(&[&id], Some(&redis)).await;
    assert_eq!(cb.bad_signatures(), 0);
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_answering_busy_gets_the_event_once_it_accepts_and_a_gone_session_is_dropped() {
    let s = Scenario::start(&[]).await;
    s.cb.refuse_finals(Some(503));
    let id = forward_new(&s, 1500).await;
    s.cb.wait_final_posts(&id, 3, Duration::from_secs(60)).await;
    assert!(s.cb.events(&id).iter().all(|e| !is_final(e)));
    s.cb.refuse_finals(None);
    completed(&s.cb.final_event(&id, Duration::from_secs(30)).await);

    // 410: the session is gone; the event is dropped at once, not retried.
    s.cb.refuse_finals(Some(410));
    let gone = forward_new(&s, 1501).await;
    s.cb.wait_final_posts(&gone, 1, Duration::from_secs(60))
        .await;
    until(
        "a refused event stays in the outbox",
        Duration::from_secs(10),
        || async { s.origin.state.outbox.held() == 0 },
    )
    .await;
    assert_eq!(s.cb.final_posts(&gone), 1, "never retried");
    s.cb.refuse_finals(None);
    s.finish(&[&id, &gone]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_forward_after_the_end_gets_the_final_event_again_from_redis() {
    let redis = Redis::start().await;
    let url = redis.url();
    let s = Scenario::start(&[("REDIS_URL", &url)]).await;
    let id = forward_new(&s, 1600).await;
    completed(&s.cb.final_event(&id, Duration::from_secs(60)).await);
    until("end not recorded", Duration::from_secs(10), || async {
        s.origin.state.outbox.held() == 0
    })
    .await;

    // The watchdog re-forwards (attempt 2): acknowledged as a duplicate, not run, result re-sent.
    let again = job_meta(&id, &Callback::url(s.cb_addr, &id), 2);
    let response = forward(
        s.origin.addr,
        &again,
        read(&fixtures::no_audio()),
        Signature::Good,
    )
    .await;
    assert_eq!(response.status(), 202);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["duplicate"],
        true
    );
    s.cb.wait_final_posts(&id, 2, Duration::from_secs(30)).await;
    assert_eq!(s.sim.stats().await["chat_completions"], 1, "ran once");
    until(
        "re-sent event still held",
        Duration::from_secs(10),
        || async { s.origin.state.outbox.held() == 0 },
    )
    .await;
    assert_no_residue(&[&id], Some(&redis)).await;
    s.finish(&[&id]).await;
}

/// The case by hand, with the default Redis timeout and the pause as long as measured
/// there: `DODOLENS_PAUSE_S=45 cargo test -p dodolens-origin --test durability -- --ignored
/// --nocapture`. Prints when each result arrived and when the store caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "by hand: a long real pause"]
async fn by_hand_redis_paused_while_jobs_wait_on_the_model() {
    let pause: u64 = std::env::var("DODOLENS_PAUSE_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(45);
    let redis = Redis::start().await;
    let url = redis.url();
    let s = Scenario::start(&[("REDIS_URL", &url), ("DODOLENS_LOG", "info")]).await;
    s.sim.control(json!({ "latency_ms": 8000 })).await;
    let ids = [forward_new(&s, 1700).await, forward_new(&s, 1701).await];
    at_the_model(&s.sim, 2).await;
    let paused = std::time::Instant::now();
    redis.pause();
    println!("redis paused (SIGSTOP) with both jobs at the model");
    for id in &ids {
        completed(&s.cb.final_event(id, Duration::from_secs(600)).await);
        println!(
            "result of {} on the callback {:.1} s into the pause",
            &id[32..],
            paused.elapsed().as_secs_f64()
        );
    }
    // The fault lasts as long as measured in the issue; this sleep is the fault, not a wait.
    tokio::time::sleep(Duration::from_secs(pause).saturating_sub(paused.elapsed())).await;
    redis.resume();
    println!(
        "redis resumed (SIGCONT) after {:.1} s",
        paused.elapsed().as_secs_f64()
    );
    until("records not written", Duration::from_secs(120), || async {
        s.origin.state.outbox.held() == 0
    })
    .await;
    println!(
        "both ends recorded in Redis {:.1} s after the pause began; results delivered: {}/2",
        paused.elapsed().as_secs_f64(),
        ids.iter().filter(|id| s.cb.final_posts(id) >= 1).count()
    );
    for id in &ids {
        assert!(completed_mark(&redis, id));
    }
    assert_no_residue(&[&ids[0], &ids[1]], Some(&redis)).await;
    s.finish(&[&ids[0], &ids[1]]).await;
}

/// The origin binary in memory mode, SIGKILLed mid-job: no claim survives it, so the edge's
/// re-forward to the restarted origin runs the job again and gets its result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_memory_origin_runs_the_job_again() {
    use tokio::io::AsyncBufReadExt;
    sandbox();
    let sim = Sim::start().await;
    let (cb, cb_addr) = Callback::start().await;
    let spawn = || async {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dodolens-origin"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("DODOLENS_BIND", "127.0.0.1:0")
            .env("DODOLENS_OPS_BIND", "127.0.0.1:0")
            .env("DODOLENS_SIGNING_SECRET", SECRET)
            .env("OPENAI_BASE_URL", sim.base_url())
            .env("DODOLENS_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
        tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
            .await
            .expect("no `listening on` line")
            .unwrap();
        let addr: std::net::SocketAddr = line.trim()["listening on ".len()..].parse().unwrap();
        (child, addr)
    };
    let id = session_id(1800);
    let meta = job_meta(&id, &Callback::url(cb_addr, &id), 1);
    let body = read(&fixtures::no_audio());

    sim.control(json!({ "latency_ms": 60_000 })).await;
    let (mut first, addr) = spawn().await;
    let response = forward(addr, &meta, body.clone(), Signature::Good).await;
    assert_eq!(response.status(), 202);
    at_the_model(&sim, 1).await;
    first.start_kill().unwrap();
    first.wait().await.unwrap();

    sim.control(json!({ "latency_ms": 0 })).await;
    let (mut second, addr) = spawn().await;
    let response = forward(addr, &meta, body, Signature::Good).await;
    assert_eq!(response.status(), 202);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["duplicate"],
        false,
        "nothing of the killed process survived"
    );
    completed(&cb.final_event(&id, Duration::from_secs(60)).await);
    assert_eq!(cb.final_posts(&id), 1);
    second.start_kill().unwrap();
    second.wait().await.unwrap();
    assert_no_residue(&[&id], None).await;
}
