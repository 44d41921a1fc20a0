//! The two binaries as the local stack runs them: port 0, `listening on ADDR`, JSON logs that
//! never carry the narration or image data, and a clean exit on SIGTERM.

mod support;

use std::{process::Stdio, time::Duration};

use support::{fixtures, *};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, Command},
};

async fn spawn(mut cmd: Command) -> (Child, std::net::SocketAddr) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
        .await
        .expect("no `listening on` line")
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (child, addr)
}

fn terminate(child: &Child) {
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binaries_serve_a_job_log_json_without_content_and_stop_on_sigterm() {
    sandbox();
    let mut sim_cmd = Command::new(env!("CARGO_BIN_EXE_dodolens-openai-sim"));
    sim_cmd.args(["--bind", "127.0.0.1:0"]);
    let (sim, sim_addr) = spawn(sim_cmd).await;

    let mut origin_cmd = Command::new(env!("CARGO_BIN_EXE_dodolens-origin"));
    origin_cmd
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("DODOLENS_BIND", "127.0.0.1:0")
        .env("DODOLENS_SIGNING_SECRET", SECRET)
        .env("OPENAI_BASE_URL", format!("http://{sim_addr}/v1/"))
        .env("DODOLENS_LOG_FORMAT", "json")
        .env("DODOLENS_LOG", "debug");
    let (mut origin, addr) = spawn(origin_cmd).await;

    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
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

    terminate(&sim);
    let mut sim = sim;
    tokio::time::timeout(Duration::from_secs(10), sim.wait())
        .await
        .expect("simulator did not stop on SIGTERM")
        .unwrap();
    assert_no_residue(&[&id], None).await;
}
