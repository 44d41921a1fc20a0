//! `openai-sim --bind ADDR`: the OpenAI simulator (see the library). Prints `listening on ADDR`
//! once bound; port 0 picks a free port. Stops on SIGINT or SIGTERM.

use std::net::SocketAddr;

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut bind: SocketAddr = "127.0.0.1:8790".parse()?;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bind" => bind = args.next().context("--bind needs ADDR")?.parse()?,
            "-h" | "--help" => {
                println!("usage: openai-sim [--bind ADDR]");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let (addr, server) = openai_sim::start(bind).await?;
    println!("listening on {addr}");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = server => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}
