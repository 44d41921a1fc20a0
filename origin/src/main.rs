//! `dodolens-origin`: reads its configuration from the environment, serves until SIGINT or
//! SIGTERM, then shuts down gracefully (see `Origin::shutdown`).

use std::io::IsTerminal;

use anyhow::Context;
use dodolens_origin::config::{Config, LogFormat};
use tracing_subscriber::{filter::Targets, prelude::*};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env().context("configuration")?;
    let filter: Targets = config.log_filter.parse().context("DODOLENS_LOG")?;
    let registry = tracing_subscriber::registry().with(filter);
    // Logs go to stderr: stdout carries only the two `listening on ADDR` lines.
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => registry.with(layer.json()).init(),
        LogFormat::Text => registry
            .with(layer.with_ansi(std::io::stderr().is_terminal()))
            .init(),
    }
    let origin = dodolens_origin::start(config).await?;
    // Scripts read the first line; the operator listener's address follows on the second. One
    // write, and no panic if whoever started us has stopped reading stdout.
    let lines = format!(
        "listening on {}\nops listening on {}\n",
        origin.addr, origin.ops_addr
    );
    let _ = std::io::Write::write_all(&mut std::io::stdout(), lines.as_bytes());
    tracing::info!(addr = %origin.addr, ops = %origin.ops_addr, instance = %origin.state.cfg.instance_id, "origin ready");
    shutdown_signal().await;
    tracing::info!("shutting down");
    origin.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
