//! `dodolens-openai-sim --bind ADDR`: the OpenAI simulator (see `dodolens_origin::sim`).
//! Prints `listening on ADDR` once bound; port 0 picks a free port.

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
                println!("usage: dodolens-openai-sim [--bind ADDR]");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let (addr, server) = dodolens_origin::sim::start(bind).await?;
    println!("listening on {addr}");
    tokio::select! {
        _ = server => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
