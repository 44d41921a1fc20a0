//! The origin binary as the local stack runs it: port 0, `listening on ADDR`, JSON logs that
//! never carry the narration or image data, and a clean exit on SIGTERM. (The simulator's binary
//! is tested in its own crate; here it runs in-process.)

mod support;

use std::{process::Stdio, time::Duration};

use support::{fixtures, *};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, Command},
};

/// Starts the origin and reads its two lines: the public, then the operator listener.
async fn spawn(mut cmd: Command) -> (Child, std::net::SocketAddr, std::net::SocketAddr) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let public = read_addr(&mut stdout, "listening on ").await;
    let ops = read_addr(&mut stdout, "ops listening on ").await;
    (child, public, ops)
}

async fn read_addr(
    stdout: &mut BufReader<tokio::process::ChildStdout>,
    prefix: &str,
) -> std::net::SocketAddr {
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
        .await
        .expect("no `listening on` line")
        .unwrap();
    line.trim()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .parse()
        .unwrap()
}

fn terminate(child: &Child) {
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binaries_serve_a_job_log_json_without_content_and_stop_on_sigterm() {
    sandbox();
    let sim = Sim::start().await;

    let mut origin_cmd = Command::new(env!("CARGO_BIN_EXE_dodolens-origin"));
    origin_cmd
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("DODOLENS_BIND", "127.0.0.1:0")
        .env("DODOLENS_OPS_BIND", "127.0.0.1:0")
        .env("DODOLENS_SIGNING_SECRET", SECRET)
        .env("OPENAI_BASE_URL", format!("{}/", sim.base_url()))
        .env("DODOLENS_LOG_FORMAT", "json")
        .env("DODOLENS_LOG", "debug");
    let (mut origin, addr, ops) = spawn(origin_cmd).await;

    let status = |url: String| async move { reqwest::get(url).await.unwrap().status() };
    assert_eq!(status(format!("http://{addr}/healthz")).await, 200);
    assert_eq!(status(format!("http://{ops}/metrics")).await, 200);
    assert_eq!(status(format!("http://{addr}/metrics")).await, 404);
    let (cb, cb_addr) = Callback::start().await;
    let id = session_id(9000);
    let meta = job_meta(&id, &Callback::url(cb_addr, &id), 1);
    let body = read(&fixtures::moov_at_end());
    assert_eq!(
        forward(addr, &meta, body, Signature::Good).await.status(),
        202
    );
    let result = completed(&cb.final_event(&id, Duration::from_secs(120)).await).clone();
    assert!(result.simulated);

    terminate(&origin);
    let status = tokio::time::timeout(Duration::from_secs(30), origin.wait())
        .await
        .expect("origin did not stop on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let mut logs = String::new();
    origin
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .await
        .unwrap();
    assert!(logs.lines().count() > 3);
    for line in logs.lines() {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(entry["level"].is_string());
    }
    for secret in [
        "frigo",
        "cartons de livres",
        "data:image",
        "base64,",
        SECRET,
        &id,
    ] {
        assert!(!logs.contains(secret), "logs contain {secret:?}");
    }
    assert!(logs.contains(&id[..12]), "logs carry the id prefix");
    drop(sim);
    assert_no_residue(&[&id], None).await;
}
